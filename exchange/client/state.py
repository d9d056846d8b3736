"""What a partner keeps between syncs: ``state.json``, O(log n) whatever the list's size.

The list, its origin, the pinned verifier keys, the last verified signed checkpoint and the
right edge of its tree. The file is replaced atomically, after the store committed the same
text in its ``meta`` table (see :func:`load_state` for the crash in between).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from exchange.client import PROG
from exchange.client.errors import ConfigError, SyncError
from exchange.client.store import STORE_FILE, read_saved_state
from exchange.client.wire import b64, unb64
from hashbank import tlog

STATE_FILE: Final = "state.json"
STATE_VERSION: Final = 1

_SLUG_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_slug(slug: str) -> str:
    if not isinstance(slug, str) or _SLUG_RE.fullmatch(slug) is None:
        raise ConfigError(f"invalid list name {slug!r} (letters, digits, '-' and '_')")
    return slug


def parse_vkeys(vkeys: Sequence[str]) -> list[tlog.NoteVerifier]:
    """The pinned verifier keys, all of one list (one key name)."""
    verifiers = []
    for vkey in vkeys:
        try:
            verifiers.append(tlog.parse_vkey(vkey.strip()))
        except tlog.KeyFormatError as exc:
            raise ConfigError(f"invalid verifier key {vkey!r}: {exc}") from None
    if not verifiers:
        raise ConfigError("no verifier key: pass --vkey (the list's key, from the bank)")
    names = {v.name for v in verifiers}
    if len(names) != 1:
        raise ConfigError(
            "the verifier keys must all belong to one list (one key name), got "
            + ", ".join(sorted(names))
        )
    return verifiers


@dataclass(frozen=True, slots=True)
class SyncState:
    """What a partner keeps between syncs: O(log n), never the leaves."""

    slug: str
    origin: str
    base_url: str
    vkeys: tuple[str, ...]
    checkpoint: str  # the signed note, verbatim
    size: int
    root: bytes
    edge: tlog.RightEdge

    def to_text(self) -> str:
        data = {
            "version": STATE_VERSION,
            "list": self.slug,
            "origin": self.origin,
            "base_url": self.base_url,
            "vkeys": list(self.vkeys),
            "checkpoint": self.checkpoint,
            "size": self.size,
            "root": b64(self.root),
            "edge": self.edge.to_json(),
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_text(cls, text: str, *, where: str) -> SyncState:
        """Parse and re-verify a saved state (signature, size, root and right edge agree)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"not a version {STATE_VERSION} state")
            vkeys = tuple(data["vkeys"])
            if not all(isinstance(v, str) for v in vkeys):
                raise ValueError("vkeys must be strings")
            verifiers = parse_vkeys(vkeys)
            note = data["checkpoint"]
            cp = tlog.parse_checkpoint(tlog.open_note(note, verifiers).text)
            root = unb64(data["root"])
            edge = tlog.RightEdge.from_json(data["edge"])
            state = cls(
                slug=check_slug(data["list"]),
                origin=data["origin"],
                base_url=data["base_url"],
                vkeys=vkeys,
                checkpoint=note,
                size=data["size"],
                root=root if root is not None else b"",
                edge=edge,
            )
        except (ValueError, KeyError, TypeError, SyncError) as exc:
            raise ConfigError(
                f"{where} is corrupt ({exc}); delete the state directory to sync again from scratch"
            ) from None
        ok = (
            cp.origin == state.origin == verifiers[0].name
            and cp.size == state.size == edge.size
            and cp.root == state.root == edge.root()
            and isinstance(state.base_url, str)
        )
        if not ok:
            raise ConfigError(
                f"{where} is inconsistent (checkpoint, size, root and right edge "
                "disagree); delete the state directory to sync again"
            )
        return state


def load_state(state_dir: Path) -> SyncState | None:
    """The last verified state of ``state_dir``, or None before the first sync.

    The store is committed before the state file is replaced; if a sync was interrupted in
    between, the store's copy of the state is newer and the state file is rolled forward.
    """
    state_path = state_dir / STATE_FILE
    store_path = state_dir / STORE_FILE
    file_text = state_path.read_text(encoding="utf-8") if state_path.exists() else None
    store_text = read_saved_state(store_path)
    file_state = (
        None if file_text is None else SyncState.from_text(file_text, where=str(state_path))
    )
    if store_text is None:
        if file_state is not None:
            raise ConfigError(
                f"{state_path} says the list was verified up to size {file_state.size}, but "
                f"the store {store_path} is missing or empty; delete the state directory to "
                "sync again from scratch"
            )
        return None
    if store_text == file_text:
        return file_state
    store_state = SyncState.from_text(store_text, where=f"the state copy in {store_path}")
    if file_state is not None:
        if (store_state.slug, store_state.origin) != (file_state.slug, file_state.origin):
            raise ConfigError(f"{state_path} and {store_path} are for different lists")
        if store_state.size < file_state.size or (
            store_state.size == file_state.size and store_state.root != file_state.root
        ):
            raise ConfigError(
                f"the store {store_path} (size {store_state.size}) does not match {state_path} "
                f"(size {file_state.size}): was one of them restored from a backup? Delete the "
                "state directory to sync again"
            )
    print(
        f"{PROG}: note: the last sync was interrupted after the store was committed; "
        f"{state_path} is brought up to date (size {store_state.size})",
        file=sys.stderr,
    )
    atomic_write(state_path, store_text)
    return store_state


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same dir, fsync, os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
