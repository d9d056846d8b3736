"""Services that change what the bank holds and publishes.

Every change to a hash's published state goes through ``_apply_rule`` (via
``_refresh_published`` or ``hashes_hold``), the one place that derives it: a
hash is published while at least one active hold (an active case, or a
federated import) keeps it and no reviewer disabled it. The same function
appends the change to the list's log, in the same transaction and under the
list's row lock. The one exception is a new case's hashes on PostgreSQL
(``hashes_hold_new_owner``): where the rule's answer needs no reading (new
hashes with one local holder are published; published ones stay so), the
database applies it in the same statement that writes the case; anything
else comes back here.

Provenance: an ``add`` names the origin of a federated import (``Hash.origin``)
only while no local holder keeps the hash, and a published hash's add always
names a provenance that still holds it. When the last holder of that
provenance lets go but others keep the hash, it is re-published (a ``remove``
and a new ``add``) under the provenance that remains. So a bank never
re-exports as its own a hash it only keeps because a peer does, and two banks
subscribed to each other cannot keep a hash alive for one another after both
let go of it (peers skip adds that name their own origin).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from hashbank import db, store, tlog
from hashbank.log import (
    PendingEntry,
    log_append,
    log_appended_on_commit,
    log_redact,
    log_timestamp,
)
from hashbank.models import Hash, HashList, Hold, LogEntry
from hashbank.store import HashRow

PEER_HOLDER_PREFIX = "peer:"


@dataclass(frozen=True)
class HashInput:
    """A validated, normalised hash as a case or an import submits it."""

    algorithm: str
    value: str
    quality: int | None = None


def hash_list_lock(*, hash_list_id: int) -> HashList:
    """Lock and return the list row for this transaction.

    Every change to a list's published state takes this lock first, so changes
    to one list are applied and logged one transaction at a time.
    """
    return store.list_lock(hash_list_id)


def hashes_hold(
    *,
    hash_list: HashList,
    hashes: Sequence[HashInput],
    holder: str,
    origin: str = "",
) -> list[HashRow]:
    """Record that ``holder`` keeps these hashes published; returns them in input order.

    Runs in the caller's transaction (or its own). Idempotent per (hash, holder).
    The first quality seen for a hash is kept; ``origin`` is the provenance of
    hashes imported from a peer bank (``holder`` ``peer:<id>``), kept on the hold.
    """
    unique = list({(h.algorithm, h.value): h for h in hashes}.values())
    with transaction.atomic(savepoint=False):
        locked = hash_list_lock(hash_list_id=hash_list.pk)
        now = timezone.now()
        # A hash new to the list is held by this holder alone and disabled by
        # nobody: it is stored with the state the rule gives it, and logged below.
        new_state = _publishable(held=True, disabled=False)
        rows, inserted = store.hashes_hold(
            list_id=locked.pk,
            items=unique,
            holder=holder,
            origin=origin,
            now=now,
            published_if_new=new_state,
        )
        holds = store.holds_active([r.pk for r in rows if r.pk not in inserted])
        stored: dict[int, bool] = {}
        for row in rows:
            if row.pk in inserted:
                holds[row.pk] = [(holder, origin)]
                stored[row.pk] = row.published
                row.published = False  # as partners know it: not yet in the log
        loaded, _changed = _apply_rule(hash_list=locked, loaded=rows, holds=holds, stored=stored)
        return _in_input_order(loaded, hashes)


def _in_input_order(rows: Sequence[HashRow], hashes: Sequence[HashInput]) -> list[HashRow]:
    """One row per input hash, in input order (a hash given twice appears twice)."""
    by_key = {(row.algorithm, row.value): row for row in rows}
    return [by_key[(h.algorithm, h.value)] for h in hashes]


def hashes_hold_new_owner(
    *,
    hash_list: HashList,
    hashes: Sequence[HashInput],
    owner: models.Model,
    holder_prefix: str,
) -> list[HashRow]:
    """Insert ``owner`` (a new row: a case) and hold these hashes as ``<holder_prefix><pk>``.

    All or nothing, in the caller's transaction or its own. Returns the hashes in
    input order, as ``hashes_hold`` does. Case creation is the bank's hot path:
    on PostgreSQL, when every hash is new to the list or already published,
    the rule's answer is known without reading anything (a new hash with one
    local holder is published and logged; a published one stays as it is, as
    ``_apply_rule`` would leave it), so all of it runs as one statement
    (``store.hashes_hold_new_owner``). Any other hash, and other databases, take
    the general path: insert the owner, then ``hashes_hold``.
    """
    unique = list({(h.algorithm, h.value): h for h in hashes}.values())
    if db.is_postgres():
        now = timezone.now()
        timestamp = int(time.time())
        leaves = []
        for h in unique:
            leaf = tlog.encode_add(
                algorithm=h.algorithm, value=h.value, quality=h.quality, timestamp=timestamp
            )
            leaves.append((leaf, tlog.leaf_hash(leaf)))
        held = store.hashes_hold_new_owner(
            owner=owner,
            holder_prefix=holder_prefix,
            list_id=hash_list.pk,
            items=unique,
            leaves=leaves,
            now=now,
            timestamp=timestamp,
        )
        if held is not None:
            rows, added = held
            if added:
                log_appended_on_commit(hash_list_id=hash_list.pk)
            return rows if len(rows) == len(hashes) else _in_input_order(rows, hashes)
    with transaction.atomic():
        db.insert(owner)
        return hashes_hold(hash_list=hash_list, hashes=hashes, holder=f"{holder_prefix}{owner.pk}")


def holds_release(*, holder: str, reason: str = "withdrawn") -> list[int]:
    """Release every hold of ``holder``; idempotent. Returns the affected hash ids."""
    return _release(Hold.objects.filter(holder=holder, active=True), reason=reason)


def hashes_release(*, holder: str, hash_ids: Iterable[int], reason: str = "withdrawn") -> list[int]:
    """Release ``holder``'s holds on these hashes only (a peer removed them); idempotent.

    A hash another holder keeps (a local case, another peer) stays published.
    Returns the ids of the hashes whose hold was released.
    """
    ids = sorted(set(hash_ids))
    if not ids:
        return []
    return _release(Hold.objects.filter(holder=holder, hash_id__in=ids, active=True), reason=reason)


def _release(holds: QuerySet[Hold], *, reason: str) -> list[int]:
    with transaction.atomic(savepoint=False):
        hash_ids_by_list: dict[int, list[int]] = {}
        for hash_id, list_id in holds.values_list("hash_id", "hash__hash_list_id"):
            hash_ids_by_list.setdefault(list_id, []).append(hash_id)
        for list_id, hash_ids in sorted(hash_ids_by_list.items()):
            locked = hash_list_lock(hash_list_id=list_id)
            holds.filter(hash_id__in=hash_ids).update(active=False, released_at=timezone.now())
            _refresh_published(hash_list=locked, hash_ids=hash_ids, reason=reason)
        return [i for ids in hash_ids_by_list.values() for i in ids]


def hashes_refresh_published(
    *, hash_list: HashList, hash_ids: Iterable[int], reason: str = "withdrawn"
) -> list[HashRow]:
    """Derive, store and log the published state of these hashes; returns those that changed.

    Takes the list lock itself (re-entrant within one transaction).
    """
    with transaction.atomic(savepoint=False):
        locked = hash_list_lock(hash_list_id=hash_list.pk)
        return _refresh_published(hash_list=locked, hash_ids=hash_ids, reason=reason)[1]


def _provenance(holds: Sequence[tuple[str, str]]) -> str:
    """The origin a new add names: none while a local holder keeps the hash, else an import's."""
    origins = [origin if holder.startswith(PEER_HOLDER_PREFIX) else "" for holder, origin in holds]
    return "" if "" in origins else origins[0]


def _provenance_held(origin: str, holds: Sequence[tuple[str, str]]) -> bool:
    """Does an active hold still have the provenance ``origin`` (empty: local)?"""
    return any(
        (o if holder.startswith(PEER_HOLDER_PREFIX) else "") == origin for holder, o in holds
    )


def _publishable(*, held: bool, disabled: bool) -> bool:
    """The rule itself: published while held by an active hold and not disabled."""
    return held and not disabled


def _refresh_published(
    *, hash_list: HashList, hash_ids: Iterable[int], reason: str = "withdrawn"
) -> tuple[list[HashRow], list[HashRow]]:
    """Derive, store and log the published state of these hashes from what the database holds.

    ``hash_list`` is the row locked in this transaction. Returns (every hash
    loaded, the ones whose published state changed).
    """
    ids = sorted(set(hash_ids))
    return _apply_rule(
        hash_list=hash_list,
        loaded=store.hashes_by_id(ids),
        holds=store.holds_active(ids),
        reason=reason,
    )


def _apply_rule(
    *,
    hash_list: HashList,
    loaded: list[HashRow],
    holds: dict[int, list[tuple[str, str]]],
    stored: dict[int, bool] | None = None,
    reason: str = "withdrawn",
) -> tuple[list[HashRow], list[HashRow]]:
    """Apply the rule to ``loaded`` (by id) given their active ``holds``; log and store changes.

    Each hash's ``published`` is its state as the log last said. ``stored``
    gives the value in the table where it differs (rows just inserted with the
    state the rule gives them). Appends an ``add`` entry for each newly
    published hash and a ``remove`` entry (naming the add by index) for each
    unpublished one, then redacts those adds; a hash that stays published but
    lost the provenance its add names is re-published (``remove`` then
    ``add``, see the module docstring). ``reason`` is the remove reason unless
    the hash is disabled.
    """
    stored = stored or {}
    in_table = {h.pk: stored.get(h.pk, h.published) for h in loaded}
    changed: list[HashRow] = []
    republished: list[HashRow] = []
    for h in loaded:
        publish = _publishable(held=h.pk in holds, disabled=h.disabled)
        if h.published != publish:
            changed.append(h)
        elif publish and not _provenance_held(h.origin, holds[h.pk]):
            republished.append(h)
    if not changed and not republished:
        _store_published(loaded, in_table, now=timezone.now())
        return loaded, changed

    now = timezone.now()
    timestamp = log_timestamp(hash_list)
    undo = [h for h in changed if h.published] + republished
    # The add entry a removal undoes is the hash's newest one not yet redacted.
    # By hash alone (a hash belongs to one list), so no list index can be taken.
    add_index = (
        dict(
            LogEntry.objects.filter(
                hash_id__in=[h.pk for h in undo], op=LogEntry.Op.ADD, redacted=False
            ).values_list("hash_id", "index")
        )
        if undo
        else {}
    )
    pending: list[PendingEntry] = []
    origin_changes: dict[str, list[int]] = {}
    republishing = {h.pk for h in republished}
    for h in sorted(changed + republished, key=lambda h: h.pk):
        if h.published:  # unpublish, or undo the add before re-publishing
            undone = add_index[h.pk]
            leaf = tlog.encode_remove(
                index=undone, reason="disabled" if h.disabled else reason, timestamp=timestamp
            )
            pending.append(PendingEntry(op="remove", leaf=leaf, hash_id=h.pk, removes=undone))
        if not h.published or h.pk in republishing:
            origin = _provenance(holds[h.pk])
            leaf = tlog.encode_add(
                algorithm=h.algorithm,
                value=h.value,
                quality=h.quality,
                timestamp=timestamp,
                origin=origin or None,
            )
            pending.append(PendingEntry(op="add", leaf=leaf, hash_id=h.pk))
            if origin != h.origin:
                h.origin = origin
                origin_changes.setdefault(origin, []).append(h.pk)
    for h in changed:
        h.published = not h.published
        h.changed_at = now
    log_append(hash_list=hash_list, entries=pending, timestamp=timestamp)
    log_redact(hash_list=hash_list, indexes=[p.removes for p in pending if p.removes is not None])
    _store_published(loaded, in_table, now=now)
    for origin, pks in origin_changes.items():
        Hash.objects.filter(pk__in=pks).update(origin=origin)
    return loaded, changed


def _store_published(loaded: list[HashRow], in_table: dict[int, bool], *, now: datetime) -> None:
    """Write each hash's published state where the table holds another value.

    Set-based UPDATEs: Django's bulk_update builds a CASE per row, which costs
    more than the rest of a case's creation.
    """
    for state in (True, False):
        pks = [h.pk for h in loaded if h.published is state and in_table[h.pk] is not state]
        if pks:
            Hash.objects.filter(pk__in=pks).update(published=state, changed_at=now)
