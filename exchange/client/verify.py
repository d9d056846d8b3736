"""Verifying what a bank serves, whatever keeps the result (``docs/LOG_FORMAT.md`` section 6).

:func:`verify_head` checks the newest checkpoint against the last verified tree (pinned keys,
origin, no rollback, no fork); :func:`verify_entries` then fetches the entries up to it,
checks each one and hands it to an :class:`EntryStore`, and finally checks the recomputed
root. A partner's SQLite store and a peer bank's import are both such stores. The leaf
grammar, leaf hashing and the tree maths are :mod:`hashbank.tlog`'s; this module only decides
what a mismatch means and refuses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from exchange.client import PROG
from exchange.client.errors import (
    BadRemove,
    BadSignature,
    Fork,
    MalformedResponse,
    MissingOrReorderedEntries,
    OriginMismatch,
    Rollback,
    RootMismatch,
    TamperedEntry,
    UnknownKey,
)
from exchange.client.http import DEFAULT_PAGE_SIZE, BankClient
from exchange.client.wire import b64, short, unb64
from hashbank import tlog
from hashbank.tlog import LeafError, decode_leaf, leaf_hash

#: A verified ``add``: (index, algorithm, value, quality, timestamp, origin).
AddRow = tuple[int, str, str, int | None, int, str | None]

#: The JSON fields served next to the leaf bytes, which must say what the bytes say. An add's
#: salt is served as base64 (the leaf holds it as hex): the salt given must be the leaf's.
_LEAF_FIELDS: Final = {
    "add": ("algorithm", "value", "quality", "timestamp", "origin", "salt"),
    "remove": ("removes", "reason", "timestamp"),
}
_MISSING: Final = object()


def verify_checkpoint(
    note: bytes | str, verifiers: Sequence[tlog.NoteVerifier], origin: str, *, where: str
) -> tuple[str, tlog.Checkpoint]:
    """Open a signed checkpoint against the pinned keys; return ``(note text, checkpoint)``."""
    try:
        opened = tlog.open_note(note, verifiers)
    except tlog.UnknownKeyError:
        raise UnknownKey(
            f"the {where} is not signed by any pinned key ({', '.join(v.vkey for v in verifiers)})"
            f"; if the bank rotated its key, check the new one out of band (`{PROG} keys`) and "
            "re-run with --vkey NEW --accept-new-vkey"
        ) from None
    except tlog.NoteError as exc:
        raise BadSignature(f"the {where} does not verify: {exc}") from None
    try:
        cp = tlog.parse_checkpoint(opened.text)
    except tlog.CheckpointError as exc:
        raise MalformedResponse(f"the {where} is not a valid checkpoint: {exc}") from None
    if cp.origin != origin:
        raise OriginMismatch(
            f"the {where} is for origin {cp.origin!r}, but this list's origin is {origin!r}"
        )
    text = note.decode("utf-8") if isinstance(note, bytes) else note
    return text, cp


def verify_head(
    client: BankClient,
    slug: str,
    verifiers: Sequence[tlog.NoteVerifier],
    origin: str,
    *,
    old_size: int,
    old_root: bytes,
) -> tuple[str, tlog.Checkpoint]:
    """Fetch the newest checkpoint and verify it against the last verified tree.

    Steps 1-3 of ``docs/LOG_FORMAT.md`` section 6: signed by a pinned key, for ``origin``, not
    smaller than ``old_size`` (no rollback), the same root at the same size and a consistency
    proof to a larger one (no fork). Returns ``(signed note, checkpoint)``; raises a
    ``SyncRefused`` subclass or ``ServerError``.
    """
    # 2. The newest checkpoint, against the pinned keys; no rollback, no fork.
    note, cp = verify_checkpoint(client.checkpoint(slug), verifiers, origin, where="checkpoint")
    if cp.size < old_size:
        raise Rollback(
            f"the server's checkpoint has size {cp.size}, smaller than the size {old_size} "
            "verified before (a rollback)"
        )
    if cp.size == old_size and cp.root != old_root:
        raise Fork(
            f"the server's checkpoint at size {cp.size} has root {b64(cp.root)}, but the "
            f"root verified before at that size is {b64(old_root)} (a fork)"
        )
    # 3. Explicit fork detection before downloading anything.
    if 0 < old_size < cp.size:
        proof = client.consistency(slug, old_size, cp.size)
        try:
            tlog.verify_consistency(
                old_size=old_size,
                new_size=cp.size,
                old_root=old_root,
                new_root=cp.root,
                proof=proof,
            )
        except tlog.ProofError as exc:
            raise Fork(
                f"the checkpoint at size {cp.size} is not an extension of the tree "
                f"verified before at size {old_size} ({exc}): the server rewrote history "
                "(a fork)"
            ) from None
    return note, cp


class EntryStore(Protocol):
    """Where a sync puts the entries it verified, in index order, inside one transaction.

    The verification does not depend on the store: the partner client keeps a SQLite file
    (``exchange.client.store``), a peer bank imports into its database
    (``exchange.federation``). Each entry is verified before it is passed on, but the root is
    checked only after the last one: the caller opens the transaction before the first call
    and commits it, with the new verified state, only if :func:`verify_entries` returned; on
    any exception it rolls back.
    """

    def add_many(self, rows: list[AddRow]) -> None:
        """Store verified adds (in index order; the store may keep the list)."""

    def add_redacted(self, index: int) -> None:
        """An add served redacted (its value was removed): its ``remove`` is still to come."""

    def remove(self, index: int, removes: int, reason: str) -> bool:
        """Apply entry ``index``, which removes the earlier add ``removes``.

        Returns True if a hash left the store, False if the add was a redacted one. Raises
        ``BadRemove.not_a_live_add`` if ``removes`` is not an add the store holds (never
        added, or removed already); a store that applies in batches may raise it later,
        before the caller commits. Adds passed to ``add_many`` before this call are visible
        to it.
        """


@dataclass(frozen=True, slots=True)
class EntryCounts:
    """What :func:`verify_entries` passed to the store: adds, effective removes, redacted."""

    added: int
    removed: int
    redacted: int


def verify_entries(
    client: BankClient,
    slug: str,
    verifiers: Sequence[tlog.NoteVerifier],
    origin: str,
    *,
    note: str,
    checkpoint: tlog.Checkpoint,
    edge: tlog.RightEdge,
    store: EntryStore,
    page_size: int = DEFAULT_PAGE_SIZE,
    prefetch: int = 2,
    on_page: Callable[[int, int], None] | None = None,
    end: int | None = None,
    deadline: float | None = None,
) -> EntryCounts:
    """Fetch, verify and store the entries from ``edge.size`` up to the checkpoint's size.

    Steps 4-5 of ``docs/LOG_FORMAT.md`` section 6, after :func:`verify_head` returned
    ``(note, checkpoint)``: every page's checkpoint is checked, every entry's leaf is decoded
    strictly and appended to ``edge`` (the right edge of the last verified tree, advanced in
    place), and the recomputed root must be the checkpoint's. Entries go to ``store`` as they
    are verified, so the caller commits the store's transaction only if this returns.
    ``on_page(start, count)`` is called before each page is applied.

    A sync may stop early (a peer bank caps each one): at ``end`` entries, or at the first
    page boundary past ``deadline`` (a ``time.monotonic()`` value). The tree verified then is
    smaller than the checkpoint's, and a consistency proof from it to the checkpoint shows
    that it is a prefix of the signed tree, so ``edge`` is a verified state to continue from.
    """
    cp = checkpoint
    old_size = edge.size
    target = cp.size if end is None else max(old_size, min(end, cp.size))
    applier = _Applier(store, edge, target)
    verified = {note: cp}
    pages = client.pages(slug, old_size, target, page_size, prefetch)
    try:
        for start, page in pages:
            entries = _check_page(page, start, cp, verifiers, origin, verified)
            if start != edge.size:  # pragma: no cover - guarded by BankClient.pages
                raise MissingOrReorderedEntries(f"page from {start}, expected {edge.size}")
            if on_page is not None:
                on_page(start, len(entries))
            applier.apply(start, entries)
            if deadline is not None and edge.size < target and time.monotonic() >= deadline:
                target = edge.size  # out of time: stop at this page's end
                break
    finally:
        pages.close()  # stops the download thread at once, even on errors
    if edge.size != target:  # pragma: no cover - pages stop only at the end
        raise MissingOrReorderedEntries(
            f"the entries stop at index {edge.size}, the sync was to reach {target}"
        )
    if edge.size < cp.size:
        _verify_prefix(client, slug, old_size, edge, cp)
    elif edge.root() != cp.root:
        raise RootMismatch(
            f"the entries {old_size}..{cp.size - 1} give the root "
            f"{b64(edge.root())}, but the checkpoint says {b64(cp.root)}: an entry "
            "or a redacted leaf_hash in that range was altered"
        )
    return EntryCounts(added=applier.added, removed=applier.removed, redacted=applier.redacted)


def _verify_prefix(
    client: BankClient, slug: str, old_size: int, edge: tlog.RightEdge, cp: tlog.Checkpoint
) -> None:
    """The entries up to ``edge.size`` (< the checkpoint's size) are the signed tree's first."""
    if edge.size == 0:
        return
    proof = client.consistency(slug, edge.size, cp.size)
    try:
        tlog.verify_consistency(
            old_size=edge.size,
            new_size=cp.size,
            old_root=edge.root(),
            new_root=cp.root,
            proof=proof,
        )
    except tlog.ProofError as exc:
        raise RootMismatch(
            f"the entries {old_size}..{edge.size - 1} give the root {b64(edge.root())}, "
            f"which is not a prefix of the checkpoint at size {cp.size} ({exc}): an entry "
            "or a redacted leaf_hash in that range was altered"
        ) from None


def _check_page(
    page: dict[str, Any],
    start: int,
    target: tlog.Checkpoint,
    verifiers: Sequence[tlog.NoteVerifier],
    origin: str,
    verified: dict[str, tlog.Checkpoint],
) -> list[Any]:
    """Check a page's envelope: its signed checkpoint covers the entries, ``next`` is right.

    ``verified`` caches the notes already verified (pages usually repeat the same one).
    """
    entries = page.get("entries")
    note = page.get("checkpoint")
    nxt = page.get("next")
    where = f"page of entries from {start}"
    if not isinstance(entries, list) or not isinstance(note, str):
        raise MalformedResponse(f'the {where} needs "entries" (a list) and "checkpoint"')
    if not entries:
        raise MissingOrReorderedEntries(
            f"the server returned no entries from index {start}, but the checkpoint has size "
            f"{target.size}",
            index=start,
        )
    pcp = verified.get(note)
    if pcp is None:
        _, pcp = verify_checkpoint(note, verifiers, origin, where=f"checkpoint of the {where}")
        if pcp.size == target.size and pcp.root != target.root:
            raise Fork(
                f"the checkpoint of the {where} and the newest checkpoint both have size "
                f"{pcp.size} but different roots (the server shows two histories)"
            )
        verified[note] = pcp
    end = start + len(entries)
    if pcp.size < end:
        raise MalformedResponse(
            f"the checkpoint of the {where} has size {pcp.size}: it does not cover the "
            f"{len(entries)} entries returned"
        )
    if not (nxt is None and end == pcp.size) and not (type(nxt) is int and nxt == end):
        raise MalformedResponse(
            f'the {where} has {len(entries)} entries and "next": {short(nxt)}; expected '
            f"{end}" + (" or null" if end == pcp.size else "")
        )
    return entries


class _Applier:
    """Verifies entries in index order and hands them to the store (inside its transaction)."""

    def __init__(self, store: EntryStore, edge: tlog.RightEdge, target: int) -> None:
        self.store = store
        self.edge = edge
        self.target = target
        self.added = 0
        self.removed = 0
        self.redacted = 0
        self._adds: list[AddRow] = []

    def _flush(self) -> None:
        if self._adds:
            self.store.add_many(self._adds)
            self.added += len(self._adds)
            self._adds = []  # a new list: the store may keep the one it was given

    def apply(self, start: int, entries: list[Any]) -> None:
        """Verify and apply one page; entries at or past the target size are ignored."""
        leaf_hashes: list[bytes] = []
        i = self.edge.size
        for pos, e in enumerate(entries):
            if i >= self.target:
                break
            if type(e) is not dict:
                raise MalformedResponse(
                    f"entry at position {pos} of the page from {start} is not a JSON object",
                    index=i,
                )
            idx = e.get("index")
            if type(idx) is not int or idx != i:
                raise MissingOrReorderedEntries(_order_message(i, idx, start, pos), index=i)
            redacted = e.get("redacted", False)
            if redacted is False:
                leaf_hashes.append(self._apply_leaf(i, e))
            elif redacted is True:
                leaf_hashes.append(self._apply_redacted(i, e))
            else:
                raise MalformedResponse(
                    f'entry {i}: "redacted" must be true or false, not {short(redacted)}',
                    index=i,
                )
            i += 1
        self.edge.push_all(leaf_hashes)
        self._flush()

    def _apply_leaf(self, i: int, e: dict[str, Any]) -> bytes:
        """Check entry ``i`` served with its leaf bytes, pass it on; return its leaf hash."""
        raw = unb64(e.get("leaf"))
        if raw is None:
            raise MalformedResponse(f'entry {i}: "leaf" is missing or not base64', index=i)
        try:
            leaf = decode_leaf(raw)
        except LeafError as exc:
            raise TamperedEntry(
                f"entry {i}: the leaf bytes are not a canonical leaf ({exc}): {short(raw)}",
                index=i,
            ) from None
        _check_fields(i, e, leaf)
        if leaf.op == "add":
            self._adds.append(
                (i, leaf.algorithm, leaf.value, leaf.quality, leaf.timestamp, leaf.origin)  # type: ignore[arg-type]
            )
        else:
            self._remove(i, leaf.removes, leaf.reason)  # type: ignore[arg-type]
        return leaf_hash(raw)

    def _apply_redacted(self, i: int, e: dict[str, Any]) -> bytes:
        """Check entry ``i``, an add served without its bytes; return its leaf hash.

        Its hash enters the tree unchecked here: the root check at the end catches a wrong one.
        """
        if e.get("op") != "add":
            raise TamperedEntry(
                f"entry {i}: only add entries are redacted, this one has op {short(e.get('op'))}",
                index=i,
            )
        for name in ("leaf", "salt", "value"):
            if name in e:
                raise TamperedEntry(f"entry {i}: marked redacted but carries {name!r}", index=i)
        lh = unb64(e.get("leaf_hash"))
        if lh is None or len(lh) != tlog.HASH_SIZE:
            raise MalformedResponse(
                f'entry {i}: a redacted entry needs "leaf_hash", base64 of 32 bytes', index=i
            )
        self.store.add_redacted(i)
        self.redacted += 1
        return lh

    def _remove(self, i: int, j: int, reason: str) -> None:
        # An entry can only remove an earlier one; whether that one is a live add, only the
        # store knows (it holds the adds of earlier syncs).
        if j >= i:
            raise BadRemove(f"entry {i} removes entry {j}, which is not an earlier entry", index=i)
        self._flush()
        if self.store.remove(i, j, reason):
            self.removed += 1


def _check_fields(i: int, e: dict[str, Any], leaf: tlog.Leaf) -> None:
    """The JSON fields the server sends alongside the leaf must equal the decoded leaf.

    Types are compared too: ``True == 1`` and ``1.0 == 1`` in Python, not in the leaf.
    """
    if e.get("op") != leaf.op:
        raise TamperedEntry(
            f"entry {i}: JSON op is {short(e.get('op'))} but the leaf bytes are "
            f"{leaf.op!r} ({short(leaf.encode())})",
            index=i,
        )
    for name in _LEAF_FIELDS[leaf.op]:
        got = e.get(name, _MISSING)
        want = getattr(leaf, name)
        if name == "salt":
            want = b64(want)
        if got is _MISSING:
            raise TamperedEntry(f"entry {i}: JSON field {name!r} is missing", index=i)
        if got != want or type(got) is not type(want):
            raise TamperedEntry(
                f"entry {i}: JSON field {name!r} is {short(got)} but the leaf bytes say "
                f"{short(want)}",
                index=i,
            )


def _order_message(expected: int, got: object, start: int, pos: int) -> str:
    where = f"position {pos} of the page from index {start}"
    if type(got) is not int:
        return f"{where} has index {short(got)}, expected entry {expected}"
    if got > expected:
        missing = (
            f"entry {expected} is" if got == expected + 1 else f"entries {expected}..{got - 1} are"
        )
        return (
            f"{where} is entry {got}, expected entry {expected}: {missing} missing (or the "
            "page is reordered)"
        )
    return (
        f"{where} is entry {got} again, expected entry {expected}: a duplicated or reordered entry"
    )
