"""Shared fixtures: an API client and small factories for cases."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from cases.services import CaseCreated, Eligibility, case_create
from exchange.models import Partner
from exchange.push.services import partner_webhook_set
from exchange.services import partner_create
from hashbank.services import HashInput

ADULT = {"in_image": True, "under_18_at_capture": False, "has_media": True, "intimate": True}
MINOR = {**ADULT, "under_18_at_capture": True}


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    # Rate-limit counters live in the cache; each test starts with none.
    cache.clear()


@pytest.fixture(autouse=True)
def _no_auth_cache(settings: Any) -> None:
    """Tests see credential, grant and partner-position changes at once; test_auth_cache and
    test_partner_counts cover the caches."""
    from exchange.feeds.selectors import checkpoint_cache_clear, grant_cache_clear
    from exchange.push.services import deliveries_memo_clear
    from exchange.selectors import partner_positions_cache_clear
    from exchange.services import auth_cache_clear

    settings.HASHBANK_AUTH_CACHE_S = 0
    settings.HASHBANK_PARTNER_POSITIONS_CACHE_S = 0
    settings.HASHBANK_CHECKPOINT_CACHE_MS = 0
    auth_cache_clear()
    grant_cache_clear()
    checkpoint_cache_clear()
    deliveries_memo_clear()
    partner_positions_cache_clear()


@pytest.fixture(autouse=True)
def _local_receivers(settings: Any) -> None:
    """Test receivers and peer banks listen on 127.0.0.1, which production refuses.

    tests/exchange/test_outbound_addresses.py turns it off again to check the refusals.
    """
    settings.HASHBANK_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def operator(client: Client, db: None) -> Client:
    """A browser logged in to the admin as an operator (a superuser)."""
    user = User.objects.create_superuser("operator", "op@example.org", "a-long-operator-password")
    client.force_login(user)
    return client


def pdq(seed: str, quality: int = 90) -> dict[str, Any]:
    return {
        "algorithm": "pdq",
        "value": hashlib.sha256(seed.encode()).hexdigest(),
        "quality": quality,
    }


def md5(seed: str) -> dict[str, Any]:
    return {"algorithm": "md5", "value": hashlib.md5(seed.encode()).hexdigest()}


def case_body(*hashes: dict[str, Any], minor: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "eligibility": dict(MINOR if minor else ADULT),
        "hashes": list(hashes) or [pdq("default")],
        **extra,
    }


def as_inputs(*hashes: dict[str, Any]) -> list[HashInput]:
    return [HashInput(h["algorithm"], h["value"], h.get("quality")) for h in hashes]


@pytest.fixture
def make_case(db: None) -> Callable[..., CaseCreated]:
    """Create a case through the service, as the API would."""

    def make(*hashes: dict[str, Any], minor: bool = False, pin: str | None = None) -> CaseCreated:
        return case_create(
            eligibility=Eligibility(**(MINOR if minor else ADULT)),
            hashes=as_inputs(*(hashes or (pdq("default"),))),
            pin=pin,
        )

    return make


@pytest.fixture
def make_partner(db: None) -> Callable[..., tuple[Partner, dict[str, str]]]:
    counter = iter(range(1, 10_000))

    def make(
        lists: tuple[str, ...] = ("adult",), webhook_url: str = "", **kwargs: Any
    ) -> tuple[Partner, dict[str, str]]:
        partner, secrets = partner_create(
            name=f"Platform {next(counter)}", lists=list(lists), **kwargs
        )
        if webhook_url:
            secrets["webhook_secret"] = partner_webhook_set(partner=partner, url=webhook_url)
        return partner, secrets

    return make


@pytest.fixture
def partner_api(make_partner: Callable[..., Any]) -> Callable[..., APIClient]:
    """An API client authenticated as a new partner of these lists."""

    def make(*lists: str) -> APIClient:
        _, secrets = make_partner(lists or ("adult",))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")
        return client

    return make


@pytest.fixture
def in_process_tasks(settings: Any) -> Any:
    """Celery tasks run inline, whatever broker CI configures."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.task_always_eager = previous


@contextlib.contextmanager
def log_rewritable() -> Iterator[None]:
    """For tests that move log timestamps: lift the append-only trigger meanwhile.

    PostgreSQL refuses any change to the log but redaction
    (``hashbank/migrations/0012_log_append_only.py``); a test that simulates the
    passing of time by rewriting timestamps switches ordinary triggers off
    meanwhile, as a superuser can (the tests' role is one; the app's is not).
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
