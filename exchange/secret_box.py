"""Encryption at rest for the few secrets the bank must be able to read back.

Webhook secrets (the bank signs with them) and credentials for peer banks (the
bank presents them) cannot be stored as one-way hashes. They are sealed with
AES-256-GCM under HASHBANK_ENCRYPTION_KEY, which lives outside the database.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

_VERSION = b"\x01"


def _aead() -> AESGCM:
    # Any length of key text is accepted; it is reduced to 256 bits.
    key = hashlib.sha256(settings.HASHBANK_ENCRYPTION_KEY.encode()).digest()
    return AESGCM(key)


def seal(plaintext: str, *, purpose: str) -> str:
    """Encrypt ``plaintext``; ``purpose`` binds it to its use (e.g. ``webhook:12``)."""
    nonce = os.urandom(12)
    sealed = _aead().encrypt(nonce, plaintext.encode(), purpose.encode())
    return base64.b64encode(_VERSION + nonce + sealed).decode("ascii")


def unseal(token: str, *, purpose: str) -> str:
    raw = base64.b64decode(token)
    if raw[:1] != _VERSION:
        raise ValueError("unknown sealed-secret version")
    try:
        return _aead().decrypt(raw[1:13], raw[13:], purpose.encode()).decode()
    except InvalidTag:
        raise ValueError(
            "sealed secret does not open: wrong HASHBANK_ENCRYPTION_KEY or tampered"
        ) from None
