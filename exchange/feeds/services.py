"""What partners send and leave through the feeds: fetch positions and feedback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.db import transaction
from django.utils import timezone

from exchange.models import Feedback, FeedbackEvent, FeedbackOutcome, Partner, PartnerListState
from exchange.selectors import partner_lists
from hashbank.algorithms import HashValueError, normalise_value
from hashbank.models import Hash, HashList
from hashbank.signals import hash_feedback_received
from webapi.errors import InvalidInput


def partner_record_fetch(*, partner: Partner, hash_list: HashList, position: int) -> None:
    """Remember how far the partner has fetched (for operators)."""
    now = timezone.now()
    updated = PartnerListState.objects.filter(partner=partner, hash_list=hash_list).update(
        last_fetch_at=now, last_fetch_position=position
    )
    if not updated:
        PartnerListState.objects.get_or_create(
            partner=partner,
            hash_list=hash_list,
            defaults={"last_fetch_at": now, "last_fetch_position": position},
        )


# --- Feedback (docs/ARCHITECTURE.md, "Feedback") -------------------------------------------------

MAX_FEEDBACK_ITEMS = 1000
MAX_FEEDBACK_TAGS = 20
MAX_FEEDBACK_TAG_LENGTH = 64


@dataclass(frozen=True)
class FeedbackItem:
    """One partner's outcome for one hash, as either feedback API submits it."""

    list: str
    algorithm: str
    value: str
    outcome: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackResult:
    ok: bool
    code: str | None = None
    message: str | None = None


def feedback_tags_clean(tags: Sequence[object]) -> list[str]:
    """At most 20 tags of 1-64 printable characters; duplicates dropped, order kept.

    Raises InvalidInput (``field="tags"``) otherwise.
    """
    if len(tags) > MAX_FEEDBACK_TAGS:
        raise InvalidInput(f"At most {MAX_FEEDBACK_TAGS} tags.", field="tags", code="too_many_tags")
    valid: list[str] = []
    for tag in tags:
        if (
            not isinstance(tag, str)
            or not 1 <= len(tag) <= MAX_FEEDBACK_TAG_LENGTH
            or not tag.isprintable()
        ):
            raise InvalidInput(
                f"A tag is 1 to {MAX_FEEDBACK_TAG_LENGTH} printable characters.",
                field="tags",
                code="invalid_tag",
            )
        valid.append(tag)
    return list(dict.fromkeys(valid))


def _feedback_item_clean(item: FeedbackItem) -> FeedbackItem:
    if item.outcome not in FeedbackOutcome.values:
        raise InvalidInput(
            f"Outcome must be one of: {', '.join(FeedbackOutcome.values)}.",
            field="outcome",
            code="invalid_choice",
        )
    try:
        value = normalise_value(item.algorithm, item.value)
    except HashValueError as exc:
        raise InvalidInput(exc.message, field=exc.field, code=exc.code) from None
    return replace(item, value=value, tags=tuple(feedback_tags_clean(item.tags)))


_UNKNOWN_HASH = FeedbackResult(
    ok=False, code="unknown_hash", message="No such hash in a list you can read."
)


def feedback_submit(
    *, partner: Partner, items: Sequence[FeedbackItem], via: str
) -> list[FeedbackResult]:
    """Record a batch of feedback in one transaction; returns one result per item, in order.

    Every item is validated first: a malformed one (outcome, tags, hash format)
    fails the whole batch with InvalidInput naming ``items[i].<field>``, and
    nothing is saved. A hash that is not in the named list, is not published
    (withdrawn or disabled, unless this partner gave feedback on it before), or
    is in a list the partner may not read, is a per-item ``unknown_hash`` error:
    the cases look the same, so a partner learns nothing it could not see. The
    partner's current outcome per hash is upserted (the last item wins when a
    batch names a hash twice) and every item is appended to the history.
    """
    if via not in FeedbackEvent.Via.values:
        raise ValueError(f"unknown feedback channel {via!r}")
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise InvalidInput(
            f"At most {MAX_FEEDBACK_ITEMS} items per request.", field="items", code="max_length"
        )
    cleaned: list[FeedbackItem] = []
    for position, item in enumerate(items):
        try:
            cleaned.append(_feedback_item_clean(item))
        except InvalidInput as exc:
            exc.field = f"items[{position}].{exc.field}"
            raise
    with transaction.atomic():
        readable = dict(partner_lists(partner=partner).values_list("slug", "pk"))
        wanted = [c for c in cleaned if c.list in readable]
        found: dict[tuple[int, str, str], int] = {}
        if wanted:
            rows = list(
                Hash.objects.filter(
                    hash_list_id__in={readable[c.list] for c in wanted},
                    value__in={c.value for c in wanted},
                ).values_list("pk", "hash_list_id", "algorithm", "value", "published")
            )
            # Feedback is taken on published hashes only (or to update the partner's
            # own earlier feedback): otherwise anyone holding a value could learn that
            # it was once submitted and withdrawn.
            mine = set(
                Feedback.objects.filter(
                    partner=partner, hash_id__in=[r[0] for r in rows]
                ).values_list("hash_id", flat=True)
            )
            found = {
                (list_id, algorithm, value): pk
                for pk, list_id, algorithm, value, published in rows
                if published or pk in mine
            }
        now = timezone.now()
        results: list[FeedbackResult] = []
        events: list[FeedbackEvent] = []
        current: dict[int, Feedback] = {}
        for item in cleaned:
            list_id = readable.get(item.list)
            pk = found.get((list_id, item.algorithm, item.value)) if list_id else None
            if pk is None:
                results.append(_UNKNOWN_HASH)
                continue
            results.append(FeedbackResult(ok=True))
            fields = {"partner": partner, "hash_id": pk, "outcome": item.outcome}
            events.append(FeedbackEvent(**fields, tags=list(item.tags), via=via, created_at=now))
            current[pk] = Feedback(**fields, tags=list(item.tags), created_at=now, updated_at=now)
        FeedbackEvent.objects.bulk_create(events)
        # One row per hash: PostgreSQL refuses to update a row twice in one
        # INSERT ... ON CONFLICT, so the batch's last item for a hash wins here.
        Feedback.objects.bulk_create(
            list(current.values()),
            update_conflicts=True,
            unique_fields=["partner", "hash"],
            update_fields=["outcome", "tags", "updated_at"],
        )
        if current:
            # In this transaction: whatever reviewers open from it is saved with the feedback.
            hash_feedback_received.send(sender=Feedback, hash_ids=sorted(current))
    return results
