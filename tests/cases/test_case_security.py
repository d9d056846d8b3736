"""What the case API must never reveal, and how it resists guessing."""

from __future__ import annotations

import logging

import pytest
from django.core import mail

from cases import case_numbers
from cases.models import Case
from tests.conftest import case_body, pdq

pytestmark = pytest.mark.django_db


def _other_valid_number(number: str) -> str:
    while True:
        candidate = case_numbers.generate()
        if candidate != number:
            return candidate


def test_unknown_case_and_wrong_pin_get_byte_identical_answers(api, make_case):
    case = make_case(pdq("x"))
    wrong_pin = api.post(
        "/api/v1/cases/status", {"case_number": case.case_number, "pin": "nope-nope"}, format="json"
    )
    unknown = api.post(
        "/api/v1/cases/status",
        {"case_number": _other_valid_number(case.case_number), "pin": case.pin},
        format="json",
    )
    assert wrong_pin.status_code == unknown.status_code == 403
    assert wrong_pin.content == unknown.content
    assert sorted(wrong_pin.headers.items()) == sorted(unknown.headers.items())
    withdraw_wrong = api.post(
        "/api/v1/cases/withdraw",
        {"case_number": case.case_number, "pin": "nope-nope"},
        format="json",
    )
    assert withdraw_wrong.content == wrong_pin.content
    assert Case.objects.get().state == "active"


def test_a_case_locks_after_ten_wrong_pins_and_then_answers_like_an_unknown_case(
    api, make_case, settings
):
    settings.HASHBANK_RATE_CASE_STATUS = "1000/h"
    case = make_case(pdq("lock"))
    creds = {"case_number": case.case_number, "pin": "wrong-pin"}
    for _ in range(10):
        assert api.post("/api/v1/cases/status", creds, format="json").status_code == 403
    locked = api.post(
        "/api/v1/cases/status", {"case_number": case.case_number, "pin": case.pin}, format="json"
    )
    unknown = api.post(
        "/api/v1/cases/status",
        {"case_number": _other_valid_number(case.case_number), "pin": case.pin},
        format="json",
    )
    assert locked.status_code == 403
    assert locked.content == unknown.content


def test_the_lock_lifts_after_an_hour(api, make_case, settings):
    settings.HASHBANK_RATE_CASE_STATUS = "1000/h"
    case = make_case(pdq("lift"))
    for _ in range(10):
        api.post(
            "/api/v1/cases/status",
            {"case_number": case.case_number, "pin": "bad-pin"},
            format="json",
        )
    from datetime import timedelta

    Case.objects.update(
        failed_pin_window_start=Case.objects.get().failed_pin_window_start
        - timedelta(hours=1, seconds=1)
    )
    ok = api.post(
        "/api/v1/cases/status", {"case_number": case.case_number, "pin": case.pin}, format="json"
    )
    assert ok.status_code == 200
    assert Case.objects.get().failed_pin_count == 0


def test_fewer_than_ten_failures_do_not_lock(api, make_case, settings):
    settings.HASHBANK_RATE_CASE_STATUS = "1000/h"
    case = make_case(pdq("nine"))
    for _ in range(9):
        api.post(
            "/api/v1/cases/status",
            {"case_number": case.case_number, "pin": "bad-pin"},
            format="json",
        )
    ok = api.post(
        "/api/v1/cases/status", {"case_number": case.case_number, "pin": case.pin}, format="json"
    )
    assert ok.status_code == 200


def test_no_client_address_is_stored_with_a_case(api):
    response = api.post(
        "/api/v1/cases", case_body(pdq("ip")), format="json", REMOTE_ADDR="203.0.113.99"
    )
    assert response.status_code == 201
    for row in Case.objects.values():
        assert "203.0.113.99" not in " ".join(str(v) for v in row.values())
    assert not any("ip" in f.name or "addr" in f.name for f in Case._meta.get_fields())


def test_case_numbers_and_pins_never_reach_the_logs(api, caplog, settings):
    settings.HASHBANK_RATE_CASE_STATUS = "1000/h"
    caplog.set_level(logging.DEBUG)
    created = api.post("/api/v1/cases", case_body(pdq("log"), pin="my-secret-pin"), format="json")
    data = created.json()
    creds = {"case_number": data["case_number"], "pin": data["pin"]}
    api.post("/api/v1/cases/status", creds, format="json")
    api.post("/api/v1/cases/status", {**creds, "pin": "wrong-secret"}, format="json")
    api.post("/api/v1/cases/withdraw", creds, format="json")
    logged = "\n".join(
        f"{r.getMessage()} {r.args!r} {getattr(r, 'request', '')!r}" for r in caplog.records
    )
    assert caplog.records, "the requests should have produced some log records"
    for secret in (
        data["case_number"],
        case_numbers.canonical(data["case_number"]),
        "my-secret-pin",
        "wrong-secret",
    ):
        assert secret not in logged


def test_the_email_gets_the_case_number_once_and_the_address_is_kept_nowhere(
    api, caplog, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    caplog.set_level(logging.DEBUG)
    address = "someone.private@example.org"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/cases", case_body(pdq("mail"), email=address), format="json")
    assert response.status_code == 201
    number = response.json()["case_number"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [address]
    assert number in mail.outbox[0].body
    assert response.json()["pin"] not in mail.outbox[0].body
    assert address not in response.content.decode()
    assert address not in "\n".join(r.getMessage() for r in caplog.records)
    from django.apps import apps

    for model in apps.get_models():
        assert address not in repr(list(model.objects.values())), model
    assert address.split("@")[0] not in repr(list(Case.objects.values()))


def test_the_development_mail_backend_does_not_print_the_address(capsys, settings):
    from django.core.mail import send_mail

    settings.EMAIL_BACKEND = "hashbank.mail.RedactingConsoleBackend"
    send_mail("s", "the message", None, ["private@example.org"])
    out = capsys.readouterr().out
    assert "Email sent" in out
    assert "private@example.org" not in out
    assert "the message" not in out  # tests/cases/test_case_email.py: nor the case number
