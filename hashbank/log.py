"""Appending to a list's log, and signing its checkpoints.

Only ``hashbank.services`` calls ``log_append``, from inside the transaction that
changes a hash's published state and while it holds the list's row lock. So:
entries commit with the change or not at all, indexes are assigned one
transaction at a time (gap-free, in commit order), and the tree head stored on
the list row commits with them. Checkpoints are signed from that head when
served, so the newest checkpoint always covers every committed entry.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal

from hashbank import sql, tlog
from hashbank.keyring import SigningKey
from hashbank.models import HashList, LogEntry, TreeNode

# Sent after the transaction that appended to a list commits (kwarg: hash_list_id).
# Push delivery listens; the bank does not depend on who does.
log_appended = Signal()


@dataclass(frozen=True)
class PendingEntry:
    """An entry to append: its leaf bytes and what it refers to."""

    op: str
    leaf: bytes
    hash_id: int | None
    removes: int | None = None


def list_origin(slug: str) -> str:
    return f"{settings.BANK_ORIGIN}/lists/{slug}"


@functools.lru_cache(maxsize=64)
def _signers_for(slug: str, keys: tuple[SigningKey, ...]) -> tuple[tlog.NoteSigner, ...]:
    name = list_origin(slug)
    # The active key signs first; retiring keys co-sign during a rotation.
    ordered = sorted(keys, key=lambda k: k.status != "active")
    return tuple(k.signer(name) for k in ordered)


def list_verifiers(slug: str) -> list[tuple[str, str]]:
    """(vkey, status) of every configured key for this list."""
    return [
        (k.signer(list_origin(slug)).vkey, k.status)
        for k in sorted(settings.HASHBANK_SIGNING_KEYS, key=lambda k: k.status != "active")
    ]


def log_timestamp(hash_list: HashList) -> int:
    """Now, but never earlier than the list's newest entry: log times never go back."""
    return max(int(time.time()), hash_list.log_last_timestamp)


def log_append(*, hash_list: HashList, entries: Sequence[PendingEntry], timestamp: int) -> int:
    """Append ``entries`` to the locked list's log and advance its tree head.

    ``hash_list`` must be the row locked by ``hash_list_lock`` in this
    transaction. Returns the index of the first appended entry.
    """
    if not entries:
        return hash_list.log_size
    edge = (
        tlog.RightEdge.from_json(hash_list.tree_edge) if hash_list.tree_edge else tlog.RightEdge()
    )
    if edge.size != hash_list.log_size:
        raise RuntimeError(f"list {hash_list.slug}: stored tree edge does not match the log size")
    list_id, first = hash_list.pk, edge.size
    # One tuple per row, in the order of _ENTRY_FIELDS and _NODE_FIELDS: written by COPY
    # as they are on PostgreSQL (for a case's 20 entries as for an import's 10,000:
    # cheaper than building and binding a model per row), or turned into models for
    # bulk_create elsewhere. Entries are hashed into the tree as COPY sends them, so the
    # server stores one batch of entries while the next is hashed.
    node_rows: list[tuple[object, ...]] = []

    def entry_rows() -> Iterator[tuple[object, ...]]:
        for index, entry in enumerate(entries, start=first):
            digest = tlog.leaf_hash(entry.leaf)
            for level, idx, node in edge.append(digest):
                if level:
                    node_rows.append((list_id, level, idx, node))
            yield (list_id, index, entry.op, entry.hash_id, entry.leaf, digest, timestamp,
                   entry.removes, False)  # fmt: skip

    sql.insert_rows(LogEntry, _ENTRY_FIELDS, entry_rows())
    if node_rows:  # a lone entry at an even index completes no subtree
        sql.insert_rows(TreeNode, _NODE_FIELDS, node_rows)
    hash_list.log_size = edge.size
    hash_list.tree_edge = edge.to_json()
    hash_list.log_last_timestamp = timestamp
    # An UPDATE, not save(): nothing listens to a list's head moving (log_appended says it).
    HashList.objects.filter(pk=hash_list.pk).update(
        log_size=hash_list.log_size,
        tree_edge=hash_list.tree_edge,
        log_last_timestamp=timestamp,
    )
    log_appended_on_commit(hash_list_id=hash_list.pk)
    return first


#: The columns an append writes, by attribute name (every column but the primary key).
_ENTRY_FIELDS = (
    "hash_list_id", "index", "op", "hash_id", "leaf", "leaf_hash", "timestamp", "removes",
    "redacted",
)  # fmt: skip
_NODE_FIELDS = ("hash_list_id", "level", "idx", "hash")


def log_appended_on_commit(*, hash_list_id: int) -> None:
    """Send ``log_appended`` for this list once the current transaction commits."""
    transaction.on_commit(lambda: log_appended.send(sender=HashList, hash_list_id=hash_list_id))


def log_redact(*, hash_list: HashList, indexes: Sequence[int]) -> None:
    """Serve these ``add`` entries as leaf hashes only, from now on, to everyone."""
    if indexes:
        LogEntry.objects.filter(hash_list=hash_list, index__in=list(indexes)).update(redacted=True)


@functools.lru_cache(maxsize=64)
def _signed(slug: str, size: int, root: bytes, keys: tuple[SigningKey, ...]) -> str:
    text = tlog.format_checkpoint(origin=list_origin(slug), size=size, root=root)
    return tlog.sign_note(text, _signers_for(slug, keys))


def current_checkpoint(*, slug: str, size: int, tree_edge: dict) -> str:
    """The signed checkpoint for a list head, with every currently configured key.

    Signed at serve time (Ed25519 is deterministic and cheap, and the result is
    cached), so a key rotation takes effect at once, even for an idle list, and
    an empty list has a checkpoint too.
    """
    edge = tlog.RightEdge.from_json(tree_edge) if tree_edge else tlog.RightEdge()
    if edge.size != size:
        raise RuntimeError(f"list {slug}: stored tree edge does not match the log size")
    return _signed(slug, size, edge.root(), tuple(settings.HASHBANK_SIGNING_KEYS))


def tree_nodes(hash_list_id: int, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Stored perfect-subtree hashes for these (level, idx) ids: leaves and inner nodes."""
    found: dict[tuple[int, int], bytes] = {}
    leaves = [idx for level, idx in ids if level == 0]
    inner = [(level, idx) for level, idx in ids if level > 0]
    if leaves:
        for index, digest in LogEntry.objects.filter(
            hash_list_id=hash_list_id, index__in=leaves
        ).values_list("index", "leaf_hash"):
            found[(0, index)] = bytes(digest)
    if inner:
        condition = Q()
        for level, idx in inner:
            condition |= Q(level=level, idx=idx)
        for level, idx, digest in TreeNode.objects.filter(
            condition, hash_list_id=hash_list_id
        ).values_list("level", "idx", "hash"):
            found[(level, idx)] = bytes(digest)
    return found


def checkpoint_at(*, hash_list: HashList, size: int) -> str:
    """A signed checkpoint for the tree as it was at ``size`` (<= the current size).

    Lets a push batch carry a checkpoint that covers exactly its entries, so a
    retried batch is byte-for-byte the same message.
    """
    if size > hash_list.log_size:
        raise ValueError("size is beyond the log")
    edge = tlog.RightEdge.from_nodes(size, tree_nodes(hash_list.pk, tlog.right_edge_node_ids(size)))
    return _signed(hash_list.slug, size, edge.root(), tuple(settings.HASHBANK_SIGNING_KEYS))
