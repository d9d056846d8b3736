"""The per-case PIN lock holds under concurrent guessing and lasts its whole window.

Each attempt is counted before its PIN is checked, so no number of
simultaneous guesses gets more than HASHBANK_PIN_MAX_FAILURES of them checked.
Time is moved by editing the stored window start, as a clock would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client

from cases import pins
from cases.models import Case
from tests.conftest import pdq

STATUS = "/api/v1/cases/status"


def status(client: Client, case_number: str, pin: str, address: str = "203.0.113.1") -> int:
    response = client.post(
        STATUS,
        {"case_number": case_number, "pin": pin},
        content_type="application/json",
        REMOTE_ADDR=address,
    )
    return response.status_code


def move_clock(by: timedelta) -> None:
    """Age the case's failure window as if ``by`` had passed."""
    Case.objects.update(failed_pin_window_start=F("failed_pin_window_start") - by)


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[str]]:
    """Records each PIN checked against a given stored hash (the real Argon2 still runs)."""
    checked: dict[str, list[str]] = {}
    lock = threading.Lock()
    real_verify = pins.verify

    def counting_verify(pin_hash: str, pin: str) -> bool:
        with lock:
            checked.setdefault(pin_hash, []).append(pin)
        return real_verify(pin_hash, pin)

    monkeypatch.setattr(pins, "verify", counting_verify)
    return lambda pin_hash: checked.get(pin_hash, [])


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    settings.HASHBANK_RATE_CASE_STATUS = "1000/h"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_forty_concurrent_wrong_guesses_get_at_most_ten_pins_checked(make_case, verified):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are tested on PostgreSQL")
    created = make_case(pdq("race"))
    pin_hash = Case.objects.get().pin_hash
    start = threading.Barrier(40)
    codes: list[int] = []

    def guess(n: int) -> None:
        try:
            client = Client()
            start.wait()
            codes.append(status(client, created.case_number, f"wrong-{n:04d}", f"203.0.113.{n}"))
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert codes == [403] * 40
    assert len(verified(pin_hash)) == 10
    # The right PIN is now refused, unchecked, for the whole window.
    assert status(Client(), created.case_number, created.pin) == 403
    move_clock(timedelta(minutes=59))
    assert status(Client(), created.case_number, created.pin) == 403
    assert len(verified(pin_hash)) == 10
    move_clock(timedelta(minutes=1, seconds=1))
    assert status(Client(), created.case_number, created.pin) == 200


@pytest.mark.django_db
def test_the_lock_lasts_its_window_from_the_failure_that_reached_the_maximum(make_case):
    created = make_case(pdq("late"))
    client = Client()
    for _ in range(9):
        assert status(client, created.case_number, "wrong-pin") == 403
    move_clock(timedelta(minutes=50))
    assert status(client, created.case_number, "wrong-pin") == 403  # the tenth: locked now
    move_clock(timedelta(minutes=15))
    # 65 minutes after the first failure, 15 after the tenth.
    assert status(client, created.case_number, created.pin) == 403
    move_clock(timedelta(minutes=45, seconds=1))
    assert status(client, created.case_number, created.pin) == 200


@pytest.mark.django_db
def test_failures_older_than_the_window_are_forgotten(make_case):
    created = make_case(pdq("old"))
    client = Client()
    for _ in range(9):
        status(client, created.case_number, "wrong-pin")
    move_clock(timedelta(hours=1, seconds=1))
    for _ in range(9):
        assert status(client, created.case_number, "wrong-pin") == 403
    assert status(client, created.case_number, created.pin) == 200


@pytest.mark.django_db
def test_a_right_pin_gives_its_attempt_back(make_case):
    created = make_case(pdq("back"))
    client = Client()
    for _ in range(5):
        status(client, created.case_number, "wrong-pin")
    for _ in range(3):
        assert status(client, created.case_number, created.pin) == 200
    assert Case.objects.get().failed_pin_count == 5
    for _ in range(4):
        assert status(client, created.case_number, "wrong-pin") == 403
    assert status(client, created.case_number, created.pin) == 200
    assert status(client, created.case_number, "wrong-pin") == 403  # the tenth
    assert status(client, created.case_number, created.pin) == 403


@pytest.mark.django_db
def test_a_locked_case_checks_no_pin_against_its_hash(make_case, verified):
    created = make_case(pdq("locked"))
    pin_hash = Case.objects.get().pin_hash
    client = Client()
    for _ in range(10):
        status(client, created.case_number, "wrong-pin")
    assert len(verified(pin_hash)) == 10
    assert status(client, created.case_number, created.pin) == 403
    assert len(verified(pin_hash)) == 10
