"""The StopNCII-compatible API, through threatexchange's unmodified client where it matters.

Log timestamps are whole seconds. Tests that need entries in different
seconds create their data, then move its entries back in time with ``settle``,
rather than sleeping.
"""

from __future__ import annotations

import gc
import hashlib
import re
import threading
import time
from typing import Any

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from threatexchange.exchanges.clients.stopncii.api import (
    FetchHashesResponse,
    StopNCIIAPI,
    StopNCIICaseStatus,
    StopNCIICSPFeedback,
    StopNCIICSPFeedbackValue,
    StopNCIIEndpoint,
    StopNCIISignalType,
)

from cases import case_numbers
from cases.services import case_withdraw
from exchange.feeds.stopncii import PageCursor, cursor_token
from exchange.models import Feedback, FeedbackEvent, ListGrant, Partner
from exchange.services import partner_create, partner_grant
from hashbank.models import Hash, HashList, Holder, HolderKind, LogEntry
from hashbank.services import HashInput, hashes_hold, hashes_refresh_published
from tests.conftest import log_rewritable, md5, pdq

CASE_0 = Holder(HolderKind.CASE, 0)

live = pytest.mark.django_db(transaction=True, serialized_rollback=True)
FETCH = "/stopncii/v1/FetchHashes"
SUBMIT = "/stopncii/v1/SubmitFeedback"
T0 = 1_700_000_000


class Log:
    """Moves the adult list's newest entries to a chosen second, in index order."""

    def __init__(self) -> None:
        self.settled = 0

    def settle(self, timestamp: int) -> None:
        adult = HashList.objects.get(slug="adult")
        with log_rewritable():
            LogEntry.objects.filter(hash_list=adult, index__gte=self.settled).update(
                timestamp=timestamp
            )
        self.settled = adult.log_size


@pytest.fixture
def live_server(live_server: Any) -> Any:
    """The session's live server; each test lets its requests' server threads finish.

    A server thread waits on its keep-alive socket until the client's response
    object is freed. If that happens after the session's server stopped, the
    thread closes a SQLite connection it no longer shares, which is an error.
    """
    yield live_server
    gc.collect()  # frees responses kept alive by tracebacks (pytest.raises)
    for thread in threading.enumerate():
        if thread.name.endswith("(process_request_thread)"):
            thread.join(timeout=2)


@pytest.fixture
def log() -> Log:
    return Log()


def new_partner(name: str, lists: tuple[str, ...] = ("adult",)) -> Any:
    """A partner and its keys, granted the lists now (at the log's current size)."""
    return partner_create(name=name, lists=list(lists))


def stopncii(live_server: Any, secrets: dict[str, str], **overrides: str) -> StopNCIIAPI:
    keys = {**secrets, **overrides}
    return StopNCIIAPI(
        subscription_key=keys["subscription_key"],
        fetch_function_key=keys["fetch_function_key"],
        additional_function_keys={StopNCIIEndpoint.SubmitFeedback: keys["feedback_function_key"]},
        base_url_override=live_server.url + "/stopncii/v1",
    )


def raw_fetch(live_server: Any, secrets: dict[str, str], **params: Any) -> requests.Response:
    return requests.get(
        live_server.url + FETCH,
        params={"pageSize": 800, **params},
        headers={
            "Ocp-Apim-Subscription-Key": secrets["subscription_key"],
            "x-functions-key": secrets["fetch_function_key"],
        },
        timeout=30,
    )


def everything(api: StopNCIIAPI, start: int = StopNCIIAPI.DEFAULT_START_TIME) -> dict:
    """The client's own idiom: the latest record per (signal type, value)."""
    return {
        (r.signalType, r.hashValue): r
        for page in api.fetch_hashes_iter(start)
        for r in page.hashRecords
    }


def value(h: dict[str, Any]) -> str:
    return h["value"]


# --- Through the real client, against a live server --------------------------------


@live
def test_the_unmodified_client_fetches_every_hash(live_server, make_case):
    partner, secrets = new_partner("Platform A")
    other, other_secrets = new_partner("Platform B")
    first = make_case(pdq("a"), md5("video"))
    second = make_case(pdq("b"))
    make_case(pdq("minor"), minor=True)

    records = everything(stopncii(live_server, secrets))
    assert set(records) == {
        (StopNCIISignalType.ImagePDQ, value(pdq("a"))),
        (StopNCIISignalType.VideoMD5, value(md5("video"))),
        (StopNCIISignalType.ImagePDQ, value(pdq("b"))),
    }
    assert {r.hashStatus for r in records.values()} == {StopNCIICaseStatus.Active}
    assert all(r.CSPFeedbacks == [] for r in records.values())

    a = records[(StopNCIISignalType.ImagePDQ, value(pdq("a")))]
    video = records[(StopNCIISignalType.VideoMD5, value(md5("video")))]
    b = records[(StopNCIISignalType.ImagePDQ, value(pdq("b")))]
    # One opaque ID per case: the same on both hashes of a case, another for another case.
    assert a.caseNumbers == video.caseNumbers
    assert list(a.caseNumbers.values()) == [StopNCIICaseStatus.Active]
    assert a.caseNumbers.keys().isdisjoint(b.caseNumbers)
    # ...and another again for another partner.
    theirs = everything(stopncii(live_server, other_secrets))
    assert (
        theirs[(StopNCIISignalType.ImagePDQ, value(pdq("a")))]
        .caseNumbers.keys()
        .isdisjoint(a.caseNumbers)
    )

    raw = raw_fetch(live_server, secrets, startTimestamp=0).text
    for created in (first, second):
        reference = next(
            iter(records[(StopNCIISignalType.ImagePDQ, created.hashes[0].value)].caseNumbers)
        )
        assert re.fullmatch(r"[0-9a-f]{16}", reference)
        assert reference not in (str(created.case.pk), created.case.holder)
        for secret in (created.case_number, case_numbers.canonical(created.case_number)):
            assert secret not in raw
        assert created.case.number_digest not in raw
    assert value(pdq("minor")) not in raw
    assert f'"case:{first.case.pk}"' not in raw
    assert partner.name not in raw and other.name not in raw


@live
def test_pages_follow_next_page_token_to_the_end(live_server, make_case, log):
    _, secrets = new_partner("Platform A")
    make_case(*(pdq(f"h{i}") for i in range(12)))
    log.settle(T0 + 100)
    api = stopncii(live_server, secrets)

    seen: list[str] = []
    pages: list[FetchHashesResponse] = []
    token = ""
    while True:
        page = api.fetch_hashes(page_size=5, start_timestamp=T0, next_page=token)
        pages.append(page)
        seen.extend(r.hashValue for r in page.hashRecords)
        if not page.hasMoreRecords:
            break
        token = page.nextPageToken
        assert token
    assert [p.count for p in pages] == [5, 5, 2]
    assert pages[-1].nextPageToken is None
    assert sorted(seen) == sorted(value(pdq(f"h{i}")) for i in range(12))
    assert {p.nextSetTimestamp for p in pages} == {T0 + 100}


@live
def test_fetch_hashes_iter_pages_past_the_default_page_size(live_server):
    _, secrets = new_partner("Platform A")
    adult = HashList.objects.get(slug="adult")
    # An import-sized batch, held through the bank directly (no case per hash).
    inputs = [HashInput("pdq", hashlib.sha256(b"%d" % i).hexdigest(), 90) for i in range(1001)]
    hashes_hold(hash_list=adult, hashes=inputs, holder=CASE_0)

    pages = list(stopncii(live_server, secrets).fetch_hashes_iter())
    assert [p.count for p in pages] == [800, 201]
    assert [p.hasMoreRecords for p in pages] == [True, False]
    values = {r.hashValue for p in pages for r in p.hashRecords}
    assert values == {i.value for i in inputs}


@live
def test_resuming_from_next_set_timestamp_misses_nothing(live_server, make_case, log):
    _, secrets = new_partner("Platform A")
    api = stopncii(live_server, secrets)
    make_case(pdq("old"))
    log.settle(T0 + 100)
    make_case(pdq("same-second"))
    log.settle(T0 + 200)
    first = list(api.fetch_hashes_iter())
    checkpoint = first[-1].nextSetTimestamp
    assert checkpoint == T0 + 200

    make_case(pdq("new"), md5("new"))
    log.settle(T0 + 300)
    second = list(api.fetch_hashes_iter(checkpoint))
    values = {r.hashValue for p in second for r in p.hashRecords}
    # The checkpoint's own second is sent again; everything after it is new; nothing older.
    assert values == {value(pdq("same-second")), value(pdq("new")), value(md5("new"))}
    assert second[-1].nextSetTimestamp == T0 + 300

    # Nothing new: the same second again, and the checkpoint stays put.
    again = list(api.fetch_hashes_iter(T0 + 300))
    assert again[-1].nextSetTimestamp == T0 + 300
    # After the newest entry: nothing, and startTimestamp comes back unchanged.
    empty = api.fetch_hashes(start_timestamp=T0 + 301)
    assert (empty.count, empty.hasMoreRecords, empty.nextPageToken) == (0, False, None)
    assert empty.nextSetTimestamp == T0 + 301


@live
def test_a_withdrawal_reaches_partners_that_could_have_had_the_hash(live_server, make_case, log):
    _, early_secrets = new_partner("Early platform")
    _, fresh_secrets = new_partner("Fresh platform")
    created = make_case(pdq("withdrawn"), md5("kept"))
    make_case(md5("kept"))
    log.settle(T0 + 100)
    api = stopncii(live_server, early_secrets)
    checkpoint = list(api.fetch_hashes_iter())[-1].nextSetTimestamp
    assert checkpoint == T0 + 100

    case_withdraw(case=created.case)
    log.settle(T0 + 200)

    # A partner resuming after the add: the withdrawal, with the value.
    for start in (checkpoint, T0 + 150):
        records = everything(api, start)
        withdrawn = records[(StopNCIISignalType.ImagePDQ, value(pdq("withdrawn")))]
        assert withdrawn.hashStatus == StopNCIICaseStatus.Withdrawn
        assert withdrawn.lastModtimestamp == T0 + 200
        assert list(withdrawn.caseNumbers.values()) == [StopNCIICaseStatus.Withdrawn]
        # The video is still held by the other case: still active. It is sent again
        # only from the checkpoint, whose second is always sent again.
        video = records.get((StopNCIISignalType.VideoMD5, value(md5("kept"))))
        assert (video is not None) == (start == checkpoint)
        assert video is None or video.hashStatus == StopNCIICaseStatus.Active

    # From before the add: the value is never sent, to anyone.
    for secrets in (early_secrets, fresh_secrets):
        for start in (0, T0 + 99):
            pages = [raw_fetch(live_server, secrets, startTimestamp=start, pageSize=1)]
            while pages[-1].json()["hasMoreRecords"]:
                token = pages[-1].json()["nextPageToken"]
                pages.append(
                    raw_fetch(
                        live_server, secrets, startTimestamp=start, pageSize=1, nextPageToken=token
                    )
                )
            assert all(p.status_code == 200 for p in pages)
            assert all(value(pdq("withdrawn")) not in p.text for p in pages)
            assert any(value(md5("kept")) in p.text for p in pages)
            assert all(p.json()["nextSetTimestamp"] == T0 + 200 for p in pages[-1:])

    # A partner granted the list only after the withdrawal never had it either.
    _, late_secrets = new_partner("Late platform")
    assert (
        value(pdq("withdrawn"))
        not in raw_fetch(live_server, late_secrets, startTimestamp=T0 + 150).text
    )
    assert (
        value(pdq("withdrawn"))
        in raw_fetch(live_server, early_secrets, startTimestamp=T0 + 150).text
    )


@live
def test_a_hash_disabled_by_reviewers_is_deleted(live_server, make_case, log):
    _, secrets = new_partner("Platform A")
    make_case(pdq("benign"))
    log.settle(T0 + 100)
    hash_ = Hash.objects.get(value=value(pdq("benign")))
    Hash.objects.filter(pk=hash_.pk).update(disabled=True)
    hashes_refresh_published(hash_list=hash_.hash_list, hash_ids=[hash_.pk])
    log.settle(T0 + 200)

    records = everything(stopncii(live_server, secrets), T0 + 100)
    assert records[(StopNCIISignalType.ImagePDQ, value(pdq("benign")))].hashStatus == (
        StopNCIICaseStatus.Deleted
    )
    assert everything(stopncii(live_server, secrets), T0) == {}


@live
def test_feedback_submitted_by_the_client_is_stored_and_fetched_back(live_server, make_case):
    partner, secrets = new_partner("Platform A")
    other, other_secrets = new_partner("Platform B")
    make_case(pdq("a"), md5("video"))
    api = stopncii(live_server, secrets)

    api.submit_feedback(
        StopNCIISignalType.ImagePDQ,
        value(pdq("a")).upper(),
        StopNCIICSPFeedbackValue.Blocked,
        {"nudity"},
    )
    api.submit_feedbacks(
        {
            (StopNCIISignalType.VideoMD5, value(md5("video"))): _feedback("PendingReview"),
            (StopNCIISignalType.ImagePDQ, value(pdq("unknown"))): _feedback("NotBlocked"),
        }
    )
    stored = {f.hash.value: f for f in Feedback.objects.select_related("hash")}
    assert set(stored) == {value(pdq("a")), value(md5("video"))}
    assert (stored[value(pdq("a"))].outcome, stored[value(pdq("a"))].tags) == (
        "blocked",
        ["nudity"],
    )
    assert stored[value(md5("video"))].outcome == "pending_review"
    assert set(FeedbackEvent.objects.values_list("via", flat=True)) == {"stopncii"}

    records = everything(api)
    [mine] = records[(StopNCIISignalType.ImagePDQ, value(pdq("a")))].CSPFeedbacks
    assert (mine.source, mine.feedbackValue, mine.tags) == (
        partner.name,
        StopNCIICSPFeedbackValue.Blocked,
        {"nudity"},
    )
    [video] = records[(StopNCIISignalType.VideoMD5, value(md5("video")))].CSPFeedbacks
    assert video.feedbackValue == StopNCIICSPFeedbackValue.PendingReview
    # Another partner sees the feedback (as StopNCII shows it), under a pseudonym:
    # never the name of the platform that gave it.
    theirs = everything(stopncii(live_server, other_secrets))
    [seen] = theirs[(StopNCIISignalType.ImagePDQ, value(pdq("a")))].CSPFeedbacks
    assert seen.feedbackValue == StopNCIICSPFeedbackValue.Blocked
    assert seen.source.startswith("csp-") and partner.name not in str(theirs)
    assert other.name not in str(records)


def _feedback(name: str) -> StopNCIICSPFeedback:
    return StopNCIICSPFeedback(StopNCIICSPFeedbackValue(name), set())


@live
def test_wrong_keys_are_refused(live_server, make_case):
    _, secrets = new_partner("Platform A")
    _, other = new_partner("Platform B")
    make_case(pdq("a"))

    def status(call: Any) -> int:
        with pytest.raises(requests.HTTPError) as raised:
            call()
        return raised.value.response.status_code

    def fetch(**keys: str) -> Any:
        return stopncii(live_server, secrets, **keys).fetch_hashes

    def submit(**keys: str) -> Any:
        return lambda: stopncii(live_server, secrets, **keys).submit_feedback(
            StopNCIISignalType.ImagePDQ, value(pdq("a")), StopNCIICSPFeedbackValue.Blocked
        )

    assert status(fetch(subscription_key="0" * 32)) == 401
    assert status(fetch(fetch_function_key="wrong")) == 401
    # Keys are per endpoint, and per partner.
    assert status(fetch(fetch_function_key=secrets["feedback_function_key"])) == 401
    assert status(fetch(fetch_function_key=other["fetch_function_key"])) == 401
    assert status(fetch(fetch_function_key=secrets["subscription_key"])) == 401
    assert status(submit(feedback_function_key=secrets["fetch_function_key"])) == 401
    assert status(submit(feedback_function_key=other["feedback_function_key"])) == 401
    assert status(submit(subscription_key=other["subscription_key"])) == 401
    assert not FeedbackEvent.objects.exists()
    # The right keys work.
    assert stopncii(live_server, secrets).fetch_hashes().count == 1


@live
def test_a_partner_without_the_adult_list_is_refused(live_server, make_case):
    _, secrets = new_partner("Minor-only platform", lists=("minor",))
    make_case(pdq("minor"), minor=True)
    api = stopncii(live_server, secrets)
    with pytest.raises(requests.HTTPError) as raised:
        api.fetch_hashes()
    assert raised.value.response.status_code == 404
    assert value(pdq("minor")) not in raised.value.response.text
    with pytest.raises(requests.HTTPError) as raised:
        api.submit_feedback(
            StopNCIISignalType.ImagePDQ, value(pdq("minor")), StopNCIICSPFeedbackValue.Blocked
        )
    assert raised.value.response.status_code == 404
    assert not FeedbackEvent.objects.exists()


# --- Input validation (test client: no live server needed) --------------------------


@pytest.fixture
def keys(db: None) -> tuple[Partner, dict[str, str]]:
    return new_partner("Platform A")


def client_for(secrets: dict[str, str], function_key: str = "fetch_function_key") -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_OCP_APIM_SUBSCRIPTION_KEY=secrets["subscription_key"],
        HTTP_X_FUNCTIONS_KEY=secrets[function_key],
    )
    return client


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "startTimestamp"),
        ({"startTimestamp": "-1"}, "startTimestamp"),
        ({"startTimestamp": "1.5"}, "startTimestamp"),
        ({"startTimestamp": "abc"}, "startTimestamp"),
        ({"startTimestamp": "9" * 40}, "startTimestamp"),
        ({"startTimestamp": "10", "pageSize": "0"}, "pageSize"),
        ({"startTimestamp": "10", "pageSize": "10001"}, "pageSize"),
        ({"startTimestamp": "10", "pageSize": "ten"}, "pageSize"),
        ({"startTimestamp": "10", "nextPageToken": "garbage"}, "nextPageToken"),
        ({"startTimestamp": "10", "nextPageToken": "x" * 600}, "nextPageToken"),
        ({"startTimestamp": "10", "nextPageToken": "é:é"}, "nextPageToken"),
        ({"startTimestamp": "10", "since": "5"}, "since"),
    ],
)
def test_bad_fetch_parameters_are_a_400_naming_them(keys, params, field):
    response = client_for(keys[1]).get(FETCH, params)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_a_token_is_bound_to_its_partner_and_start_timestamp(keys, make_case):
    _, secrets = keys
    other, _ = new_partner("Platform B")
    make_case(*(pdq(f"h{i}") for i in range(3)))
    client = client_for(secrets)
    page = client.get(FETCH, {"startTimestamp": "10", "pageSize": "1"}).json()
    token = page["nextPageToken"]
    assert page["hasMoreRecords"] and token
    assert client.get(FETCH, {"startTimestamp": "10", "nextPageToken": token}).status_code == 200

    assert client.get(FETCH, {"startTimestamp": "11", "nextPageToken": token}).status_code == 400
    theirs = cursor_token(partner=other, cursor=PageCursor(10, 0, 3))
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    payload, _, signature = token.rpartition(":")
    for bad in (theirs, forged, payload + ":" + signature[::-1], token + "=", ":::"):
        response = client.get(FETCH, {"startTimestamp": "10", "nextPageToken": bad})
        assert response.status_code == 400
        assert response.json()["field"] == "nextPageToken"


def test_an_empty_token_starts_from_the_beginning(keys, make_case):
    make_case(pdq("a"))
    response = client_for(keys[1]).get(FETCH, {"startTimestamp": "0", "nextPageToken": ""})
    assert response.json()["count"] == 1


@pytest.mark.perf
def test_a_page_is_read_in_a_constant_number_of_queries(keys, make_case):
    _, secrets = keys
    make_case(*(pdq(f"h{i}") for i in range(20)))
    make_case(*(pdq(f"h{i}") for i in range(10)))
    client = client_for(secrets)
    client.get(FETCH, {"startTimestamp": "0"})  # credentials' last use, fetch position
    counts = []
    for size in ("1", "20"):
        with CaptureQueriesContext(connection) as queries:
            body = client.get(FETCH, {"startTimestamp": "0", "pageSize": size}).json()
        assert body["count"] == int(size)
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 12
    records = body["hashRecords"]
    assert [len(r["caseNumbers"]) for r in records] == [2] * 10 + [1] * 10


def test_the_fetch_key_cannot_be_used_by_the_native_api_and_vice_versa(keys):
    _, secrets = keys
    client = APIClient()
    client.credentials(
        HTTP_OCP_APIM_SUBSCRIPTION_KEY=secrets["subscription_key"],
        HTTP_X_FUNCTIONS_KEY=secrets["bearer"],
    )
    assert client.get(FETCH, {"startTimestamp": "0"}).status_code == 401
    assert APIClient().get(FETCH, {"startTimestamp": "0"}).status_code == 401


def test_fetch_hashes_only_answers_get(keys):
    response = client_for(keys[1]).post(FETCH, {}, format="json")
    assert response.status_code == 405


def feedback(value_: str = value(pdq("a")), **extra: Any) -> dict[str, Any]:
    return {"hashValue": value_, "feedbackValue": "Blocked", "tags": [], **extra}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"count": 1, "hashFeedbacks": [feedback(feedbackValue="Maybe")]},
            "hashFeedbacks[0].feedbackValue",
        ),
        (
            {"count": 1, "hashFeedbacks": [feedback(feedbackValue="Withdrawn")]},
            "hashFeedbacks[0].feedbackValue",
        ),
        (
            {"count": 1, "hashFeedbacks": [feedback(feedbackValue=None)]},
            "hashFeedbacks[0].feedbackValue",
        ),
        ({"count": 1, "hashFeedbacks": [feedback("xyz")]}, "hashFeedbacks[0].hashValue"),
        ({"count": 1, "hashFeedbacks": [feedback(123)]}, "hashFeedbacks[0].hashValue"),
        ({"count": 1, "hashFeedbacks": [feedback(tags=["x"] * 21)]}, "hashFeedbacks[0].tags"),
        ({"count": 1, "hashFeedbacks": [feedback(tags=["\n"])]}, "hashFeedbacks[0].tags"),
        ({"count": 1, "hashFeedbacks": [feedback(tags=[{}])]}, "hashFeedbacks[0].tags[0]"),
        (
            {"count": 1, "hashFeedbacks": [feedback(signalType="ImagePDQ")]},
            "hashFeedbacks[0].signalType",
        ),
        ({"count": 2, "hashFeedbacks": [feedback()]}, "count"),
        ({"count": "1", "hashFeedbacks": [feedback()]}, "count"),
        ({"count": 0, "hashFeedbacks": []}, "count"),
        ({"hashFeedbacks": [feedback()]}, "count"),
        ({"count": 1}, "hashFeedbacks"),
        ({"count": 1, "hashFeedbacks": {}}, "hashFeedbacks"),
        ({"count": 1001, "hashFeedbacks": [feedback()] * 1001}, "count"),
    ],
)
def test_bad_feedback_is_a_400_naming_the_field_and_saves_nothing(keys, make_case, body, field):
    make_case(pdq("a"))
    response = client_for(keys[1], "feedback_function_key").post(SUBMIT, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field
    assert not FeedbackEvent.objects.exists()


def test_submit_feedback_answers_per_hash(keys, make_case):
    make_case(pdq("a"), md5("v"))
    body = {
        "count": 3,
        "hashFeedbacks": [
            feedback(value(pdq("a")).upper(), feedbackValue="NotBlocked", tags=["t"]),
            feedback(value(md5("v")), feedbackValue="None", tags=["only-a-tag"]),
            feedback(value(md5("unknown"))),
        ],
    }
    response = client_for(keys[1], "feedback_function_key").post(SUBMIT, body, format="json")
    assert response.status_code == 200
    assert response.json()["count"] == 3
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ok", "ok", "error"]
    assert results[0]["hashValue"] == value(pdq("a"))
    assert results[2]["code"] == "unknown_hash"
    outcomes = dict(Feedback.objects.values_list("hash__value", "outcome"))
    assert outcomes == {value(pdq("a")): "not_blocked", value(md5("v")): "none"}


def test_submit_feedback_refuses_non_json(keys):
    client = client_for(keys[1], "feedback_function_key")
    assert client.post(SUBMIT, b"[", content_type="application/json").status_code == 400
    assert client.post(SUBMIT, b"x=1", content_type="text/plain").status_code == 415
    assert client.post(SUBMIT, [1, 2], format="json").status_code == 400
    assert client.get(SUBMIT).status_code == 405


def test_one_record_per_hash_in_a_page_the_latest(keys, make_case, log):
    _, secrets = keys
    first = make_case(pdq("again"), pdq("other"))
    log.settle(T0 + 100)
    case_withdraw(case=first.case)
    log.settle(T0 + 200)
    make_case(pdq("again"))
    log.settle(T0 + 300)
    body = client_for(secrets).get(FETCH, {"startTimestamp": str(T0 + 100)}).json()
    records = {r["hashValue"]: r for r in body["hashRecords"]}
    assert body["count"] == len(body["hashRecords"]) == 2
    assert records[value(pdq("again"))]["hashStatus"] == "Active"
    assert records[value(pdq("again"))]["lastModtimestamp"] == T0 + 300
    assert sorted(records[value(pdq("again"))]["caseNumbers"].values()) == ["Active", "Withdrawn"]
    assert records[value(pdq("other"))]["hashStatus"] == "Withdrawn"
    # From before the first add, only the re-publication is news.
    body = client_for(secrets).get(FETCH, {"startTimestamp": str(T0)}).json()
    assert [(r["hashValue"], r["hashStatus"]) for r in body["hashRecords"]] == [
        (value(pdq("again")), "Active")
    ]


def test_a_long_stretch_without_records_is_paged_through_without_leaking(
    keys, make_case, log, monkeypatch
):
    monkeypatch.setattr("exchange.feeds.stopncii.MIN_CHUNK", 2)
    monkeypatch.setattr("exchange.feeds.stopncii.MAX_CHUNKS_PER_PAGE", 2)
    _, secrets = keys
    withdrawn = make_case(*(pdq(f"w{i}") for i in range(10)))
    log.settle(T0 + 100)
    case_withdraw(case=withdrawn.case)
    make_case(pdq("kept"))
    log.settle(T0 + 200)
    client = client_for(secrets)
    pages = [client.get(FETCH, {"startTimestamp": str(T0), "pageSize": "1"})]
    while pages[-1].json()["hasMoreRecords"]:
        token = pages[-1].json()["nextPageToken"]
        params = {"startTimestamp": str(T0), "pageSize": "1", "nextPageToken": token}
        pages.append(client.get(FETCH, params))
    bodies = [p.json() for p in pages]
    # 21 entries, at most 4 read per page: empty pages say there is more.
    assert len(bodies) == 6
    assert [b["count"] for b in bodies] == [0, 0, 0, 0, 0, 1]
    assert [r["hashValue"] for b in bodies for r in b["hashRecords"]] == [value(pdq("kept"))]
    assert not any(value(pdq(f"w{i}")) in p.content.decode() for p in pages for i in range(10))
    stamps = [b["nextSetTimestamp"] for b in bodies]
    assert stamps == sorted(stamps) and stamps[-1] == T0 + 200


# --- Who may learn a withdrawn value: by log position, never by clock ----------------


def withdrawn_values(secrets: dict[str, str], start: int) -> tuple[set[str], bytes]:
    """The values FetchHashes reports Withdrawn from ``start``, and the raw body."""
    response = client_for(secrets).get(FETCH, {"startTimestamp": str(start), "pageSize": "800"})
    assert response.status_code == 200
    assert not response.json()["hasMoreRecords"]
    records = response.json()["hashRecords"]
    return {r["hashValue"] for r in records if r["hashStatus"] == "Withdrawn"}, response.content


def one_second() -> int:
    """Put every entry of the adult log in the current second, the clock rule's blind spot."""
    second = int(time.time())
    with log_rewritable():
        LogEntry.objects.filter(hash_list__slug="adult").update(timestamp=second)
    return second


def test_a_partner_granted_a_fraction_of_a_second_after_a_withdrawal_never_gets_the_value(
    make_case,
):
    _, early = new_partner("Early platform")
    created = make_case(md5("withdrawn-video"))
    case_withdraw(case=created.case)
    withdrawn_at = time.time()
    late, late_secrets = new_partner("Late platform")
    granted_at = ListGrant.objects.get(partner=late).granted_at.timestamp()
    assert 0 <= granted_at - withdrawn_at < 1  # well within one log second
    second = one_second()
    assert int(granted_at) == second

    late_sees, body = withdrawn_values(late_secrets, second)
    assert late_sees == set() and value(md5("withdrawn-video")).encode() not in body
    assert withdrawn_values(early, second)[0] == {value(md5("withdrawn-video"))}


def _pause(partner: Partner, how: str) -> None:
    adult = HashList.objects.get(slug="adult")
    if how == "grant deleted":  # what the admin inline does
        ListGrant.objects.get(partner=partner, hash_list=adult).delete()
    elif how == "confirmation taken back":
        grant = ListGrant.objects.get(partner=partner, hash_list=adult)
        grant.explicit_confirmation = False
        grant.save()
    else:
        partner.active = False
        partner.save()


def _resume(partner: Partner, how: str) -> None:
    adult = HashList.objects.get(slug="adult")
    if how == "grant deleted":
        partner_grant(partner=partner, hash_list=adult, explicit=True)
    elif how == "confirmation taken back":
        grant = ListGrant.objects.get(partner=partner, hash_list=adult)
        grant.explicit_confirmation = True
        grant.save()
    else:
        partner.active = True
        partner.save()


@pytest.mark.parametrize("how", ["grant deleted", "confirmation taken back", "partner deactivated"])
def test_a_value_withdrawn_while_a_partner_could_not_read_the_list_never_reaches_it(make_case, how):
    # The adult list as a list that needs an explicit grant, so a confirmation can lapse.
    HashList.objects.filter(slug="adult").update(requires_explicit_grant=True)
    paused, paused_secrets = new_partner("Paused platform")
    _, steady = new_partner("Steady platform")
    before = make_case(md5("withdrawn-during-the-pause"))
    _pause(paused, how)
    case_withdraw(case=before.case)
    _resume(paused, how)
    later = make_case(md5("withdrawn-after-the-pause"))
    case_withdraw(case=later.case)
    second = one_second()

    sees, body = withdrawn_values(paused_secrets, second)
    assert value(md5("withdrawn-during-the-pause")).encode() not in body
    assert sees == {value(md5("withdrawn-after-the-pause"))}
    assert withdrawn_values(steady, second)[0] == {
        value(md5("withdrawn-during-the-pause")),
        value(md5("withdrawn-after-the-pause")),
    }
