"""A JSON body that gives one key twice is refused (400 ``duplicate_key``) on every API.

Parsers disagree on which of two equal keys wins; the bank refuses to pick one.
Bodies are sent as raw text, since no JSON encoder writes a key twice.
"""

from __future__ import annotations

import pytest

from cases.models import Case
from exchange.models import Feedback
from tests.conftest import pdq

pytestmark = pytest.mark.django_db

ELIGIBILITY = (
    '{"in_image": true, "under_18_at_capture": false, "has_media": true, "intimate": true}'
)
PDQ = pdq("dup")["value"]
HASH = f'{{"algorithm": "pdq", "value": "{PDQ}", "quality": 90}}'


def post_raw(client, path: str, text: str):
    return client.post(path, text, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            f'{{"eligibility": {ELIGIBILITY}, "hashes": [{HASH}], '
            '"pin": "a-pin-1", "pin": "b-pin-2"}',
            "pin",
            id="top-level",
        ),
        pytest.param(
            '{"eligibility": {"in_image": false, "in_image": true, "under_18_at_capture": false,'
            f' "has_media": true, "intimate": true}}, "hashes": [{HASH}]}}',
            "eligibility.in_image",
            id="nested",
        ),
        pytest.param(
            f'{{"eligibility": {ELIGIBILITY}, "hashes": [{HASH}, '
            '{"algorithm": "md5", "value": "0123456789abcdef0123456789abcdef", '
            '"algorithm": "pdq"}]}',
            "hashes[1].algorithm",
            id="in-a-list",
        ),
    ],
)
def test_a_case_body_with_a_repeated_key_is_refused_and_nothing_saved(api, body, field):
    response = post_raw(api, "/api/v1/cases", body)
    assert response.status_code == 400
    assert response.json() == {
        "code": "duplicate_key",
        "message": "The request body gives this key more than once: send each key once.",
        "field": field,
    }
    assert not Case.objects.exists()


def test_credentials_with_a_repeated_pin_are_refused(api, make_case):
    case = make_case(pdq("creds"))
    body = f'{{"case_number": "{case.case_number}", "pin": "wrong-pin", "pin": "{case.pin}"}}'
    response = post_raw(api, "/api/v1/cases/status", body)
    assert response.status_code == 400
    assert response.json()["field"] == "pin"


def test_the_same_body_without_the_repeat_is_accepted(api):
    body = f'{{"eligibility": {ELIGIBILITY}, "hashes": [{HASH}], "pin": "b-pin-2"}}'
    assert post_raw(api, "/api/v1/cases", body).status_code == 201


def test_equal_keys_in_different_objects_are_no_repeat(api):
    second = HASH.replace(PDQ, pdq("other")["value"])
    body = f'{{"eligibility": {ELIGIBILITY}, "hashes": [{HASH}, {second}]}}'
    assert post_raw(api, "/api/v1/cases", body).status_code == 201


def test_a_repeated_key_that_is_not_valid_unicode_is_named_escaped(api):
    body = '{"eligibility": {}, "\\ud800": 1, "\\ud800": 2}'
    response = post_raw(api, "/api/v1/cases", body)
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_key"
    assert response.json()["field"] == "\\ud800"


def test_feedback_with_a_repeated_key_is_refused_and_nothing_saved(partner_api, make_case):
    make_case(pdq("fb"))
    client = partner_api("adult")
    value = pdq("fb")["value"]
    body = (
        f'{{"items": [{{"list": "adult", "algorithm": "pdq", "value": "{value}",'
        ' "outcome": "not_blocked", "outcome": "blocked"}]}'
    )
    response = post_raw(client, "/exchange/v1/feedback", body)
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_key"
    assert response.json()["field"] == "items[0].outcome"
    assert not Feedback.objects.exists()
    fixed = body.replace('"outcome": "not_blocked", ', "")
    assert post_raw(client, "/exchange/v1/feedback", fixed).status_code == 200
