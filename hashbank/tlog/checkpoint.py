"""Checkpoints (C2SP ``tlog-checkpoint``): the note text a log signs (``docs/LOG_FORMAT.md`` §3).

Origin line, decimal tree size, base64 root hash, then optional extension lines, each ended by
a newline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hashbank.tlog._codec import (
    CONTROL_RE,
    HASH_SIZE,
    MAX_INT64,
    b64decode_strict,
    b64encode,
    check_hash,
    check_int,
    encodes_as_utf8,
)
from hashbank.tlog.note import MAX_NOTE_SIZE

__all__ = ["Checkpoint", "CheckpointError", "format_checkpoint", "parse_checkpoint"]


class CheckpointError(ValueError):
    """Checkpoint text that is not a well-formed C2SP tlog-checkpoint."""


_DECIMAL_RE: Final = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def _line_ok(line: object) -> bool:
    """Non-empty, no newline or other ASCII control character, encodable as UTF-8."""
    if not isinstance(line, str) or not line or "\n" in line or CONTROL_RE.search(line):
        return False
    return encodes_as_utf8(line)


def format_checkpoint(
    *, origin: str, size: int, root: bytes, extensions: Sequence[str] = ()
) -> str:
    """The checkpoint text: origin, size, base64 root, then any extension lines, each + ``\\n``."""
    if not _line_ok(origin):
        raise CheckpointError("origin must be a non-empty line without control characters")
    check_int("size", size, error=CheckpointError)
    check_hash("root", root, CheckpointError)
    for ext in extensions:
        if not _line_ok(ext):
            raise CheckpointError("extension lines must be non-empty, without control characters")
    return "".join(f"{line}\n" for line in (origin, str(size), b64encode(root), *extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint text strictly (the inverse of ``format_checkpoint``)."""
    if not isinstance(text, str):
        raise CheckpointError("checkpoint text must be str")
    if len(text) > MAX_NOTE_SIZE:
        raise CheckpointError("checkpoint text too long")
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs origin, size and root lines")
    for line in lines:
        if not _line_ok(line):
            raise CheckpointError("checkpoint lines must be non-empty, without control characters")
    origin, size_line, root_line, *extensions = lines
    if _DECIMAL_RE.fullmatch(size_line) is None or int(size_line) > MAX_INT64:
        raise CheckpointError("tree size must be a decimal number without leading zeros")
    root = b64decode_strict(root_line)
    if root is None or len(root) != HASH_SIZE:
        raise CheckpointError("root hash must be canonical base64 of 32 bytes")
    return Checkpoint(origin=origin, size=int(size_line), root=root, extensions=tuple(extensions))
