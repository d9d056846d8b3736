"""Partner feedback: POST /exchange/v1/feedback and the service behind it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from cases.services import case_withdraw
from exchange.feeds.services import FeedbackItem, feedback_submit
from exchange.models import Feedback, FeedbackEvent
from tests.conftest import md5, pdq
from webapi.errors import InvalidInput

pytestmark = pytest.mark.django_db

URL = "/exchange/v1/feedback"


def item(hash_: dict[str, Any], outcome: str = "blocked", **extra: Any) -> dict[str, Any]:
    return {
        "list": "adult",
        "algorithm": hash_["algorithm"],
        "value": hash_["value"],
        "outcome": outcome,
        **extra,
    }


def post(client: APIClient, *items: dict[str, Any]) -> Any:
    return client.post(URL, {"items": list(items)}, format="json")


@pytest.fixture
def client(partner_api) -> APIClient:
    return partner_api("adult")


def test_it_stores_feedback_and_answers_ok_per_item(client, make_case):
    make_case(pdq("a"), md5("v"))
    response = post(
        client, item(pdq("a"), tags=["nudity", "verified"]), item(md5("v"), "pending_review")
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [{"index": 0, "status": "ok"}, {"index": 1, "status": "ok"}]
    }
    stored = {f.hash.value: f for f in Feedback.objects.select_related("hash")}
    assert stored[pdq("a")["value"]].outcome == "blocked"
    assert stored[pdq("a")["value"]].tags == ["nudity", "verified"]
    assert stored[md5("v")["value"]].outcome == "pending_review"
    assert stored[md5("v")["value"]].tags == []
    assert set(FeedbackEvent.objects.values_list("via", flat=True)) == {"native"}


def test_upper_case_values_are_normalised(client, make_case):
    make_case(pdq("a"))
    shouted = {**pdq("a"), "value": pdq("a")["value"].upper()}
    assert post(client, item(shouted)).json()["results"][0]["status"] == "ok"
    assert Feedback.objects.get().hash.value == pdq("a")["value"]


def test_an_unknown_hash_and_a_hash_of_a_list_not_granted_get_the_same_error(client, make_case):
    make_case(pdq("adult"))
    make_case(pdq("minor"), minor=True)
    response = post(
        client,
        item(pdq("never-submitted")),
        {**item(pdq("minor")), "list": "minor"},
        {**item(pdq("adult")), "list": "no-such-list"},
        item(pdq("adult")),
    )
    assert response.status_code == 200
    results = response.json()["results"]
    errors = [{k: r[k] for k in ("code", "message")} for r in results[:3]]
    assert errors[0]["code"] == "unknown_hash"
    assert errors[0] == errors[1] == errors[2]
    assert results[3] == {"index": 3, "status": "ok"}
    # The good item is saved; the others are not.
    assert Feedback.objects.count() == FeedbackEvent.objects.count() == 1


def test_the_minor_list_takes_feedback_from_a_partner_granted_it(partner_api, make_case):
    make_case(pdq("minor"), minor=True)
    response = post(partner_api("adult", "minor"), {**item(pdq("minor")), "list": "minor"})
    assert response.json()["results"] == [{"index": 0, "status": "ok"}]


def test_history_is_kept_and_there_is_one_current_outcome_per_hash(client, make_case):
    make_case(pdq("a"))
    post(client, item(pdq("a"), "pending_review"))
    post(client, item(pdq("a"), "blocked", tags=["t1"]))
    # The same hash twice in one batch: the last one is current, both are history.
    post(client, item(pdq("a"), "not_blocked"), item(pdq("a"), "blocked", tags=["t2"]))
    current = Feedback.objects.get()
    assert (current.outcome, current.tags) == ("blocked", ["t2"])
    assert current.updated_at >= current.created_at
    history = list(FeedbackEvent.objects.order_by("pk").values_list("outcome", flat=True))
    assert history == ["pending_review", "blocked", "not_blocked", "blocked"]


def test_each_partner_has_its_own_current_outcome(partner_api, make_case):
    make_case(pdq("a"))
    post(partner_api("adult"), item(pdq("a"), "blocked"))
    post(partner_api("adult"), item(pdq("a"), "not_blocked"))
    assert sorted(Feedback.objects.values_list("outcome", flat=True)) == [
        "blocked",
        "not_blocked",
    ]


def test_feedback_on_a_withdrawn_hash_is_refused_like_an_unknown_one(client, make_case):
    # Otherwise anyone holding a value could learn it was once submitted.
    created = make_case(pdq("a"))
    case_withdraw(case=created.case)
    withdrawn = post(client, item(pdq("a"))).json()["results"][0]
    unknown = post(client, item(pdq("never"))).json()["results"][0]
    assert withdrawn["status"] == "error"
    assert withdrawn == {**unknown, "index": withdrawn["index"]}


def test_a_partner_may_update_its_own_feedback_after_a_withdrawal(client, make_case):
    created = make_case(pdq("b"))
    assert post(client, item(pdq("b"))).json()["results"][0]["status"] == "ok"
    case_withdraw(case=created.case)
    assert post(client, item(pdq("b"), "not_blocked")).json()["results"][0]["status"] == "ok"


def test_duplicate_tags_are_dropped_in_order(client, make_case):
    make_case(pdq("a"))
    post(client, item(pdq("a"), tags=["b", "a", "b"]))
    assert Feedback.objects.get().tags == ["b", "a"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"items": [item(pdq("a"), "maybe")]}, "items[0].outcome", "invalid_choice"),
        ({"items": [item(pdq("a"), "none")]}, "items[0].outcome", "invalid_choice"),
        ({"items": [item(pdq("a"), 1)]}, "items[0].outcome", "invalid"),
        ({"items": [item(pdq("a"), tags=["x"] * 21)]}, "items[0].tags", "too_many_tags"),
        ({"items": [item(pdq("a"), tags=[""])]}, "items[0].tags", "invalid_tag"),
        ({"items": [item(pdq("a"), tags=["x" * 65])]}, "items[0].tags", "invalid_tag"),
        ({"items": [item(pdq("a"), tags=["bell\x07"])]}, "items[0].tags", "invalid_tag"),
        ({"items": [item(pdq("a"), tags=[3])]}, "items[0].tags[0]", "invalid"),
        ({"items": [item(pdq("a"), tags="nudity")]}, "items[0].tags", "not_a_list"),
        ({"items": [item({"algorithm": "pdq", "value": "zz"})]}, "items[0].value", None),
        ({"items": [item({"algorithm": "sha1", "value": "ab"})]}, "items[0].algorithm", None),
        ({"items": [{**item(pdq("a")), "extra": 1}]}, "items[0].extra", "unknown_field"),
        ({"items": [{"list": "adult"}]}, "items[0].algorithm", "required"),
        ({"items": []}, "items", None),
        ({"items": {}}, "items", "not_a_list"),
        ({}, "items", "required"),
        ({"items": [item(pdq("a"))] * 1001}, "items", "max_length"),
    ],
)
def test_malformed_input_is_a_400_naming_the_field_and_saves_nothing(
    client, make_case, body, field, code
):
    make_case(pdq("a"))
    good = item(pdq("a"))
    if isinstance(body.get("items"), list) and 0 < len(body["items"]) <= 1000:
        body = {"items": [good, *body["items"]]}
        field = field.replace("items[0]", "items[1]")
    response = client.post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field
    if code:
        assert response.json()["code"] == code
    assert not Feedback.objects.exists()
    assert not FeedbackEvent.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(client):
    for body in ([], "items", None, 3):
        response = client.post(URL, body, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"code", "message", "field"}


def test_a_body_that_is_not_json_is_a_400(client):
    response = client.post(URL, b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_it_needs_a_valid_token(make_case):
    make_case(pdq("a"))
    anonymous = APIClient()
    assert post(anonymous, item(pdq("a"))).status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer hbt_not-a-real-token")
    response = post(anonymous, item(pdq("a")))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert not FeedbackEvent.objects.exists()


def test_it_rejects_a_stopncii_key_as_a_bearer_token(make_partner, make_case):
    make_case(pdq("a"))
    _, secrets = make_partner(("adult",))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['subscription_key']}")
    assert post(client, item(pdq("a"))).status_code == 401


def test_it_rejects_wrong_method(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_the_service_validates_too(make_partner, make_case):
    make_case(pdq("a"))
    partner, _ = make_partner(("adult",))
    good = FeedbackItem("adult", "pdq", pdq("a")["value"], "none", ("tag",))
    bad = FeedbackItem("adult", "pdq", pdq("a")["value"], "great", ())
    with pytest.raises(InvalidInput) as raised:
        feedback_submit(partner=partner, items=[good, bad], via="native")
    assert raised.value.field == "items[1].outcome"
    assert not FeedbackEvent.objects.exists()
    [result] = feedback_submit(partner=partner, items=[good], via="stopncii")
    assert result.ok
    assert Feedback.objects.get().outcome == "none"
    with pytest.raises(ValueError):
        feedback_submit(partner=partner, items=[good], via="carrier-pigeon")


def test_feedback_events_are_append_only(client, make_case):
    make_case(pdq("a"))
    post(client, item(pdq("a")))
    event = FeedbackEvent.objects.get()
    event.outcome = "not_blocked"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    assert FeedbackEvent.objects.get().outcome == "blocked"


def test_the_schema_documents_feedback_and_the_stopncii_api(api):
    schema = yaml.safe_load(api.get("/api/schema/").content)
    feedback = schema["paths"]["/exchange/v1/feedback"]["post"]
    assert {"200", "400", "401"} <= set(feedback["responses"])
    assert "get" in schema["paths"]["/stopncii/v1/FetchHashes"]
    assert "post" in schema["paths"]["/stopncii/v1/SubmitFeedback"]
