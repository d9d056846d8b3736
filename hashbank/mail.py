"""A development email backend that prints that a message was sent, never what it says."""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.message import EmailMessage


class RedactingConsoleBackend(ConsoleBackend):
    """Like Django's console backend, but with the recipients and the body withheld.

    The address a victim gives is used once, and the body carries their case
    number: neither may end up in anything that is kept, and a process's stdout
    usually is kept. Only the subject and the body's length are printed.
    Production refuses this backend (config/settings.py, "Email").
    """

    def write_message(self, message: EmailMessage) -> None:
        self.stream.write(
            f"Email sent (development backend): subject {message.subject!r}, "
            f"to <redacted>, body withheld ({len(str(message.body))} characters)\n"
        )
