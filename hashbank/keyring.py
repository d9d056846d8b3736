"""The bank's Ed25519 signing keys, as configured (pure: no Django).

Key text, from ``HASHBANK_SIGNING_KEY`` or the file ``HASHBANK_SIGNING_KEY_FILE``:
one key per line (or separated by ``;`` in an environment variable), each
``<status> <base64 32-byte seed>`` with status ``active`` or ``retiring``; a bare
seed means ``active``. ``#`` starts a comment. Exactly one key is active.

During a rotation the file holds the new key as ``active`` and the old one as
``retiring``: checkpoints carry both signatures, so partners that pinned either
key keep verifying while they move to the new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashbank import tlog

STATUSES = ("active", "retiring")


class KeyringError(ValueError):
    pass


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    status: str

    @property
    def public_key_bytes(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def signer(self, name: str) -> tlog.NoteSigner:
        return tlog.NoteSigner(name, self.private_key)

    def to_line(self) -> str:
        return f"{self.status} {tlog.private_key_to_text(self.private_key)}"


def parse_keyring(text: str) -> list[SigningKey]:
    """Parse key text; errors never include key material."""
    keys: list[SigningKey] = []
    for number, raw in enumerate(text.replace(";", "\n").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 1:
            status, seed = "active", parts[0]
        elif len(parts) == 2:
            status, seed = parts
        else:
            raise KeyringError(f"signing key line {number}: expected '<status> <base64 seed>'")
        if status not in STATUSES:
            raise KeyringError(f"signing key line {number}: status must be active or retiring")
        try:
            private = tlog.private_key_from_text(seed)
        except ValueError:
            raise KeyringError(
                f"signing key line {number}: not a base64 32-byte Ed25519 seed"
            ) from None
        keys.append(SigningKey(private, status))
    active = [k for k in keys if k.status == "active"]
    if len(active) != 1:
        raise KeyringError(f"exactly one signing key must be active, found {len(active)}")
    if len({k.public_key_bytes for k in keys}) != len(keys):
        raise KeyringError("the same signing key is listed twice")
    return keys


def format_keyring(keys: list[SigningKey]) -> str:
    header = "# hashbank signing keys: '<active|retiring> <base64 Ed25519 seed>'. Keep secret.\n"
    return header + "".join(k.to_line() + "\n" for k in keys)


def new_keyring() -> str:
    return format_keyring([SigningKey(tlog.generate_private_key(), "active")])
