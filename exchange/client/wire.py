"""The small encodings of the pull API's JSON: base64 fields and quoting what was served."""

from __future__ import annotations

import base64
import binascii


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes | None:
    """Standard padded base64 (no whitespace) → bytes; None if it is not."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def short(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: served values are quoted in errors."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
