"""Each case endpoint limits how often one client address may call it.

The counters live in the default cache: Django's Redis cache when CACHE_URL is
set (real Redis), the local-memory cache otherwise. Run this file both ways.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.test import Client

from cases.models import Case
from tests.conftest import case_body, pdq

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("/api/v1/cases", "HASHBANK_RATE_CASE_CREATE"),
    ("/api/v1/cases/status", "HASHBANK_RATE_CASE_STATUS"),
    ("/api/v1/cases/withdraw", "HASHBANK_RATE_CASE_WITHDRAW"),
]
# A malformed case number is refused (400) before any database work or PIN hash.
MALFORMED_CREDENTIALS = {"case_number": "x", "pin": "y"}


def body_for(path: str) -> dict[str, Any]:
    return case_body(pdq("rl")) if path == "/api/v1/cases" else MALFORMED_CREDENTIALS


@pytest.mark.parametrize(("path", "setting"), ENDPOINTS)
def test_each_endpoint_is_rate_limited_per_client_address(api, settings, path, setting):
    setattr(settings, setting, "3/h")
    body = body_for(path)
    codes = [
        api.post(path, body, format="json", REMOTE_ADDR="203.0.113.7").status_code for _ in range(4)
    ]
    assert 429 not in codes[:3]
    assert codes[3] == 429
    limited = api.post(path, body, format="json", REMOTE_ADDR="203.0.113.7")
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/json"
    assert limited["Retry-After"] == "600"
    assert limited.json() == {
        "code": "rate_limited",
        "message": "Too many requests from this address. Please wait a while and try again.",
        "field": None,
    }
    # Another address is not affected.
    other = api.post(path, body, format="json", REMOTE_ADDR="198.51.100.9")
    assert other.status_code != 429


def test_a_refused_creation_saves_nothing(api, settings):
    settings.HASHBANK_RATE_CASE_CREATE = "1/h"
    first = api.post("/api/v1/cases", case_body(pdq("one")), format="json")
    assert first.status_code == 201
    second = api.post("/api/v1/cases", case_body(pdq("two")), format="json")
    assert second.status_code == 429
    assert Case.objects.count() == 1


def test_each_endpoint_counts_on_its_own(api, settings):
    settings.HASHBANK_RATE_CASE_STATUS = "1/h"
    status = "/api/v1/cases/status"
    assert api.post(status, MALFORMED_CREDENTIALS, format="json").status_code == 400
    assert api.post(status, MALFORMED_CREDENTIALS, format="json").status_code == 429
    withdraw = api.post("/api/v1/cases/withdraw", MALFORMED_CREDENTIALS, format="json")
    assert withdraw.status_code == 400
    assert api.post("/api/v1/cases", case_body(pdq("own")), format="json").status_code == 201


def test_the_limit_answer_is_in_the_asked_language(api, settings):
    settings.HASHBANK_RATE_CASE_STATUS = "1/h"
    api.post("/api/v1/cases/status", MALFORMED_CREDENTIALS, format="json")
    limited = api.post(
        "/api/v1/cases/status", MALFORMED_CREDENTIALS, format="json", HTTP_ACCEPT_LANGUAGE="sv"
    )
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert "För många förfrågningar" in limited.json()["message"]


def test_simultaneous_requests_are_each_counted_once(settings):
    """With the limit at 10, exactly 10 of 24 simultaneous requests get through."""
    settings.HASHBANK_RATE_CASE_STATUS = "10/h"
    start = threading.Barrier(4)
    codes: list[int] = []

    def send() -> None:
        client = Client()
        start.wait()
        for _ in range(6):
            response = client.post(
                "/api/v1/cases/status",
                MALFORMED_CREDENTIALS,
                content_type="application/json",
                REMOTE_ADDR="203.0.113.50",
            )
            codes.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [400] * 10 + [429] * 14


@pytest.fixture
def redis_down(settings, monkeypatch, caplog):
    """The cache is Django's Redis backend pointed at a port where nothing listens."""
    from tests.celery_worker import free_port
    from webapi import rate_limits

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.5},
        }
    }
    monkeypatch.setattr(rate_limits, "local_counts", rate_limits.LocalCounts())
    caplog.set_level("WARNING", logger="webapi.rate_limits")
    return caplog


def test_while_the_cache_is_down_each_endpoint_answers_and_counts_in_the_process(
    api, settings, redis_down
):
    settings.HASHBANK_RATE_CASE_STATUS = "3/h"
    created = api.post("/api/v1/cases", case_body(pdq("down")), format="json")
    assert created.status_code == 201, created.content
    credentials = {"case_number": created.json()["case_number"], "pin": created.json()["pin"]}
    assert api.post("/api/v1/cases/status", credentials, format="json").status_code == 200
    codes = [
        api.post("/api/v1/cases/status", MALFORMED_CREDENTIALS, format="json").status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]
    # Another address has its own count.
    other = api.post(
        "/api/v1/cases/status", MALFORMED_CREDENTIALS, format="json", REMOTE_ADDR="198.51.100.9"
    )
    assert other.status_code == 400
    withdrawn = api.post("/api/v1/cases/withdraw", credentials, format="json")
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    # Logged once for the outage, not once per request.
    messages = [r.getMessage() for r in redis_down.records]
    assert sum("the cache is unavailable" in m for m in messages) == 1, messages
