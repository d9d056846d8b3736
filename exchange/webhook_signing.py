"""Standard Webhooks signing (https://www.standardwebhooks.com/), pure: no Django.

A secret is ``whsec_`` + base64 of 32 random bytes. A message is signed as
``v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>``; during a secret
rotation the ``webhook-signature`` header carries one signature per secret,
separated by spaces, so a receiver holding either secret accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Final

PREFIX: Final = "whsec_"
TOLERANCE_S: Final = 5 * 60


class WebhookSignatureError(ValueError):
    pass


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    if not secret.startswith(PREFIX):
        raise WebhookSignatureError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except ValueError:
        raise WebhookSignatureError("a webhook secret is whsec_ + base64") from None
    if len(key) < 24:
        raise WebhookSignatureError("a webhook secret holds at least 24 bytes")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def sign_headers(
    secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every given secret."""
    if not secrets_:
        raise WebhookSignatureError("no webhook secret to sign with")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: int) -> None:
    """Raise WebhookSignatureError unless one v1 signature matches and the time is fresh."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, sigs = (
        lowered.get("webhook-id"),
        lowered.get("webhook-timestamp"),
        lowered.get("webhook-signature"),
    )
    if not (msg_id and stamp and sigs):
        raise WebhookSignatureError("missing webhook headers")
    if not stamp.isdigit() or abs(now - int(stamp)) > TOLERANCE_S:
        raise WebhookSignatureError("webhook timestamp too old or too new")
    expected = signature(secret, msg_id, int(stamp), body)
    if not any(hmac.compare_digest(expected, s) for s in sigs.split(" ")):
        raise WebhookSignatureError("no matching webhook signature")
