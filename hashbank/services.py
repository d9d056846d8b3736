"""Services that change what the bank holds and publishes.

Every change to a hash's published state goes through ``hashes_refresh_published``,
the one place that derives it: a hash is published while at least one active hold
(an active case, or a federated import) keeps it and no reviewer disabled it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from hashbank.models import Hash, HashList, Hold


@dataclass(frozen=True)
class HashInput:
    """A validated, normalised hash as a case or an import submits it."""

    algorithm: str
    value: str
    quality: int | None = None


def hash_list_lock(*, hash_list_id: int) -> HashList:
    """Lock the list row for this transaction.

    Every change to a list's published state takes this lock first, so changes
    to one list are applied (and, later, logged) one transaction at a time.
    """
    return HashList.objects.select_for_update().get(pk=hash_list_id)


def hashes_hold(*, hash_list: HashList, hashes: Sequence[HashInput], holder: str) -> list[Hash]:
    """Record that ``holder`` keeps these hashes published; returns them in input order.

    Runs in the caller's transaction (or its own). Idempotent per (hash, holder).
    The first quality seen for a hash is kept.
    """
    unique = list({(h.algorithm, h.value): h for h in hashes}.values())
    with transaction.atomic(savepoint=False):
        hash_list_lock(hash_list_id=hash_list.pk)
        now = timezone.now()
        # One upsert gives every hash its id, whether it is new or not. The
        # no-op update is what makes PostgreSQL and SQLite return existing ids.
        rows = Hash.objects.bulk_create(
            [
                Hash(
                    hash_list=hash_list,
                    algorithm=item.algorithm,
                    value=item.value,
                    quality=item.quality,
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
        loaded, _changed = _refresh_published(hash_list=hash_list, hash_ids=[r.pk for r in rows])
        by_key = {(h.algorithm, h.value): h for h in loaded}
        return [by_key[(h.algorithm, h.value)] for h in hashes]


def holds_release(*, holder: str) -> list[int]:
    """Release every hold of ``holder``; idempotent. Returns the affected hash ids."""
    with transaction.atomic():
        hash_ids_by_list: dict[int, list[int]] = {}
        for hash_id, list_id in Hold.objects.filter(holder=holder, active=True).values_list(
            "hash_id", "hash__hash_list_id"
        ):
            hash_ids_by_list.setdefault(list_id, []).append(hash_id)
        for list_id, hash_ids in sorted(hash_ids_by_list.items()):
            hash_list = hash_list_lock(hash_list_id=list_id)
            Hold.objects.filter(holder=holder, hash_id__in=hash_ids, active=True).update(
                active=False, released_at=timezone.now()
            )
            hashes_refresh_published(hash_list=hash_list, hash_ids=hash_ids)
        return [i for ids in hash_ids_by_list.values() for i in ids]


def hashes_refresh_published(*, hash_list: HashList, hash_ids: Iterable[int]) -> list[Hash]:
    """Derive and store the published state of these hashes; returns those that changed.

    The caller must hold the list lock (``hash_list_lock``) in the current
    transaction, so that state changes are applied in one order.
    """
    return _refresh_published(hash_list=hash_list, hash_ids=hash_ids)[1]


def _refresh_published(
    *, hash_list: HashList, hash_ids: Iterable[int]
) -> tuple[list[Hash], list[Hash]]:
    """The rule itself: published while held by an active hold and not disabled.

    Returns (every hash loaded, the ones whose state changed).
    """
    ids = sorted(set(hash_ids))
    held = set(
        Hold.objects.filter(hash_id__in=ids, active=True)
        .values_list("hash_id", flat=True)
        .distinct()
    )
    loaded = list(Hash.objects.filter(pk__in=ids, hash_list=hash_list).order_by("pk"))
    changed: list[Hash] = []
    now = timezone.now()
    for h in loaded:
        should_publish = h.pk in held and not h.disabled
        if h.published != should_publish:
            h.published = should_publish
            h.changed_at = now
            changed.append(h)
    # Two set-based UPDATEs: Django's bulk_update builds a CASE per row, which
    # costs more than the rest of a case's creation.
    for state in (True, False):
        pks = [h.pk for h in changed if h.published is state]
        if pks:
            Hash.objects.filter(pk__in=pks).update(published=state, changed_at=now)
    return loaded, changed
