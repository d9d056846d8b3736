"""The case-number email: sent once, and its body is never printed or logged.

Production refuses backends that don't deliver (tests/config/test_settings.py);
these tests check what the project itself writes to stdout, stderr and its
logs when it sends, or fails to send, the email.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from cases import case_numbers
from tests.conftest import case_body, pdq

pytestmark = pytest.mark.django_db

ADDRESS = "someone.private@example.org"


def create_with_email(api: Any, callbacks: Any, seed: str) -> str:
    with callbacks(execute=True):
        response = api.post("/api/v1/cases", case_body(pdq(seed), email=ADDRESS), format="json")
    assert response.status_code == 201, response.content
    return response.json()["case_number"]


def secrets_of(number: str) -> list[str]:
    return [number, case_numbers.canonical(number), ADDRESS, "Keep it safe with your PIN"]


def test_the_development_backend_prints_that_mail_was_sent_but_no_body_or_address(
    api, capfd, caplog, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "hashbank.mail.RedactingConsoleBackend"
    caplog.set_level(logging.DEBUG)

    number = create_with_email(api, django_capture_on_commit_callbacks, "dev-mail")

    out, err = capfd.readouterr()
    assert "Email sent" in out and "Your case number" in out
    written = "\n".join([out, err, *(r.getMessage() for r in caplog.records)])
    for secret in secrets_of(number):
        assert secret not in written


def test_a_failed_delivery_logs_that_it_failed_and_nothing_of_the_message(
    api, capfd, caplog, django_capture_on_commit_callbacks, settings
):
    # A real SMTP backend, pointed at a port where nothing listens.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    caplog.set_level(logging.DEBUG)

    number = create_with_email(api, django_capture_on_commit_callbacks, "smtp-down")

    assert any("could not be sent" in r.getMessage() for r in caplog.records)
    out, err = capfd.readouterr()
    written = "\n".join(
        [out, err, *(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)]
    )
    for secret in secrets_of(number):
        assert secret not in written
