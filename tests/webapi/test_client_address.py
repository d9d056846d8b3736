"""The client address the rate limits count by, behind zero or more trusted proxies.

Every test sends real requests through the case API with the addresses a proxy
and a client would put in ``REMOTE_ADDR`` and ``X-Forwarded-For``. A malformed
status check is refused (400) before any database work, so each request costs
only its rate-limit count; the third from one address within the limit of two
gets 429.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.test import RequestFactory

from webapi.addresses import client_address

pytestmark = pytest.mark.django_db

STATUS = "/api/v1/cases/status"
MALFORMED_CREDENTIALS = {"case_number": "x", "pin": "y"}
PROXY = "10.0.0.1"


@pytest.fixture(autouse=True)
def _two_per_hour(settings: Any) -> None:
    settings.HASHBANK_RATE_CASE_STATUS = "2/h"


def send(api: Any, forwarded: str | None = None, remote: str = PROXY) -> int:
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return api.post(STATUS, MALFORMED_CREDENTIALS, format="json", **headers).status_code


def test_without_trusted_proxies_a_changing_forwarded_header_does_not_bypass_the_limit(api):
    codes = [send(api, f"198.51.100.{n}", remote="203.0.113.7") for n in range(3)]
    assert codes == [400, 400, 429]
    assert send(api, remote="203.0.113.8") == 400


def test_behind_one_proxy_each_client_has_its_own_budget(api, settings):
    settings.HASHBANK_TRUSTED_PROXIES = 1
    assert [send(api, "203.0.113.7") for _ in range(3)] == [400, 400, 429]
    # Another victim behind the same proxy is not held up by the first.
    assert send(api, "198.51.100.9") == 400


def test_forged_entries_left_of_the_proxys_do_not_bypass_the_limit(api, settings):
    settings.HASHBANK_TRUSTED_PROXIES = 1
    forged = (f"{secrets.randbelow(256)}.1.2.3, 203.0.113.7" for _ in range(3))
    assert [send(api, header) for header in forged] == [400, 400, 429]


def test_behind_two_proxies_the_client_is_second_from_the_right(api, settings):
    settings.HASHBANK_TRUSTED_PROXIES = 2
    headers = [f"192.0.2.{n}, 203.0.113.7, 10.0.0.{n}" for n in range(3)]
    assert [send(api, header) for header in headers] == [400, 400, 429]
    assert send(api, "192.0.2.1, 198.51.100.9, 10.0.0.1") == 400


GARBAGE = [
    pytest.param(None, id="missing"),
    pytest.param("", id="empty"),
    pytest.param("not-an-address", id="word"),
    pytest.param("203.0.113.7:443", id="with-port"),
    pytest.param("999.1.2.3", id="octet-out-of-range"),
    pytest.param("203.0.113.7, ", id="blank-last-entry"),
    pytest.param(", , ,", id="commas"),
    pytest.param("203.0.113.7\x00", id="nul"),
    pytest.param("1" * 8000, id="huge"),
    pytest.param("[2001:db8::1]", id="bracketed"),
    pytest.param("2001:db8::1/64", id="network"),
    pytest.param("unknown", id="unknown"),
]


@pytest.mark.parametrize("forwarded", GARBAGE)
def test_a_garbled_forwarded_header_falls_back_to_the_proxy_address(api, settings, forwarded):
    settings.HASHBANK_TRUSTED_PROXIES = 1
    # Garbage counts against the proxy's budget: no 500, and no fresh budget per value.
    assert send(api, forwarded) == 400
    assert send(api, forwarded) == 400
    assert send(api, "203.0.113.7") == 400
    assert send(api, forwarded) == 429


def test_every_garbled_header_shares_one_budget(api, settings):
    settings.HASHBANK_TRUSTED_PROXIES = 1
    values = [p.values[0] for p in GARBAGE]
    codes = [send(api, value) for value in values]
    assert codes[:2] == [400, 400]
    assert set(codes[2:]) == {429}


def test_too_few_entries_fall_back_to_the_proxy_address(api, settings):
    settings.HASHBANK_TRUSTED_PROXIES = 3
    # Only two proxies wrote here (a request that bypassed the outer one).
    codes = [send(api, f"203.0.113.{n}, 10.0.0.2") for n in range(3)]
    assert codes == [400, 400, 429]


def test_ipv6_clients_are_counted_by_their_slash_64(api, settings):
    settings.HASHBANK_TRUSTED_PROXIES = 1
    # One home network holds a whole /64: rotating within it gives no new budget.
    assert [send(api, f"2001:db8:0:7::{n:x}") for n in range(1, 4)] == [400, 400, 429]
    assert send(api, "2001:db8:0:8::1") == 400


def test_an_ipv4_client_seen_through_a_dual_stack_proxy_is_itself(api, settings):
    settings.HASHBANK_TRUSTED_PROXIES = 1
    headers = ("::ffff:203.0.113.7", "203.0.113.7", "::ffff:203.0.113.7")
    codes = [send(api, header) for header in headers]
    assert codes == [400, 400, 429]
    # And not in one bucket with every other IPv4 client.
    assert send(api, "::ffff:198.51.100.9") == 400


def test_a_zone_in_an_ipv6_address_is_no_500(api, settings):
    settings.HASHBANK_TRUSTED_PROXIES = 1
    assert [send(api, "fe80::1%eth0") for _ in range(3)] == [400, 400, 429]


@pytest.mark.parametrize("remote", ["", "unix:/run/gunicorn.sock", "2001:db8::1"])
def test_any_remote_addr_is_no_500(api, remote):
    assert [send(api, remote=remote) for _ in range(3)] == [400, 400, 429]


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "expected"),
    [
        (0, "198.51.100.9", "203.0.113.7", "203.0.113.7"),
        (1, None, "10.0.0.1", "10.0.0.1"),
        (1, "198.51.100.9", "10.0.0.1", "198.51.100.9"),
        (1, " 198.51.100.9 ", "10.0.0.1", "198.51.100.9"),
        (1, "1.1.1.1,198.51.100.9", "10.0.0.1", "198.51.100.9"),
        (2, "1.1.1.1, 198.51.100.9, 10.0.0.2", "10.0.0.1", "198.51.100.9"),
        (2, "198.51.100.9", "10.0.0.1", "10.0.0.1"),
        (1, "garbage", "10.0.0.1", "10.0.0.1"),
        (1, "2001:DB8::0:1", "10.0.0.1", "2001:db8::1"),
        (1, "::ffff:198.51.100.9", "10.0.0.1", "198.51.100.9"),
        (1, "fe80::1%eth0", "10.0.0.1", "fe80::1"),
        (0, None, "", "0.0.0.0"),
        (1, "garbage", "garbage", "0.0.0.0"),
    ],
)
def test_the_address_each_header_gives(settings, proxies, forwarded, remote, expected):
    settings.HASHBANK_TRUSTED_PROXIES = proxies
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_address(RequestFactory().get("/", **extra)) == expected
