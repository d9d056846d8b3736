"""Disputes: opened by partner feedback, the allowlist and operators; decided by reviewers;
applied by the bank through its one publish rule."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from hashbank import tlog
from hashbank.models import Hash, LogEntry
from reviewers import services
from reviewers.models import AllowlistEntry, Decision, Dispute
from tests.conftest import case_body, md5, pdq
from tests.reviewers.conftest import flip
from webapi.errors import Conflict, InvalidInput

pytestmark = pytest.mark.django_db


def log_ops(hash_: Hash) -> list[tuple[str, bool]]:
    return list(LogEntry.objects.filter(hash=hash_).order_by("index").values_list("op", "redacted"))


def the_hash(h: dict[str, Any]) -> Hash:
    return Hash.objects.get(algorithm=h["algorithm"], value=h["value"])


def status_of(api: APIClient, created: Any, language: str = "en") -> dict[str, Any]:
    response = api.post(
        "/api/v1/cases/status",
        {"case_number": created.case_number, "pin": created.pin},
        format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 200, response.content
    return response.json()["hashes"][0]


# --- Feedback ----------------------------------------------------------------------------


def test_not_blocked_from_two_partners_opens_a_dispute_and_the_hash_stays_published(
    make_case, report, api
):
    created = make_case(pdq("meme"))
    report(pdq("meme"), "not_blocked", tags=("meme",))
    assert not Dispute.objects.exists(), "one partner is not enough (K = 2)"
    report(pdq("meme"), "blocked")
    assert not Dispute.objects.exists(), "blocked does not count"
    report(pdq("meme"), "not_blocked")
    dispute = Dispute.objects.get()
    assert dispute.reason == "feedback" and dispute.state == "open"
    assert len(dispute.detail["not_blocked_by"]) == 2
    h = the_hash(pdq("meme"))
    assert h.published and h.under_review
    assert status_of(api, created)["status"] == "under_review"


def test_k_is_a_setting(make_case, report, settings):
    settings.HASHBANK_DISPUTE_NOT_BLOCKED_PARTNERS = 1
    make_case(pdq("one"))
    report(pdq("one"))
    assert Dispute.objects.get().reason == "feedback"


def test_stopncii_feedback_counts_too(make_case, report):
    from exchange.services import partner_create

    make_case(pdq("via stopncii"))
    report(pdq("via stopncii"))
    _, secrets = partner_create(name="StopNCII platform", lists=["adult"])
    client = APIClient()
    client.credentials(
        HTTP_OCP_APIM_SUBSCRIPTION_KEY=secrets["subscription_key"],
        HTTP_X_FUNCTIONS_KEY=secrets["feedback_function_key"],
    )
    response = client.post(
        "/stopncii/v1/SubmitFeedback",
        {
            "count": 1,
            "hashFeedbacks": [
                {
                    "hashValue": pdq("via stopncii")["value"],
                    "feedbackValue": "NotBlocked",
                    "tags": [],
                }
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    partners = Dispute.objects.get().detail["not_blocked_by"]
    assert len(partners) == 2 and "StopNCII platform" in partners


def test_after_keep_old_reports_do_not_reopen_but_new_ones_do(
    make_case, report, reviewer_a, settings
):
    make_case(pdq("kept"))
    report(pdq("kept"))
    report(pdq("kept"))
    dispute = Dispute.objects.get()
    services.dispute_keep(user=reviewer_a, dispute=dispute, reason="a partner's own error")
    assert not the_hash(pdq("kept")).under_review
    report(pdq("kept"))
    assert Dispute.objects.count() == 1, "one new report is less than K"
    report(pdq("kept"))
    assert Dispute.objects.count() == 2


# --- Decisions ---------------------------------------------------------------------------


@pytest.fixture
def disputed(make_case, report) -> Any:
    created = make_case(pdq("news photo"))
    report(pdq("news photo"))
    report(pdq("news photo"))
    return created, Dispute.objects.get()


def test_disable_needs_a_second_distinct_reviewer(disputed, reviewer_a, reviewer_b, api):
    created, dispute = disputed
    services.dispute_disable(user=reviewer_a, dispute=dispute, reason="a news photo")
    h = the_hash(pdq("news photo"))
    assert h.published and not h.disabled, "a proposal changes nothing for partners"
    with pytest.raises(PermissionDenied):
        services.dispute_confirm_disable(user=reviewer_a, dispute=dispute, reason="sure")
    services.dispute_confirm_disable(user=reviewer_b, dispute=dispute, reason="agreed")
    h.refresh_from_db()
    assert h.disabled and not h.published and not h.under_review
    assert log_ops(h) == [("add", True), ("remove", False)]
    remove = LogEntry.objects.get(hash=h, op="remove")
    assert tlog.decode_leaf(bytes(remove.leaf)).reason == "disabled"
    dispute.refresh_from_db()
    assert dispute.state == "closed" and dispute.outcome == "disabled"
    assert status_of(api, created)["status"] == "disabled"
    assert "no longer shared" in status_of(api, created)["explanation"]
    assert list(Decision.objects.values_list("action", "username")) == [
        ("disable", "alice"),
        ("confirm_disable", "bob"),
    ]


def test_re_enable_publishes_again_as_a_new_add(disputed, reviewer_a, reviewer_b):
    _, dispute = disputed
    services.dispute_disable(user=reviewer_a, dispute=dispute, reason="looks benign")
    services.dispute_confirm_disable(user=reviewer_b, dispute=dispute, reason="yes")
    h = services.hash_reenable(user=reviewer_a, dispute=dispute, reason="the victim wrote in")
    assert h.published and not h.disabled
    assert log_ops(h) == [("add", True), ("remove", False), ("add", False)]
    with pytest.raises(Conflict):
        services.hash_reenable(user=reviewer_a, dispute=dispute, reason="again")


def test_keep_closes_and_escalate_hands_over(disputed, reviewer_a, operator):
    _, dispute = disputed
    services.dispute_take(user=reviewer_a, dispute=dispute)
    dispute = services.dispute_escalate(user=reviewer_a, dispute=dispute, reason="unsure")
    assert dispute.state == "escalated" and dispute.assignee is None
    # It is the operators' now: the reviewer can neither take it back nor decide it.
    for act in (
        lambda: services.dispute_take(user=reviewer_a, dispute=dispute),
        lambda: services.dispute_keep(user=reviewer_a, dispute=dispute, reason="mine after all"),
        lambda: services.dispute_disable(user=reviewer_a, dispute=dispute, reason="mine"),
    ):
        with pytest.raises(PermissionDenied):
            act()
    services.dispute_keep(user=operator, dispute=dispute, reason="operator: keep it")
    dispute.refresh_from_db()
    assert dispute.state == "closed" and dispute.outcome == "kept"
    h = the_hash(pdq("news photo"))
    assert h.published and not h.under_review
    with pytest.raises(Conflict):
        services.dispute_keep(user=reviewer_a, dispute=dispute, reason="twice")


def test_a_decision_needs_a_reason(disputed, reviewer_a):
    _, dispute = disputed
    with pytest.raises(InvalidInput) as excinfo:
        services.dispute_keep(user=reviewer_a, dispute=dispute, reason="   ")
    assert excinfo.value.field == "reason"
    assert not Decision.objects.exists()


def test_the_journal_keeps_the_signals_shown(disputed, reviewer_a):
    _, dispute = disputed
    services.dispute_keep(user=reviewer_a, dispute=dispute, reason="fine")
    signals = Decision.objects.get().signals
    assert signals["hash"]["value"] == pdq("news photo")["value"]
    assert signals["hash"]["active_holders"] == 1
    assert signals["feedback"]["tallies"] == {"not_blocked": 2}
    assert {p["partner"] for p in signals["feedback"]["partners"]} == set(
        dispute.detail["not_blocked_by"]
    )


def test_an_operator_flags_a_hash_and_it_stays_published(make_case, operator):
    make_case(md5("a video"))
    h = the_hash(md5("a video"))
    dispute = services.hash_flag(user=operator, hash=h, reason="reported by a journalist")
    h.refresh_from_db()
    assert dispute.reason == "flag" and h.published and h.under_review
    with pytest.raises(Conflict):
        services.hash_flag(user=operator, hash=h, reason="again")


# --- The allowlist -----------------------------------------------------------------------


@pytest.fixture
def allowlisted() -> str:
    value = pdq("famous painting")["value"]
    AllowlistEntry.objects.create(algorithm="pdq", value=value, description="a famous painting")
    return value


@pytest.mark.parametrize("distance", [0, 1, 16, 31])
def test_a_near_duplicate_of_an_allowlisted_hash_is_held(allowlisted, api, distance):
    near = {"algorithm": "pdq", "value": flip(allowlisted, distance), "quality": 90}
    response = api.post("/api/v1/cases", case_body(near), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["hashes"][0]["status"] == "under_review"
    h = the_hash(near)
    assert not h.published and h.review_hold and h.under_review
    assert log_ops(h) == []
    dispute = Dispute.objects.get(hash=h)
    assert dispute.reason == "allowlist" and dispute.detail["distance"] == distance


def test_a_hash_further_away_is_published(allowlisted, make_case):
    make_case({"algorithm": "pdq", "value": flip(allowlisted, 32), "quality": 90})
    assert Hash.objects.get().published
    assert not Dispute.objects.exists()


def test_an_equal_md5_is_held(make_case):
    AllowlistEntry.objects.create(algorithm="md5", value=md5("viral clip")["value"])
    make_case(md5("viral clip"), md5("another clip"))
    assert not the_hash(md5("viral clip")).published
    assert the_hash(md5("another clip")).published


def test_keep_releases_a_held_hash_and_it_is_not_held_again(
    allowlisted, make_case, reviewer_a, api
):
    near = {"algorithm": "pdq", "value": flip(allowlisted, 5), "quality": 90}
    created = make_case(near)
    assert status_of(api, created, "nl")["explanation"].startswith("We bekijken")
    assert status_of(api, created, "sv")["explanation"].startswith("Vi tittar")
    services.dispute_keep(
        user=reviewer_a, dispute=Dispute.objects.get(), reason="the victim's own photo"
    )
    h = the_hash(near)
    assert h.published and not h.review_hold
    assert log_ops(h) == [("add", False)]
    assert status_of(api, created)["status"] == "active"
    # Withdrawn and submitted again: the reviewer's decision stands.
    from cases.services import case_withdraw

    case_withdraw(case=created.case)
    make_case(near)
    h.refresh_from_db()
    assert h.published and Dispute.objects.count() == 1


def test_a_held_hash_disabled_never_reaches_the_log(allowlisted, make_case, reviewer_a, reviewer_b):
    near = {"algorithm": "pdq", "value": flip(allowlisted, 3), "quality": 90}
    make_case(near)
    dispute = Dispute.objects.get()
    services.dispute_disable(user=reviewer_a, dispute=dispute, reason="the painting")
    services.dispute_confirm_disable(user=reviewer_b, dispute=dispute, reason="agreed")
    h = the_hash(near)
    assert h.disabled and not h.published and log_ops(h) == []
    make_case(near)  # a second victim: still disabled
    h.refresh_from_db()
    assert not h.published and log_ops(h) == []


def test_a_published_hash_is_not_held_when_a_new_case_matches(make_case):
    make_case(pdq("before the allowlist"))
    AllowlistEntry.objects.create(algorithm="pdq", value=pdq("before the allowlist")["value"])
    make_case(pdq("before the allowlist"))
    h = the_hash(pdq("before the allowlist"))
    assert h.published and not h.review_hold


def test_feedback_on_a_hash_no_longer_published_opens_nothing(make_case, partner_api, settings):
    from cases.services import case_withdraw

    settings.HASHBANK_DISPUTE_NOT_BLOCKED_PARTNERS = 1
    created = make_case(pdq("withdrawn"))
    client = partner_api("adult")
    item = {"list": "adult", **pdq("withdrawn"), "outcome": "blocked"}
    item.pop("quality")
    assert client.post("/exchange/v1/feedback", {"items": [item]}, format="json").status_code == 200
    case_withdraw(case=created.case)
    item["outcome"] = "not_blocked"  # the partner may still update its own feedback
    response = client.post("/exchange/v1/feedback", {"items": [item]}, format="json")
    assert response.json()["results"][0]["status"] == "ok"
    assert not Dispute.objects.exists()


def test_an_escalated_disable_is_proposed_by_an_operator_and_confirmed_by_a_reviewer(
    disputed, reviewer_a, operator
):
    _, dispute = disputed
    dispute = services.dispute_escalate(user=reviewer_a, dispute=dispute, reason="unsure")
    dispute = services.dispute_disable(user=operator, dispute=dispute, reason="benign")
    with pytest.raises(PermissionDenied):  # operators never confirm a disable
        services.dispute_confirm_disable(user=operator, dispute=dispute, reason="me too")
    services.dispute_confirm_disable(user=reviewer_a, dispute=dispute, reason="agreed")
    dispute.refresh_from_db()
    assert dispute.outcome == "disabled" and the_hash(pdq("news photo")).disabled
