"""A development email backend that never prints the recipient's address."""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.message import EmailMessage


class RedactingConsoleBackend(ConsoleBackend):
    """Like Django's console backend, but with To/Cc/Bcc replaced by a placeholder.

    The address a victim gives is used once and must not end up in anything
    that is kept, and a container's stdout usually is kept.
    """

    def write_message(self, message: EmailMessage) -> None:
        msg = message.message()
        for header in ("To", "Cc", "Bcc"):
            if header in msg:
                del msg[header]
                msg[header] = "<redacted>"
        self.stream.write(msg.as_bytes().decode("utf-8", "replace"))
        self.stream.write("\n" + "-" * 79 + "\n")
