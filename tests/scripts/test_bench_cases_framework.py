"""The framework ceiling: the yardstick must do the framework's work as the case API does it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings

from scripts.bench_cases import random_case_body

pytestmark = pytest.mark.django_db

FRAMEWORK = override_settings(ROOT_URLCONF="scripts.bench_cases_framework")


def post(client: Client, path: str, body: bytes | dict[str, Any]) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data, content_type="application/json")


def both(client: Client, path: str, body: bytes | dict[str, Any]) -> tuple[Any, Any]:
    """The case API's answer to this request, then the framework ceiling's."""
    real = post(client, path, body)
    with FRAMEWORK:
        return real, post(client, path, body)


def test_it_refuses_bad_input_with_the_case_apis_own_answer(client: Client) -> None:
    bad = json.loads(random_case_body())
    bad["hashes"][3]["value"] = "not hex"
    real, ceiling = both(client, "/api/v1/cases", bad)
    assert real.status_code == ceiling.status_code == 400
    assert ceiling.json() == real.json()


def test_a_creation_answers_in_the_case_apis_shape(client: Client) -> None:
    body = random_case_body()
    real, response = both(client, "/api/v1/cases", body)
    assert (real.status_code, response.status_code) == (201, 201)
    ceiling, real = response.json(), real.json()
    assert ceiling.keys() == real.keys()
    assert [h.keys() for h in ceiling["hashes"]] == [h.keys() for h in real["hashes"]]
    sent = json.loads(body)["hashes"]
    assert [(h["algorithm"], h["value"]) for h in ceiling["hashes"]] == [
        (h["algorithm"], h["value"]) for h in sent
    ]


def test_a_status_check_answers_twenty_hashes_in_the_case_apis_shape(client: Client) -> None:
    created = post(client, "/api/v1/cases", random_case_body()).json()
    credentials = {"case_number": created["case_number"], "pin": created["pin"]}
    real, response = both(client, "/api/v1/cases/status", credentials)
    assert (real.status_code, response.status_code) == (200, 200)
    ceiling, real = response.json(), real.json()
    assert ceiling.keys() == real.keys()
    assert len(ceiling["hashes"]) == 20
    assert ceiling["hashes"][0].keys() == real["hashes"][0].keys()


def test_it_is_rate_limited_as_the_case_api_is(client: Client, settings: Any) -> None:
    settings.HASHBANK_RATE_CASE_CREATE = "1/h"
    with FRAMEWORK:
        first = post(client, "/api/v1/cases", random_case_body())
        second = post(client, "/api/v1/cases", random_case_body())
    assert (first.status_code, second.status_code) == (201, 429)
    assert second.json()["code"] == "rate_limited"
