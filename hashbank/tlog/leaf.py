"""Leaf encoding: one canonical ASCII line per log entry (``docs/LOG_FORMAT.md`` §1).

Decoding accepts exactly what the encoders produce, so a leaf has one byte form and one hash.
An add leaf carries a random salt (``add2``): once the add is redacted, its leaf hash is all a
reader gets, and without the salt nobody who holds the file can confirm a guess against it.
"""

from __future__ import annotations

import binascii
import re
from typing import Final, Literal, NamedTuple

from hashbank.tlog._codec import MAX_INT64, check_int

__all__ = [
    "REMOVE_REASONS",
    "SALT_SIZE",
    "Leaf",
    "LeafError",
    "check_value",
    "decode_leaf",
    "encode_add",
    "encode_remove",
]


class LeafError(ValueError):
    """Leaf bytes or fields that are not in the canonical encoding."""


REMOVE_REASONS: Final = frozenset({"withdrawn", "disabled", "expired"})
#: Bytes of random salt in every add leaf.
SALT_SIZE: Final = 32

_ALGORITHM_RE: Final = re.compile(r"[a-z0-9_]{1,16}")
_VALUE_RE: Final = re.compile(r"[0-9a-f]{1,512}")
_ORIGIN_RE: Final = re.compile(r"[!-*,-~]{1,255}")  # printable ASCII minus space and '+'
_FIXED_VALUE_LENGTHS: Final = {"pdq": 64, "md5": 32}
_MAX_LEAF_SIZE: Final = 1024

_ADD_LEAF_RE: Final = re.compile(
    rb"add2 ([0-9a-f]{64}) ([a-z0-9_]{1,16}) ([0-9a-f]{1,512}) (-|0|[1-9][0-9]?|100)"
    rb" (0|[1-9][0-9]{0,18})"
    rb"(?: ([!-*,-~]{1,255}))?\n"
)
_REMOVE_LEAF_RE: Final = re.compile(
    rb"remove (0|[1-9][0-9]{0,18}) (withdrawn|disabled|expired) (0|[1-9][0-9]{0,18})\n"
)


class Leaf(NamedTuple):
    """A decoded log entry. Fields that do not apply to ``op`` are None.

    A named tuple rather than a frozen dataclass: a sync decodes a leaf per entry, and a
    tuple is built in a third of the time.
    """

    op: Literal["add", "remove"]
    salt: bytes | None = None
    algorithm: str | None = None
    value: str | None = None
    quality: int | None = None
    timestamp: int = 0
    origin: str | None = None
    removes: int | None = None
    reason: str | None = None

    def encode(self) -> bytes:
        """The canonical leaf bytes (raises LeafError if the fields are not encodable)."""
        if self.op == "add":
            if self.removes is not None or self.reason is not None:
                raise LeafError("an add leaf has no removes/reason")
            if self.salt is None or self.algorithm is None or self.value is None:
                raise LeafError("an add leaf needs a salt, an algorithm and a value")
            return encode_add(
                salt=self.salt,
                algorithm=self.algorithm,
                value=self.value,
                quality=self.quality,
                timestamp=self.timestamp,
                origin=self.origin,
            )
        if self.op == "remove":
            fields = (self.salt, self.algorithm, self.value, self.quality, self.origin)
            if any(f is not None for f in fields):
                raise LeafError("a remove leaf has no salt/algorithm/value/quality/origin")
            if self.removes is None or self.reason is None:
                raise LeafError("a remove leaf needs removes and a reason")
            return encode_remove(index=self.removes, reason=self.reason, timestamp=self.timestamp)
        raise LeafError(f"unknown op {self.op!r}")


def check_value(algorithm: str, value: str) -> None:
    """Raise LeafError unless ``algorithm`` and ``value`` are encodable as they stand."""
    if not isinstance(algorithm, str) or _ALGORITHM_RE.fullmatch(algorithm) is None:
        raise LeafError("algorithm must match [a-z0-9_]{1,16}")
    if not isinstance(value, str) or _VALUE_RE.fullmatch(value) is None:
        raise LeafError("value must be 1 to 512 lowercase hex digits")
    want = _FIXED_VALUE_LENGTHS.get(algorithm)
    if want is not None and len(value) != want:
        raise LeafError(f"a {algorithm} value must be exactly {want} hex digits")


def encode_add(
    *,
    salt: bytes,
    algorithm: str,
    value: str,
    quality: int | None,
    timestamp: int,
    origin: str | None = None,
) -> bytes:
    """``add2 <salt hex> <algorithm> <value> <quality|-> <unix-time>[ <origin>]\\n`` (ASCII).

    ``salt`` must be ``SALT_SIZE`` fresh random bytes for every add (``secrets.token_bytes``),
    never reused: it is what keeps a redacted add's leaf hash from confirming a guessed value.
    """
    if not isinstance(salt, bytes) or len(salt) != SALT_SIZE:
        raise LeafError(f"salt must be {SALT_SIZE} bytes")
    check_value(algorithm, value)
    q = "-" if quality is None else str(check_int("quality", quality, hi=100, error=LeafError))
    ts = check_int("timestamp", timestamp, error=LeafError)
    head = f"add2 {salt.hex()} {algorithm} {value} {q} {ts}"
    if origin is None:
        return f"{head}\n".encode("ascii")
    if not isinstance(origin, str) or _ORIGIN_RE.fullmatch(origin) is None:
        raise LeafError("origin must be 1 to 255 printable ASCII characters without space or '+'")
    return f"{head} {origin}\n".encode("ascii")


def encode_remove(*, index: int, reason: str, timestamp: int) -> bytes:
    """``remove <index of the add entry> <reason> <unix-time>\\n`` (ASCII)."""
    idx = check_int("index", index, error=LeafError)
    if not isinstance(reason, str) or reason not in REMOVE_REASONS:
        raise LeafError(f"reason must be one of {sorted(REMOVE_REASONS)}")
    ts = check_int("timestamp", timestamp, error=LeafError)
    return f"remove {idx} {reason} {ts}\n".encode("ascii")


def decode_leaf(data: bytes) -> Leaf:
    """Decode canonical leaf bytes; anything the encoders would not produce raises LeafError."""
    if not isinstance(data, bytes):
        raise LeafError("leaf data must be bytes")
    if len(data) > _MAX_LEAF_SIZE:
        raise LeafError("leaf too long")
    m = _ADD_LEAF_RE.fullmatch(data)
    if m is not None:
        salt, algorithm_b, value_b, quality, timestamp_b, origin = m.groups()
        algorithm = algorithm_b.decode("ascii")
        value = value_b.decode("ascii")
        want = _FIXED_VALUE_LENGTHS.get(algorithm)
        if want is not None and len(value) != want:
            raise LeafError(f"a {algorithm} value must be exactly {want} hex digits")
        timestamp = int(timestamp_b)
        if timestamp > MAX_INT64:
            raise LeafError("timestamp out of range")
        leaf = Leaf(
            "add",
            binascii.unhexlify(salt),
            algorithm,
            value,
            None if quality == b"-" else int(quality),
            timestamp,
            None if origin is None else origin.decode("ascii"),
        )
    else:
        m = _REMOVE_LEAF_RE.fullmatch(data)
        if m is None:
            raise LeafError("not a canonical add or remove leaf")
        removes, timestamp = int(m[1]), int(m[3])
        if removes > MAX_INT64 or timestamp > MAX_INT64:
            raise LeafError("number out of range")
        leaf = Leaf(op="remove", removes=removes, reason=m[2].decode("ascii"), timestamp=timestamp)
    # The grammar above is canonical (no leading zeros, fixed separators, bounded fields), so
    # what matches is exactly what the encoders emit; the round-trip property tests hold this.
    return leaf
