"""Services that change what the bank holds and publishes.

Every change to a hash's published state goes through ``_refresh_published``,
the one place that derives it: a hash is published while at least one active
hold (an active case, or a federated import) keeps it and no reviewer disabled
it. The same function appends the change to the list's log, in the same
transaction and under the list's row lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from hashbank import tlog
from hashbank.log import PendingEntry, log_append, log_redact, log_timestamp
from hashbank.models import Hash, HashList, Hold, LogEntry

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
    return HashList.objects.select_for_update().get(pk=hash_list_id)


def hashes_hold(
    *,
    hash_list: HashList,
    hashes: Sequence[HashInput],
    holder: str,
    origin: str = "",
) -> list[Hash]:
    """Record that ``holder`` keeps these hashes published; returns them in input order.

    Runs in the caller's transaction (or its own). Idempotent per (hash, holder).
    The first quality seen for a hash is kept; ``origin`` is the provenance of
    hashes imported from a peer bank, recorded when the hash is first seen.
    """
    unique = list({(h.algorithm, h.value): h for h in hashes}.values())
    with transaction.atomic(savepoint=False):
        locked = hash_list_lock(hash_list_id=hash_list.pk)
        now = timezone.now()
        # One upsert gives every hash its id, whether it is new or not. The
        # no-op update is what makes PostgreSQL and SQLite return existing ids.
        rows = Hash.objects.bulk_create(
            [
                Hash(
                    hash_list=locked,
                    algorithm=item.algorithm,
                    value=item.value,
                    quality=item.quality,
                    origin=origin,
                    first_seen=now,
                    changed_at=now,
                )
                for item in unique
            ],
            update_conflicts=True,
            unique_fields=["hash_list", "algorithm", "value"],
            update_fields=["algorithm"],
        )
        Hold.objects.bulk_create(
            [Hold(hash_id=row.pk, holder=holder, created_at=now) for row in rows],
            update_conflicts=True,
            unique_fields=["hash", "holder"],
            update_fields=["active", "released_at"],
        )
        loaded, _changed = _refresh_published(hash_list=locked, hash_ids=[r.pk for r in rows])
        by_key = {(h.algorithm, h.value): h for h in loaded}
        return [by_key[(h.algorithm, h.value)] for h in hashes]


def holds_release(*, holder: str, reason: str = "withdrawn") -> list[int]:
    """Release every hold of ``holder``; idempotent. Returns the affected hash ids."""
    with transaction.atomic(savepoint=False):
        hash_ids_by_list: dict[int, list[int]] = {}
        for hash_id, list_id in Hold.objects.filter(holder=holder, active=True).values_list(
            "hash_id", "hash__hash_list_id"
        ):
            hash_ids_by_list.setdefault(list_id, []).append(hash_id)
        for list_id, hash_ids in sorted(hash_ids_by_list.items()):
            locked = hash_list_lock(hash_list_id=list_id)
            Hold.objects.filter(holder=holder, hash_id__in=hash_ids, active=True).update(
                active=False, released_at=timezone.now()
            )
            _refresh_published(hash_list=locked, hash_ids=hash_ids, reason=reason)
        return [i for ids in hash_ids_by_list.values() for i in ids]


def hashes_refresh_published(
    *, hash_list: HashList, hash_ids: Iterable[int], reason: str = "withdrawn"
) -> list[Hash]:
    """Derive, store and log the published state of these hashes; returns those that changed.

    Takes the list lock itself (re-entrant within one transaction).
    """
    with transaction.atomic(savepoint=False):
        locked = hash_list_lock(hash_list_id=hash_list.pk)
        return _refresh_published(hash_list=locked, hash_ids=hash_ids, reason=reason)[1]


def _refresh_published(
    *, hash_list: HashList, hash_ids: Iterable[int], reason: str = "withdrawn"
) -> tuple[list[Hash], list[Hash]]:
    """The rule itself: published while held by an active hold and not disabled.

    ``hash_list`` is the row locked in this transaction. Appends an ``add``
    entry for each newly published hash and a ``remove`` entry (naming the add
    by index) for each unpublished one, then redacts those adds. ``reason`` is
    the remove reason unless the hash is disabled. Returns (every hash loaded,
    the ones whose state changed).
    """
    ids = sorted(set(hash_ids))
    holders: dict[int, list[str]] = {}
    for hash_id, holder in Hold.objects.filter(hash_id__in=ids, active=True).values_list(
        "hash_id", "holder"
    ):
        holders.setdefault(hash_id, []).append(holder)
    # By primary key alone: the ids come from this list, and a second condition can
    # tempt the planner into scanning the list index.
    loaded = list(Hash.objects.filter(pk__in=ids).order_by("pk"))
    changed = [h for h in loaded if h.published != (h.pk in holders and not h.disabled)]
    if not changed:
        return loaded, changed

    now = timezone.now()
    timestamp = log_timestamp(hash_list)
    unpublished = [h for h in changed if h.published]
    # The add entry a removal undoes is the hash's newest one not yet redacted.
    add_index = dict(
        LogEntry.objects.filter(
            hash_list=hash_list, hash__in=unpublished, op=LogEntry.Op.ADD, redacted=False
        ).values_list("hash_id", "index")
    )
    pending: list[PendingEntry] = []
    for h in changed:
        h.published = not h.published
        h.changed_at = now
        if h.published:
            imported_only = all(x.startswith(PEER_HOLDER_PREFIX) for x in holders[h.pk])
            leaf = tlog.encode_add(
                algorithm=h.algorithm,
                value=h.value,
                quality=h.quality,
                timestamp=timestamp,
                origin=(h.origin or None) if imported_only else None,
            )
            pending.append(PendingEntry(op="add", leaf=leaf, hash_id=h.pk))
        else:
            undone = add_index[h.pk]
            leaf = tlog.encode_remove(
                index=undone, reason="disabled" if h.disabled else reason, timestamp=timestamp
            )
            pending.append(PendingEntry(op="remove", leaf=leaf, hash_id=h.pk, removes=undone))
    log_append(hash_list=hash_list, entries=pending, timestamp=timestamp)
    log_redact(hash_list=hash_list, indexes=[p.removes for p in pending if p.removes is not None])
    # Set-based UPDATEs: Django's bulk_update builds a CASE per row, which
    # costs more than the rest of a case's creation.
    for state in (True, False):
        pks = [h.pk for h in changed if h.published is state]
        if pks:
            Hash.objects.filter(pk__in=pks).update(published=state, changed_at=now)
    return loaded, changed
