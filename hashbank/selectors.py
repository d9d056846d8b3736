"""Read-only queries over lists and hashes."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hashbank.models import Hash, HashList, Holder


class PartnerCounts(Protocol):
    """Per hash id: (partners that received the hash, partners that confirmed blocking it)."""

    def __call__(
        self, *, hash_list_id: int, hash_ids: Sequence[int]
    ) -> Mapping[int, tuple[int, int]]: ...


_partner_counts: PartnerCounts | None = None


def holder_hashes(*, holder: Holder) -> list[Hash]:
    """The hashes one holder holds or held, in submission order."""
    return list(
        Hash.objects.filter(holds__holder_kind=holder.kind, holds__holder_id=holder.id).order_by(
            "holds__pk"
        )
    )


def partner_counts_provide(provider: PartnerCounts | None) -> None:
    """Register who counts partners per hash (the exchange app, at start-up).

    The bank knows nothing of partners; whoever delivers its lists says how far
    they got. ``None`` unregisters (tests).
    """
    global _partner_counts
    _partner_counts = provider


def hash_partner_counts(
    *, hash_list_id: int, hash_ids: Sequence[int]
) -> dict[int, tuple[int, int]]:
    """Per hash: (partners that received it, partners that confirmed blocking it).

    Counts only, never which partners. Zero for every hash when no app that
    delivers lists is installed.
    """
    counts: Mapping[int, tuple[int, int]] = {}
    if _partner_counts is not None and hash_ids:
        counts = _partner_counts(hash_list_id=hash_list_id, hash_ids=hash_ids)
    return {pk: counts.get(pk, (0, 0)) for pk in hash_ids}


@dataclass(frozen=True)
class PartnerFeedback:
    """One partner's current feedback on a hash, named: for reviewers, never victims."""

    partner: str
    outcome: str
    tags: tuple[str, ...]
    updated_at: datetime


class FeedbackProvider(Protocol):
    """Per hash id: each partner's current feedback."""

    def __call__(self, *, hash_ids: Sequence[int]) -> Mapping[int, Sequence[PartnerFeedback]]: ...


_feedback: FeedbackProvider | None = None


def feedback_provide(provider: FeedbackProvider | None) -> None:
    """Register who keeps partner feedback (the exchange app, at start-up).

    With ``hashbank.signals.hash_feedback_received``, which the same app sends,
    this lets reviewers act on feedback without importing the exchange app.
    ``None`` unregisters (tests).
    """
    global _feedback
    _feedback = provider


def hash_feedback(*, hash_ids: Sequence[int]) -> dict[int, list[PartnerFeedback]]:
    """Per hash: each partner's current feedback, by partner name. Empty for every hash
    when no app that takes feedback is installed."""
    found: Mapping[int, Sequence[PartnerFeedback]] = {}
    if _feedback is not None and hash_ids:
        found = _feedback(hash_ids=hash_ids)
    return {pk: sorted(found.get(pk, ()), key=lambda f: f.partner) for pk in hash_ids}


# Lists are never deleted (PROTECT) and their slugs never change (admin shows
# them read-only: the slug names the list in its log's signed checkpoints), so
# both directions can be remembered for the life of the process.


@functools.lru_cache(maxsize=64)
def list_slug(list_id: int) -> str:
    """A list's slug."""
    return HashList.objects.values_list("slug", flat=True).get(pk=list_id)


@functools.lru_cache(maxsize=64)
def list_id(slug: str) -> int:
    """A list's id, by its slug."""
    return HashList.objects.values_list("pk", flat=True).get(slug=slug)
