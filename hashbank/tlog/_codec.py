"""Checks and encodings every tlog wire format shares, defined once."""

from __future__ import annotations

import base64
import re
from typing import Final

HASH_SIZE: Final = 32
#: Largest index / timestamp / tree size accepted anywhere (fits a signed 64-bit integer).
MAX_INT64: Final = 2**63 - 1

#: ASCII control characters other than newline: C2SP note text may hold none of them.
CONTROL_RE: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")
_B64_RE: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def check_int(
    name: str,
    value: object,
    *,
    lo: int = 0,
    hi: int = MAX_INT64,
    error: type[ValueError] | None = None,
) -> int:
    """``value`` if it is an int in [lo, hi].

    Otherwise TypeError (not an int) or ValueError (out of range), or ``error`` for both when
    given, so each format reports bad numbers with its own exception.
    """
    if type(value) is not int:  # rejects bool and int subclasses too
        raise (error or TypeError)(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise (error or ValueError)(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_hash(name: str, value: object, error: type[ValueError] = ValueError) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise error(f"{name} must be {HASH_SIZE} bytes")
    return value


def encodes_as_utf8(text: str) -> bool:
    """False for text holding lone surrogates, which no wire format can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def b64decode_strict(text: object) -> bytes | None:
    """Decode canonical standard base64 (padded, no whitespace, zero pad bits); None if not."""
    if not isinstance(text, str) or _B64_RE.fullmatch(text) is None:
        return None
    data = base64.b64decode(text, validate=True)
    if base64.b64encode(data).decode("ascii") != text:
        return None
    return data


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
