"""Encryption at rest for the few secrets the bank must be able to read back.

Webhook secrets (the bank signs with them) and credentials for peer banks (the
bank presents them) cannot be stored as one-way hashes. They are sealed with
AES-256-GCM under HASHBANK_ENCRYPTION_KEY, which lives outside the database.

The key can be rotated as ``cryptography``'s ``MultiFernet`` rotates: new
secrets are sealed under the current key only, while the keys in
HASHBANK_ENCRYPTION_KEY_OLD still open what was sealed before; ``reseal`` opens
a secret with whichever key fits and seals it again under the current one
(``manage.py encryption_key_rotate`` does that for every stored secret).
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

_VERSION = b"\x01"


def _aead(key_text: str) -> AESGCM:
    # Any length of key text is accepted; it is reduced to 256 bits.
    return AESGCM(hashlib.sha256(key_text.encode()).digest())


def _keys() -> list[str]:
    """The current key first, then the old ones still accepted for opening."""
    return [settings.HASHBANK_ENCRYPTION_KEY, *settings.HASHBANK_ENCRYPTION_KEYS_OLD]


def seal(plaintext: str, *, purpose: str) -> str:
    """Encrypt ``plaintext``; ``purpose`` binds it to its use (e.g. ``webhook:12``)."""
    nonce = os.urandom(12)
    sealed = _aead(settings.HASHBANK_ENCRYPTION_KEY).encrypt(
        nonce, plaintext.encode(), purpose.encode()
    )
    return base64.b64encode(_VERSION + nonce + sealed).decode("ascii")


def _open(token: str, *, purpose: str) -> tuple[str, int]:
    """The plaintext and the position in ``_keys()`` of the key that opened it."""
    raw = base64.b64decode(token)
    if raw[:1] != _VERSION:
        raise ValueError("unknown sealed-secret version")
    for position, key in enumerate(_keys()):
        try:
            plaintext = _aead(key).decrypt(raw[1:13], raw[13:], purpose.encode())
        except InvalidTag:
            continue
        return plaintext.decode(), position
    raise ValueError(
        "sealed secret does not open: wrong HASHBANK_ENCRYPTION_KEY (or its old key is "
        "missing from HASHBANK_ENCRYPTION_KEY_OLD) or tampered"
    )


def unseal(token: str, *, purpose: str) -> str:
    return _open(token, purpose=purpose)[0]


def reseal(token: str, *, purpose: str) -> tuple[str, bool]:
    """``token`` sealed again under the current key, and whether it was under an old one.

    Raises ValueError, as ``unseal``, when no accepted key opens it.
    """
    plaintext, position = _open(token, purpose=purpose)
    return seal(plaintext, purpose=purpose), position > 0
