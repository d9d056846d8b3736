"""The HTTP side of the partner client: retries, Retry-After, HTTP errors, https only."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from exchange.client import http
from exchange.client.errors import AuthError, ConfigError, MalformedResponse, NotFound, ServerError
from exchange.client.http import BankClient, normalize_base_url
from exchange.client.sync import sync
from hashbank import tlog
from tests.exchange.client.fake_bank import ORIGIN, SLUG, TOKEN, FakeBank, fill, signer
from tests.exchange.client.partner import config


def test_retries_on_5xx_and_timeouts(bank: FakeBank, state_dir: Path, rng: random.Random) -> None:
    fill(bank.log, rng, 30)
    bank.fail_next = [503, 502]
    assert sync(config(bank, state_dir, retries=2)).size == 30
    fill(bank.log, rng, 5)
    bank.delay_next = [1.0]
    assert sync(config(bank, state_dir, timeout=0.3, retries=1)).size == 35
    fill(bank.log, rng, 5)
    bank.fail_next = [503, 503, 503]
    with pytest.raises(ServerError, match="HTTP 503"):
        sync(config(bank, state_dir, retries=2))


def test_http_errors_are_explained(bank: FakeBank, state_dir: Path) -> None:
    with pytest.raises(AuthError, match="check --token-file or HASHBANK_TOKEN"):
        sync(config(bank, state_dir, token="wrong"))
    other = signer("bank.test/lists/minor")
    with pytest.raises(NotFound, match="'minor' is unknown or not granted"):
        sync(config(bank, state_dir, slug="minor", vkeys=(other.vkey,)))
    assert not state_dir.exists()


def test_plain_http_is_refused_unless_local_or_allowed() -> None:
    assert normalize_base_url("https://bank.example.org/") == "https://bank.example.org"
    assert normalize_base_url("http://127.0.0.1:8000/x/") == "http://127.0.0.1:8000/x"
    assert normalize_base_url("https://b.org/exchange/v1") == "https://b.org"
    with pytest.raises(ConfigError, match="--allow-http"):
        normalize_base_url("http://bank.example.org")
    assert normalize_base_url("http://bank.example.org", allow_http=True)
    with pytest.raises(ConfigError):
        normalize_base_url("ftp://bank.example.org")


def test_keys_endpoint_is_not_sent_the_token(bank: FakeBank) -> None:
    with BankClient(bank.url, TOKEN) as client:
        assert client.keys()[0]["origin"] == ORIGIN
    assert bank.auth_seen == [("/exchange/v1/keys", None)]


def test_inclusion_proofs_from_the_client(bank: FakeBank, rng: random.Random) -> None:
    fill(bank.log, rng, 13)
    with BankClient(bank.url, TOKEN) as client:
        lh, proof = client.inclusion(SLUG, 5, 13)
    tlog.verify_inclusion(leaf_hash=lh, index=5, size=13, proof=proof, root=bank.log.roots[13])


def test_network_failure_is_a_server_error(tmp_path: Path) -> None:
    with (
        BankClient("http://127.0.0.1:9", TOKEN, retries=1, backoff=0, timeout=1) as client,
        pytest.raises(ServerError, match="after 2 attempt"),
    ):
        client.checkpoint(SLUG)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(bank: FakeBank, status: int) -> None:
    bank.fail_next = [status]
    bank.fail_headers = {"Retry-After": "1"}
    with BankClient(bank.url, TOKEN, retries=1, backoff=0) as client:
        assert client.checkpoint(SLUG) == bank.log.note().encode()
    first, second = bank.request_times
    assert second - first >= 0.95


def test_retry_after_is_capped(bank: FakeBank) -> None:
    bank.fail_next = [503]
    bank.fail_headers = {"Retry-After": "3600"}
    with BankClient(bank.url, TOKEN, retries=1, backoff=0, max_retry_after=1) as client:
        assert client.checkpoint(SLUG) == bank.log.note().encode()
    first, second = bank.request_times
    assert 0.95 <= second - first < 10


def test_a_malformed_retry_after_falls_back_to_the_backoff(bank: FakeBank) -> None:
    bank.fail_next = [503]
    bank.fail_headers = {"Retry-After": "soon"}
    with BankClient(bank.url, TOKEN, retries=1, backoff=0) as client:
        assert client.checkpoint(SLUG) == bank.log.note().encode()
    assert len(bank.requests) == 2


def test_an_answer_cut_off_in_its_body_is_retried(bank: FakeBank) -> None:
    bank.cut_next = 2
    with BankClient(bank.url, TOKEN, retries=2, backoff=0) as client:
        assert client.checkpoint(SLUG) == bank.log.note().encode()
    assert len(bank.requests) == 3
    bank.cut_next = 3
    with (
        BankClient(bank.url, TOKEN, retries=2, backoff=0) as client,
        pytest.raises(ServerError, match="broke off 3 time"),
    ):
        client.checkpoint(SLUG)


def test_backoff_without_retry_after(bank: FakeBank) -> None:
    bank.fail_next = [500, 502, 504]
    with BankClient(bank.url, TOKEN, retries=3, backoff=0.2) as client:
        assert client.checkpoint(SLUG) == bank.log.note().encode()
    times = bank.request_times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # urllib3's backoff: none before the first retry, then backoff * 2**(n - 1).
    assert gaps[1] >= 0.35 and gaps[2] >= 0.75


@pytest.mark.parametrize("status", [400, 403, 404, 413, 501])
def test_other_statuses_are_not_retried(bank: FakeBank, status: int) -> None:
    bank.fail_next = [status]
    bank.fail_headers = {"Retry-After": "1"}  # not even with Retry-After
    with (
        BankClient(bank.url, TOKEN, retries=3, backoff=0) as client,
        pytest.raises(ServerError, match=f"HTTP {status}"),
    ):
        client.checkpoint(SLUG)
    assert len(bank.requests) == 1


def test_retries_give_up_with_the_last_answer(bank: FakeBank) -> None:
    bank.fail_next = [503, 503, 503]
    with (
        BankClient(bank.url, TOKEN, retries=2, backoff=0) as client,
        pytest.raises(ServerError, match=r"HTTP 503: .*try later"),
    ):
        client.checkpoint(SLUG)
    assert len(bank.requests) == 3


def test_answers_larger_than_the_cap_are_refused(
    bank: FakeBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank.raw_entries_body = b'{"entries": [], "pad": "' + b"x" * 5000 + b'"}'
    monkeypatch.setattr(http, "MAX_PAGE_BYTES", 4096)
    with (
        BankClient(bank.url, TOKEN) as client,
        pytest.raises(MalformedResponse, match="larger than 4096 bytes"),
    ):
        client.entries(SLUG, 0, 10)
