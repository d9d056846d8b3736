"""hashbank.jsonapi: the case API's short way through DRF answers exactly as DRF does.

Each request goes once through the URLconf (the short way, for a JSON POST)
and once through the plain DRF view; status, body and headers must agree.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import translation

from cases import case_numbers
from cases.api import CaseCreateApi, CaseStatusApi, CaseWithdrawApi
from cases.urls import urlpatterns
from tests.conftest import ADULT, md5, pdq

pytestmark = pytest.mark.django_db

SHORT = {p.name: p.callback for p in urlpatterns}
DRF = {
    "case-create": CaseCreateApi.as_view(),
    "case-status": CaseStatusApi.as_view(),
    "case-withdraw": CaseWithdrawApi.as_view(),
}
RANDOM = {"case_number", "pin", "created_at"}


def answer(view: Any, body: bytes, content_type: str = "application/json", **extra: Any):
    request = RequestFactory().post(
        "/api/v1/x", data=body, content_type=content_type, REMOTE_ADDR="192.0.2.1", **extra
    )
    with translation.override("sv"):
        response = view(request)
        if hasattr(response, "render"):
            response.render()
    data = json.loads(response.content)
    for key in RANDOM & set(data):
        data[key] = "…"
    headers = {k: v for k, v in response.items() if k.lower() != "content-length"}
    return response.status_code, data, headers


CREATE_BODIES = [
    {"eligibility": ADULT, "hashes": [pdq("a"), md5("b")]},
    {"eligibility": ADULT, "hashes": [pdq("a")], "pin": "my own pin"},
    {"eligibility": {**ADULT, "in_image": False}, "hashes": [pdq("a")]},  # 422 with help
    {"eligibility": ADULT, "hashes": []},
    {"eligibility": ADULT, "hashes": [pdq("a"), pdq("a")]},
    {"eligibility": ADULT, "hashes": [{**pdq("a"), "quality": 49}]},
    {"eligibility": ADULT, "hashes": [pdq("a")], "extra": 1},
    {"eligibility": "yes", "hashes": [pdq("a")]},
    ["not", "an", "object"],
    None,
]


@pytest.mark.parametrize("body", CREATE_BODIES)
def test_case_creation_answers_as_drf_does(body):
    raw = json.dumps(body).encode()
    assert answer(SHORT["case-create"], raw) == answer(DRF["case-create"], raw)


@pytest.mark.parametrize("name", ["case-status", "case-withdraw"])
@pytest.mark.parametrize(
    "body",
    [
        {"case_number": case_numbers.generate(), "pin": "123456"},  # unknown
        {"case_number": "7KQ4-M2XD-9PZA-3HC9", "pin": "123456"},  # mistyped
        {"case_number": "short", "pin": "123456"},
        {"case_number": 5, "pin": "123456"},
        {"pin": "123456"},
    ],
)
def test_status_and_withdrawal_answer_as_drf_does(name, body):
    raw = json.dumps(body).encode()
    assert answer(SHORT[name], raw) == answer(DRF[name], raw)


def test_a_real_case_is_checked_and_withdrawn_the_same_way(make_case):
    created = make_case(pdq("real"))
    raw = json.dumps({"case_number": created.case_number, "pin": created.pin}).encode()
    assert answer(SHORT["case-status"], raw) == answer(DRF["case-status"], raw)
    short = answer(SHORT["case-withdraw"], raw)
    assert short[1]["state"] == "withdrawn"
    assert short == answer(DRF["case-withdraw"], raw)  # and withdrawing again is the same


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"eligibility": ', "application/json"),
        (b'{"a": NaN}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        ('{"x": "é"}', "application/json; charset=latin-1"),  # encoded by the factory
        (b"a=1", "text/plain"),
    ],
)
def test_anything_unusual_goes_to_drf_unchanged(body, content_type):
    assert answer(SHORT["case-create"], body, content_type) == answer(
        DRF["case-create"], body, content_type
    )


def test_other_methods_go_to_drf(client):
    response = client.get("/api/v1/cases", HTTP_HOST="localhost")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "POST, OPTIONS"


def test_rate_limits_answer_as_drf_does(settings):
    settings.HASHBANK_RATE_CASE_STATUS = "2/h"
    raw = json.dumps({"case_number": case_numbers.generate(), "pin": "123456"}).encode()
    answers = [answer(SHORT["case-status"], raw) for _ in range(3)]
    assert [a[0] for a in answers] == [403, 403, 429]
    from django.core.cache import cache

    cache.clear()
    assert [answer(DRF["case-status"], raw) for _ in range(3)] == answers
    assert answers[2][2]["Retry-After"] == "600"


def test_the_schema_still_documents_the_three_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/cases", "/api/v1/cases/status", "/api/v1/cases/withdraw"):
        assert set(schema["paths"][path]) == {"post"}
    assert schema["paths"]["/api/v1/cases"]["post"]["operationId"] == "case_create"
