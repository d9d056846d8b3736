"""The benchmark's ceiling server: the yardstick must do the PIN work a real case API does."""

from __future__ import annotations

import io
import json

import pytest

from cases import pins
from scripts.bench_cases import ceiling_app, random_case_body


def call(path: str, body: bytes = b"") -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    status: list[str] = []
    data = b"".join(ceiling_app(environ, lambda s, headers: status.append(s)))
    return status[0], data


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each real Argon2 call the ceiling makes (the calls still run)."""
    calls: list[str] = []
    real_hash, real_verify = pins.hash_pin, pins.verify

    def hash_pin(pin: str) -> str:
        calls.append("hash")
        return real_hash(pin)

    def verify(pin_hash: str, pin: str) -> bool:
        calls.append("verify")
        return real_verify(pin_hash, pin)

    pins.spend_equal_time("warm-up")  # makes the process's decoy hash before the counting
    monkeypatch.setattr(pins, "hash_pin", hash_pin)
    monkeypatch.setattr(pins, "verify", verify)
    return calls


def test_a_creation_hashes_one_pin_and_answers_as_the_case_api(argon2_calls: list[str]) -> None:
    body = random_case_body()
    status, data = call("/api/v1/cases", body)
    answer = json.loads(data)
    assert status == "201 Created"
    assert argon2_calls == ["hash"]
    assert len(answer["pin"]) == pins.GENERATED_PIN_DIGITS and answer["pin"].isdigit()
    assert answer["case_number"]
    assert answer["hashes"] == json.loads(body)["hashes"]


def test_a_status_check_verifies_one_pin_and_lists_twenty_hashes(argon2_calls: list[str]) -> None:
    status, data = call("/api/v1/cases/status", b'{"case_number": "x", "pin": "12345678"}')
    assert status == "200 OK"
    assert argon2_calls == ["verify"]
    assert len(json.loads(data)["hashes"]) == 20


def test_health_check_does_no_argon2_work(argon2_calls: list[str]) -> None:
    assert call("/healthz") == ("200 OK", b"ok")
    assert argon2_calls == []
