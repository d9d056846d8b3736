"""Services that change what the bank holds and publishes.

Every change to a hash's published state goes through ``_apply_rule``, the one
place that derives it: a hash is published while at least one active hold (an
active case, or a federated import) keeps it and no reviewer disabled it. The
same function appends the change to the list's log (``hashbank.log``), in the
same transaction and under the list's row lock. A new hash that the registered
screener (the reviewers' allowlist, ``hash_screener_provide``) holds for review
is not published until a reviewer decides.

Provenance: an ``add`` names the origin of a federated import (``Hash.origin``)
only while no local holder keeps the hash, and a published hash's add always
names a provenance that still holds it. When the last holder of that
provenance lets go but others keep the hash, it is re-published (a ``remove``
and a new ``add``) under the provenance that remains. So a bank never
re-exports as its own a hash it only keeps because a peer does, and two banks
subscribed to each other cannot keep a hash alive for one another after both
let go of it (peers skip adds that name their own origin). A hold's ``origin``
is its provenance: empty for a local holder, whatever its kind.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from hashbank import sql, tlog
from hashbank.log import PendingEntry, log_append, log_redact, log_timestamp
from hashbank.models import Hash, HashList, Hold, Holder, LogEntry

#: The columns of a new hash, by attribute name (every column but the primary key): a new
#: hash is unpublished, enabled and not under review until the rule says otherwise.
_HASH_FIELDS = (
    "hash_list_id", "algorithm", "value", "quality", "first_seen", "published", "disabled",
    "under_review", "review_hold", "changed_at", "origin",
)  # fmt: skip

#: The columns of a new hold, by attribute name (every column but the primary key).
_HOLD_FIELDS = (
    "hash_id",
    "holder_kind",
    "holder_id",
    "origin",
    "active",
    "created_at",
    "released_at",
)

#: Hashes looked up per query when holding many at once (federated imports), on databases
#: other than PostgreSQL (which looks them all up in one join, ``sql.hash_ids_matching``).
_LOOKUP_CHUNK = 1000


@dataclass(frozen=True)
class HashInput:
    """A validated, normalised hash as a case or an import submits it."""

    algorithm: str
    value: str
    quality: int | None = None


class HashScreener(Protocol):
    """Decides which of these hashes to hold for review; returns their ids.

    Called inside ``hashes_hold``'s transaction, under the list's row lock, with the
    hashes that are about to be published (held, not published, not disabled, not
    already held for review). It may write its own rows (a dispute) in that transaction.
    """

    def __call__(self, *, hash_list: HashList, hashes: Sequence[Hash]) -> Collection[int]: ...


_screener: HashScreener | None = None


def hash_screener_provide(screener: HashScreener | None) -> None:
    """Register who screens new hashes before they are published (the reviewers app,
    at start-up: its allowlist). The bank does not know what an allowlist is; ``None``
    unregisters (tests)."""
    global _screener
    _screener = screener


def hash_list_lock(*, hash_list_id: int) -> HashList:
    """Lock and return the list row for this transaction.

    Every change to a list's published state takes this lock first, so changes
    to one list are applied and logged one transaction at a time: log indexes
    have no gaps, and "insert the hashes that are missing" has no race.
    """
    return HashList.objects.select_for_update().get(pk=hash_list_id)


def hashes_hold(
    *,
    hash_list: HashList,
    hashes: Sequence[HashInput],
    holder: Holder,
    origin: str = "",
) -> list[Hash]:
    """Record that ``holder`` keeps these hashes published; returns them in input order.

    Runs in the caller's transaction (or its own). Idempotent per (hash, holder).
    The first quality seen for a hash is kept; ``origin`` is the provenance of
    hashes imported from a peer bank, kept on the hold (empty for a local holder).
    """
    unique = list({(h.algorithm, h.value): h for h in hashes}.values())
    if not unique:
        return []
    with transaction.atomic(savepoint=False):
        locked = hash_list_lock(hash_list_id=hash_list.pk)
        now = timezone.now()
        rows, new = _hashes_find_or_create(hash_list=locked, hashes=unique, origin=origin, now=now)
        # A hash inserted now has no hold to conflict with: its holds are plain new rows.
        if new:
            sql.insert_rows(
                Hold,
                _HOLD_FIELDS,
                [(pk, str(holder.kind), holder.id, origin, True, now, None) for pk in sorted(new)],
            )
        # Holding again is idempotent: an existing hold is made active again.
        Hold.objects.bulk_create(
            [
                Hold(
                    hash_id=row.pk,
                    holder_kind=holder.kind,
                    holder_id=holder.id,
                    origin=origin,
                    created_at=now,
                )
                for row in rows
                if row.pk not in new
            ],
            update_conflicts=True,
            unique_fields=["hash", "holder_kind", "holder_id"],
            update_fields=["active", "released_at", "origin"],
        )
        holds = _holds_active([row.pk for row in rows if row.pk not in new])
        holds.update((pk, [origin]) for pk in new)  # inserted now: this hold is their only one
        _screen(hash_list=locked, rows=rows, holds=holds)
        _apply_rule(hash_list=locked, loaded=rows, holds=holds)
        by_key = {(row.algorithm, row.value): row for row in rows}
        return [by_key[(h.algorithm, h.value)] for h in hashes]


def _screen(*, hash_list: HashList, rows: list[Hash], holds: dict[int, list[str]]) -> None:
    """Let the registered screener hold the hashes about to be published for review.

    A published hash is never screened: it stays published while under review.
    """
    if _screener is None:
        return
    # About to be published: unpublished now, and publishable by the rule itself.
    candidates = [
        h
        for h in rows
        if not h.published
        and _publishable(held=h.pk in holds, disabled=h.disabled, review_hold=h.review_hold)
    ]
    if not candidates:
        return
    held = set(_screener(hash_list=hash_list, hashes=candidates))
    if not held:
        return
    Hash.objects.filter(pk__in=held).update(review_hold=True, under_review=True)
    for h in candidates:
        if h.pk in held:
            h.review_hold = h.under_review = True


def _hashes_find_or_create(
    *, hash_list: HashList, hashes: Sequence[HashInput], origin: str, now: datetime
) -> tuple[list[Hash], set[int]]:
    """The list's rows for these (unique) hashes, sorted by id, inserting the missing ones
    unpublished; and the ids of those inserted.

    The caller holds the list's row lock, so nobody inserts into the list meanwhile.
    """
    if connection.vendor == "postgresql":
        keys = [(h.algorithm, h.value) for h in hashes]
        found = list(
            Hash.objects.filter(pk__in=sql.hash_ids_matching(hash_list_id=hash_list.pk, keys=keys))
        )
    else:
        found = []
        for start in range(0, len(hashes), _LOOKUP_CHUNK):
            by_algorithm: dict[str, list[str]] = {}
            for h in hashes[start : start + _LOOKUP_CHUNK]:
                by_algorithm.setdefault(h.algorithm, []).append(h.value)
            condition = Q()
            for algorithm, values in by_algorithm.items():
                condition |= Q(algorithm=algorithm, value__in=values)
            found.extend(Hash.objects.filter(condition, hash_list=hash_list))
    present = {(row.algorithm, row.value) for row in found}
    created = sql.insert_rows_returning(
        Hash,
        _HASH_FIELDS,
        [
            (
                hash_list.pk,
                h.algorithm,
                h.value,
                h.quality,
                now,
                False,
                False,
                False,
                False,
                now,
                origin,
            )
            for h in hashes
            if (h.algorithm, h.value) not in present
        ],
    )
    return sorted(found + created, key=lambda row: row.pk), {row.pk for row in created}


def holds_release(*, holder: Holder, reason: str = "withdrawn") -> list[int]:
    """Release every hold of ``holder``; idempotent. Returns the affected hash ids."""
    return _release(_holds_of(holder).filter(active=True), reason=reason)


def hashes_release(
    *, holder: Holder, hash_ids: Iterable[int], reason: str = "withdrawn"
) -> list[int]:
    """Release ``holder``'s holds on these hashes only (a peer removed them); idempotent.

    A hash another holder keeps (a local case, another peer) stays published.
    Returns the ids of the hashes whose hold was released.
    """
    ids = sorted(set(hash_ids))
    if not ids:
        return []
    return _release(_holds_of(holder).filter(hash_id__in=ids, active=True), reason=reason)


def _holds_of(holder: Holder) -> QuerySet[Hold]:
    return Hold.objects.filter(holder_kind=holder.kind, holder_id=holder.id)


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
) -> list[Hash]:
    """Derive, store and log the published state of these hashes; returns those that changed.

    Takes the list lock itself (re-entrant within one transaction).
    """
    with transaction.atomic(savepoint=False):
        locked = hash_list_lock(hash_list_id=hash_list.pk)
        return _refresh_published(hash_list=locked, hash_ids=hash_ids, reason=reason)


# --- Reviewers' decisions -------------------------------------------------------------
# The reviewers app decides; these apply its decisions through the one rule above.


def hash_disable(*, hash_id: int) -> Hash:
    """Disable a hash: it is never published again until re-enabled.

    A published hash is removed with reason ``disabled`` and its add redacted, as a
    withdrawal is. Ends any review and any hold for review. Idempotent.
    """
    return _hash_review_set(hash_id, disabled=True, review_hold=False, under_review=False)


def hash_enable(*, hash_id: int) -> Hash:
    """Undo a disable: the hash is published again (a new ``add``) while a hold keeps it."""
    return _hash_review_set(hash_id, disabled=False, review_hold=False, under_review=False)


def hash_review_start(*, hash_id: int) -> Hash:
    """Mark a hash under review. A published hash stays published meanwhile."""
    return _hash_review_set(hash_id, under_review=True)


def hash_review_end(*, hash_id: int) -> Hash:
    """End a review without disabling: a hash held for review is released (published
    while a hold keeps it)."""
    return _hash_review_set(hash_id, review_hold=False, under_review=False)


def _hash_review_set(hash_id: int, **flags: bool) -> Hash:
    with transaction.atomic(savepoint=False):
        list_id = Hash.objects.values_list("hash_list_id", flat=True).get(pk=hash_id)
        locked = hash_list_lock(hash_list_id=list_id)
        Hash.objects.filter(pk=hash_id).update(**flags)
        _refresh_published(hash_list=locked, hash_ids=[hash_id])
        return Hash.objects.get(pk=hash_id)


def _holds_active(hash_ids: Sequence[int]) -> dict[int, list[str]]:
    """The origins of each hash's active holds, in the order the holds were made."""
    origins: dict[int, list[str]] = {}
    if not hash_ids:
        return origins
    for hash_id, origin in (
        Hold.objects.filter(hash_id__in=hash_ids, active=True)
        .order_by("pk")
        .values_list("hash_id", "origin")
    ):
        origins.setdefault(hash_id, []).append(origin)
    return origins


def _publishable(*, held: bool, disabled: bool, review_hold: bool) -> bool:
    """The rule itself: published while held by an active hold, not disabled, and not
    held for review. (Being under review alone changes nothing.)"""
    return held and not disabled and not review_hold


def _provenance(origins: Sequence[str]) -> str:
    """The origin a new add names: none while a local holder keeps the hash, else an import's."""
    return "" if "" in origins else origins[0]


def _refresh_published(
    *, hash_list: HashList, hash_ids: Iterable[int], reason: str = "withdrawn"
) -> list[Hash]:
    """Derive, store and log the published state of these hashes from what the database holds.

    ``hash_list`` is the row locked in this transaction. Returns the hashes
    whose published state changed.
    """
    ids = sorted(set(hash_ids))
    loaded = list(Hash.objects.filter(pk__in=ids).order_by("pk"))
    return _apply_rule(hash_list=hash_list, loaded=loaded, holds=_holds_active(ids), reason=reason)


def _apply_rule(
    *,
    hash_list: HashList,
    loaded: list[Hash],
    holds: dict[int, list[str]],
    reason: str = "withdrawn",
) -> list[Hash]:
    """Apply the rule to ``loaded`` (sorted by id) given the origins of their active holds.

    Each hash's ``published`` is its state as the log last said. Appends an
    ``add`` entry for each newly published hash and a ``remove`` entry (naming
    the add by index) for each unpublished one, then redacts those adds; a hash
    that stays published but lost the provenance its add names is re-published
    (``remove`` then ``add``, see the module docstring). ``reason`` is the
    remove reason unless the hash is disabled. Stores what changed and returns
    the hashes whose published state changed.
    """
    changed: list[Hash] = []
    republished: list[Hash] = []
    for h in loaded:
        publish = _publishable(held=h.pk in holds, disabled=h.disabled, review_hold=h.review_hold)
        if h.published != publish:
            changed.append(h)
        elif publish and h.origin not in holds[h.pk]:
            republished.append(h)
    if not changed and not republished:
        return changed

    now = timezone.now()
    timestamp = log_timestamp(hash_list)
    undo = [h.pk for h in changed if h.published] + [h.pk for h in republished]
    # The add entry a removal undoes is the hash's newest one not yet redacted.
    add_index = (
        dict(
            LogEntry.objects.filter(
                hash_id__in=undo, op=LogEntry.Op.ADD, redacted=False
            ).values_list("hash_id", "index")
        )
        if undo  # a new case's hashes undo nothing: no query to build
        else {}
    )
    pending: list[PendingEntry] = []
    republishing = {h.pk for h in republished}
    for h in sorted(changed + republished, key=lambda h: h.pk):
        if h.published:  # unpublish, or undo the add before re-publishing
            undone = add_index[h.pk]
            leaf = tlog.encode_remove(
                index=undone, reason="disabled" if h.disabled else reason, timestamp=timestamp
            )
            pending.append(PendingEntry(op="remove", leaf=leaf, hash_id=h.pk, removes=undone))
        if not h.published or h.pk in republishing:
            h.origin = _provenance(holds[h.pk])
            leaf = tlog.encode_add(
                salt=secrets.token_bytes(tlog.SALT_SIZE),  # fresh for every add: LOG_FORMAT.md §1
                algorithm=h.algorithm,
                value=h.value,
                quality=h.quality,
                timestamp=timestamp,
                origin=h.origin or None,
            )
            pending.append(PendingEntry(op="add", leaf=leaf, hash_id=h.pk))
    for h in changed:
        h.published = not h.published
    log_append(hash_list=hash_list, entries=pending, timestamp=timestamp)
    log_redact(hash_list=hash_list, indexes=[p.removes for p in pending if p.removes is not None])
    _store(changed, republished, now=now)
    return changed


def _store(changed: list[Hash], republished: list[Hash], *, now: datetime) -> None:
    """Write what the rule decided: a changed hash's state and provenance, a republished
    hash's provenance. One UPDATE per group, not ``bulk_update``'s CASE per row."""
    groups: dict[tuple[bool, str], list[int]] = {}
    for h in changed:
        h.changed_at = now
        groups.setdefault((h.published, h.origin), []).append(h.pk)
    for (published, origin), pks in groups.items():
        Hash.objects.filter(pk__in=pks).update(published=published, origin=origin, changed_at=now)
    origins: dict[str, list[int]] = {}
    for h in republished:
        origins.setdefault(h.origin, []).append(h.pk)
    for origin, pks in origins.items():
        Hash.objects.filter(pk__in=pks).update(origin=origin)
