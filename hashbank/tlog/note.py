"""Signed notes (C2SP ``signed-note``) with Ed25519 keys, compatible with Go's
``golang.org/x/mod/sumdb/note``: key names and IDs, verifier keys (vkeys), signing, opening,
and the text form of private keys (``docs/LOG_FORMAT.md`` §4).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from hashbank.tlog._codec import CONTROL_RE, b64decode_strict, b64encode, encodes_as_utf8

__all__ = [
    "MAX_NOTE_SIGNATURES",
    "MAX_NOTE_SIZE",
    "KeyFormatError",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "UnknownKeyError",
    "generate_private_key",
    "key_id",
    "open_note",
    "parse_vkey",
    "private_key_from_text",
    "private_key_to_text",
    "sign_note",
]


class NoteError(ValueError):
    """A malformed signed note, or a signature by a known key that does not verify."""


class UnknownKeyError(NoteError):
    """A well-formed note that carries no verified signature from any known key."""


class KeyFormatError(ValueError):
    """A verifier key or private key text that is malformed."""


#: Signed notes larger than this (in UTF-8 bytes) are refused, when signing and opening.
MAX_NOTE_SIZE: Final = 1 << 20
#: Notes with more signature lines than this are refused (same bound as Go's note.Open).
MAX_NOTE_SIGNATURES: Final = 100

ED25519_ALG: Final = 0x01
_SIG_PREFIX: Final = "\u2014 "  # EM DASH, SPACE

# Unicode White_Space (what Go's unicode.IsSpace reports), used for key-name validation on top
# of Python's str.isspace(), so both languages agree on what a valid key name is.
_GO_SPACES: Final = frozenset(
    [
        *(0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680),
        *range(0x2000, 0x200B),
        *(0x2028, 0x2029, 0x202F, 0x205F, 0x3000),
    ]
)


def _valid_key_name(name: object) -> TypeGuard[str]:
    """C2SP key name: non-empty, no Unicode space, no '+' (also: no control chars, UTF-8)."""
    if not isinstance(name, str) or not name or "+" in name:
        return False
    if CONTROL_RE.search(name):
        return False
    if any(ch.isspace() or ord(ch) in _GO_SPACES for ch in name):
        return False
    return encodes_as_utf8(name)


def _require_key_name(name: object, error: type[ValueError] = ValueError) -> str:
    if not _valid_key_name(name):
        raise error("key name must be non-empty, without spaces, '+' or control characters")
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]."""
    _require_key_name(name)
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise ValueError("Ed25519 public key must be 32 bytes")
    message = name.encode("utf-8") + b"\n" + bytes([ED25519_ALG]) + public_key
    return hashlib.sha256(message).digest()[:4]


def _check_note_text(text: object) -> bytes:
    """Validate note text for signing; return its UTF-8 bytes."""
    if not isinstance(text, str):
        raise NoteError("note text must be str")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if len(text) > MAX_NOTE_SIZE or CONTROL_RE.search(text):
        raise NoteError("note text is too long or holds control characters other than newline")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("note text is not valid Unicode") from None
    if len(data) > MAX_NOTE_SIZE:
        raise NoteError("note text too long")
    return data


class NoteVerifier:
    """An Ed25519 note verifier key: ``name``, ``key_id``, ``public_key_bytes``, ``vkey``."""

    __slots__ = ("_key", "key_id", "name", "public_key_bytes")

    def __init__(self, name: str, public_key: bytes | Ed25519PublicKey) -> None:
        self.name: str = _require_key_name(name, KeyFormatError)
        if isinstance(public_key, Ed25519PublicKey):
            public_key = public_key.public_bytes_raw()
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise KeyFormatError("Ed25519 public key must be 32 bytes")
        try:
            self._key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError:
            raise KeyFormatError("invalid Ed25519 public key") from None
        self.public_key_bytes: bytes = public_key
        self.key_id: bytes = key_id(name, public_key)

    @property
    def vkey(self) -> str:
        """``<name>+<key ID as 8 hex digits>+<base64(0x01 || public key)>``."""
        key = b64encode(bytes([ED25519_ALG]) + self.public_key_bytes)
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoteVerifier):
            return NotImplemented
        return (self.name, self.public_key_bytes) == (other.name, other.public_key_bytes)

    def __hash__(self) -> int:
        return hash((self.name, self.public_key_bytes))

    def __repr__(self) -> str:
        return f"NoteVerifier({self.vkey!r})"


def parse_vkey(vkey: str) -> NoteVerifier:
    """Parse ``<name>+<8 lowercase hex key ID>+<base64(0x01 || 32-byte key)>`` strictly."""
    if not isinstance(vkey, str):
        raise KeyFormatError("verifier key must be str")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("verifier key must be <name>+<key id>+<key>")
    name, hex_id, key_b64 = parts
    if not _valid_key_name(name):
        raise KeyFormatError("verifier key has an invalid key name")
    if re.fullmatch(r"[0-9a-f]{8}", hex_id) is None:
        raise KeyFormatError("verifier key ID must be 8 lowercase hex digits")
    key = b64decode_strict(key_b64)
    if key is None or len(key) == 0:
        raise KeyFormatError("verifier key must end in canonical base64")
    if key[0] != ED25519_ALG:
        raise KeyFormatError(f"unsupported verifier key algorithm 0x{key[0]:02x} (want 0x01)")
    if len(key) != 33:
        raise KeyFormatError("Ed25519 verifier key must hold 32 key bytes")
    verifier = NoteVerifier(name, key[1:])
    if verifier.key_id.hex() != hex_id:
        raise KeyFormatError("verifier key ID does not match the key")
    return verifier


class NoteSigner:
    """An Ed25519 note signer; the key name is normally the log origin."""

    __slots__ = ("_key", "key_id", "name", "public_key_bytes")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name: str = _require_key_name(name)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("private_key must be an Ed25519PrivateKey")
        self._key = private_key
        self.public_key_bytes: bytes = private_key.public_key().public_bytes_raw()
        self.key_id: bytes = key_id(name, self.public_key_bytes)

    @property
    def vkey(self) -> str:
        return self.verifier().vkey

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.public_key_bytes)

    def sign(self, text: str) -> str:
        """The signature line ``— <name> <base64(key ID || signature)>\\n`` for ``text``."""
        sig = self._key.sign(_check_note_text(text))
        return f"{_SIG_PREFIX}{self.name} {b64encode(self.key_id + sig)}\n"

    def __repr__(self) -> str:
        return f"NoteSigner({self.vkey!r})"


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """The signed note: ``text``, an empty line, then one signature line per signer.

    Per C2SP the text must end in a newline and hold no ASCII control character other than
    newline; it may contain empty lines (the last empty line of a note separates it from the
    signatures).
    """
    _check_note_text(text)
    signers = list(signers)
    if not signers:
        raise NoteError("at least one signer is needed")
    if len(signers) > MAX_NOTE_SIGNATURES:
        raise NoteError("too many signers")
    if len({(s.name, s.key_id) for s in signers}) != len(signers):
        raise NoteError("duplicate signer")
    note = text + "\n" + "".join(s.sign(text) for s in signers)
    if len(note.encode("utf-8")) > MAX_NOTE_SIZE:
        raise NoteError("signed note too long")
    return note


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """The verified text, the ``(name, key_id)`` of each verified signature, in note order,
    and those of the signatures by keys the caller does not know (ignored, not verified)."""

    text: str
    verified: tuple[tuple[str, bytes], ...]
    unknown: tuple[tuple[str, bytes], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.verified)


def open_note(note: str | bytes, verifiers: Sequence[NoteVerifier]) -> OpenedNote:
    """Verify a signed note against known verifier keys (C2SP signed-note).

    Signatures by unknown keys (name and key ID not both matching a known key) are ignored. A
    signature by a known key that fails, a duplicate signature by a known key, or a malformed
    note raises NoteError; no verified signature at all raises UnknownKeyError.
    """
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_SIZE:
            raise NoteError("note too long")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    elif isinstance(note, str):
        if len(note) > MAX_NOTE_SIZE:
            raise NoteError("note too long")
        try:
            size = len(note.encode("utf-8"))
        except UnicodeEncodeError:
            raise NoteError("note is not valid Unicode") from None
        if size > MAX_NOTE_SIZE:
            raise NoteError("note too long")
    else:
        raise NoteError("note must be str or bytes")

    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        if not isinstance(v, NoteVerifier):
            raise TypeError("verifiers must be NoteVerifier instances")
        prev = known.setdefault((v.name, v.key_id), v)
        if prev != v:
            raise ValueError(f"two different verifier keys share name and key ID ({v.name})")

    if CONTROL_RE.search(note):
        raise NoteError("note holds control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no empty line before its signatures")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise NoteError("note must end with signature lines")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise NoteError("too many signatures")

    message = text.encode("utf-8")
    verified: list[tuple[str, bytes]] = []
    unknown: list[tuple[str, bytes]] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("malformed signature line")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        raw = b64decode_strict(b64) if sep else None
        if raw is None or len(raw) < 5 or not _valid_key_name(name):
            raise NoteError("malformed signature line")
        kid, sig = raw[:4], raw[4:]
        verifier = known.get((name, kid))
        if verifier is None:
            if (name, kid) not in unknown:
                unknown.append((name, kid))
            continue
        if (name, kid) in verified:
            raise NoteError(f"duplicate signature by {name}")
        if not verifier.verify(message, sig):
            raise NoteError(f"invalid signature by {name}")
        verified.append((name, kid))
    if not verified:
        raise UnknownKeyError("note has no verified signature from a known key")
    return OpenedNote(text=text, verified=tuple(verified), unknown=tuple(unknown))


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_text(key: Ed25519PrivateKey) -> str:
    """Base64 of the 32-byte Ed25519 seed (keep it secret)."""
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("key must be an Ed25519PrivateKey")
    return b64encode(key.private_bytes_raw())


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """Inverse of ``private_key_to_text``; surrounding whitespace is ignored.

    Error messages never include the key material.
    """
    if not isinstance(text, str):
        raise KeyFormatError("signing key text must be str")
    seed = b64decode_strict(text.strip())
    if seed is None:
        raise KeyFormatError("signing key is not canonical standard base64")
    if len(seed) != 32:
        raise KeyFormatError(f"signing key must be a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)
