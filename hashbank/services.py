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
    """
    with transaction.atomic():
        hash_list_lock(hash_list_id=hash_list.pk)
        now = timezone.now()
        wanted = {(h.algorithm, h.value): h for h in hashes}
        existing = {
            (h.algorithm, h.value): h
            for h in Hash.objects.filter(hash_list=hash_list, value__in=[h.value for h in hashes])
            if (h.algorithm, h.value) in wanted
        }
        missing = [
            Hash(
                hash_list=hash_list,
                algorithm=item.algorithm,
                value=item.value,
                quality=item.quality,
                first_seen=now,
                changed_at=now,
            )
            for key, item in wanted.items()
            if key not in existing
        ]
        if missing:
            Hash.objects.bulk_create(missing)
            for created in Hash.objects.filter(
                hash_list=hash_list, value__in=[h.value for h in missing]
            ):
                existing[(created.algorithm, created.value)] = created
        better_quality = [
            h
            for key, h in existing.items()
            if wanted[key].quality is not None and (h.quality or 0) < wanted[key].quality  # type: ignore[operator]
        ]
        for h in better_quality:
            h.quality = wanted[(h.algorithm, h.value)].quality
        if better_quality:
            Hash.objects.bulk_update(better_quality, ["quality"])
        ordered = [existing[(h.algorithm, h.value)] for h in hashes]
        Hold.objects.bulk_create(
            [Hold(hash=h, holder=holder, created_at=now) for h in ordered],
            ignore_conflicts=True,
        )
        Hold.objects.filter(hash__in=ordered, holder=holder, active=False).update(
            active=True, released_at=None
        )
        hashes_refresh_published(hash_list=hash_list, hash_ids=[h.pk for h in ordered])
        return ordered


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
    ids = sorted(set(hash_ids))
    held = set(
        Hold.objects.filter(hash_id__in=ids, active=True)
        .values_list("hash_id", flat=True)
        .distinct()
    )
    changed: list[Hash] = []
    now = timezone.now()
    for h in Hash.objects.filter(pk__in=ids, hash_list=hash_list).order_by("pk"):
        should_publish = h.pk in held and not h.disabled
        if h.published != should_publish:
            h.published = should_publish
            h.changed_at = now
            changed.append(h)
    if changed:
        Hash.objects.bulk_update(changed, ["published", "changed_at"])
    return changed
