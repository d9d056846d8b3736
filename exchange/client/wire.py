"""The small encodings of the pull API's JSON: base64 fields and quoting what was served."""

from __future__ import annotations

import binascii

# binascii directly: these run for every entry of a sync, and base64's wrappers cost as
# much again as the work.


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def unb64(text: object) -> bytes | None:
    """Standard padded base64 (no whitespace) → bytes; None if it is not.

    ``strict_mode`` is what ``base64.b64decode(text, validate=True)`` does.
    """
    if not isinstance(text, str):
        return None
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def short(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: served values are quoted in errors."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
