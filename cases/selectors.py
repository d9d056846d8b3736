"""What a case's owner may read about it."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.utils.translation import gettext as _

from cases.models import Case
from hashbank.models import Hash
from hashbank.selectors import hash_partner_counts, holder_hashes, list_slug


class CaseHashStatus(NamedTuple):
    algorithm: str
    value: str
    quality: int | None
    status: str
    partners_received: int | None
    partners_blocked: int | None
    explanation: str = ""


@dataclass(frozen=True)
class CaseStatus:
    list: str
    state: str
    created_at: datetime
    withdrawn_at: datetime | None
    hashes: builtins.list[CaseHashStatus]


def case_hash_state(*, case: Case, disabled: bool, under_review: bool) -> str:
    if case.state == Case.State.WITHDRAWN:
        return "withdrawn"
    if disabled:
        return "disabled"
    if under_review:
        return "under_review"
    return "active"


def case_hash_explanation(state: str) -> str:
    """A few kind words on a state the victim did not choose, in the active language."""
    if state == "under_review":
        return _(
            "We are taking a closer look at this hash, as we sometimes do to keep the list "
            "accurate. You don't need to do anything. Nobody has seen your image: it never left "
            "your device."
        )
    if state == "disabled":
        return _(
            "After a careful review, this hash is no longer shared with platforms: it matched a "
            "picture that is widely shared and not intimate. The other hashes in your case are "
            "not affected."
        )
    return ""


def case_status(
    *, case: Case, hashes: list[Hash] | None = None, with_counts: bool = True
) -> CaseStatus:
    """The case as its owner sees it. ``hashes``, when the caller has them, saves a query;
    ``with_counts=False`` skips the partner counts (none exist for a case just made)."""
    if hashes is None:
        hashes = holder_hashes(holder=case.holder)
    counts = (
        hash_partner_counts(hash_list_id=case.hash_list_id, hash_ids=[h.pk for h in hashes])
        if with_counts
        else {h.pk: (0, 0) for h in hashes}
    )
    statuses = []
    for h in hashes:
        state = case_hash_state(case=case, disabled=h.disabled, under_review=h.under_review)
        statuses.append(
            CaseHashStatus(
                algorithm=h.algorithm,
                value=h.value,
                quality=h.quality,
                status=state,
                # Counts only, never which partners.
                partners_received=counts[h.pk][0],
                partners_blocked=counts[h.pk][1],
                explanation=case_hash_explanation(state),
            )
        )
    return CaseStatus(
        list=list_slug(case.hash_list_id),
        state=case.state,
        created_at=case.created_at,
        withdrawn_at=case.withdrawn_at,
        hashes=statuses,
    )
