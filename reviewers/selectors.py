"""What reviewers read: the queue, a dispute's signals and a hash's history.

The signals (``dispute_signals``) are what the dispute page shows and what each
decision stores in the journal, so a decision can be read later as it was made.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from hashbank.models import Hash, LogEntry
from hashbank.pdq_index import DEFAULT_RADIUS, PDQIndex, vectors_from_hex
from hashbank.selectors import hash_feedback, list_slug
from reviewers.models import AllowlistEntry, Decision, Dispute, DisputeState

_CHUNK = 1000

UNRESOLVED = [DisputeState.OPEN, DisputeState.DISABLE_PROPOSED, DisputeState.ESCALATED]


def dispute_queue() -> QuerySet[Dispute]:
    """Unresolved disputes, oldest first."""
    return Dispute.objects.filter(state__in=UNRESOLVED).order_by("opened_at", "pk")


# --- PDQ indexes, kept current in the process -----------------------------------------


class _CachedIndex:
    """A PDQ index over the rows of one table, extended as rows are added.

    Rows of both tables it serves are only added or deleted, never edited, and ids
    only grow, so (row count, largest id, that row's value) changes whenever the
    table's content does; on any change other than new rows the index is rebuilt.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index = PDQIndex()
        self.key: tuple[int, int, str] = (0, 0, "")

    def current(self, rows: QuerySet[Any]) -> PDQIndex:
        """``rows``: a values_list of (pk, hex value) over the PDQ rows of the table."""
        with self.lock:
            stats = rows.aggregate(n=Count("pk"), top=Max("pk"))
            n, top = stats["n"] or 0, stats["top"] or 0
            top_value = rows.filter(pk=top).values_list("value", flat=True).first() or ""
            key = (n, top, top_value)
            if key == self.key:
                return self.index
            old_n, old_top, _ = self.key
            extended = (
                old_top
                and top > old_top
                and rows.filter(pk=old_top, value=self.key[2]).exists()
                and rows.filter(pk__lte=old_top).count() == old_n
            )
            new = rows.filter(pk__gt=old_top) if extended else rows
            pairs = list(new.order_by("pk").values_list("pk", "value"))
            if not extended:
                self.index = PDQIndex()
            if pairs:
                self.index.add(
                    vectors_from_hex(v for _, v in pairs), np.array([pk for pk, _ in pairs])
                )
            self.key = key
            return self.index


_allowlist_index = _CachedIndex()
_bank_index = _CachedIndex()


@dataclass(frozen=True)
class AllowlistMatch:
    entry_id: int
    description: str
    distance: int


def allowlist_matches(*, hashes: Sequence[Hash]) -> dict[int, AllowlistMatch]:
    """Per hash id: its closest allowlist entry within PDQ distance 31, or with an equal MD5."""
    found: dict[int, AllowlistMatch] = {}
    # Every case is screened, and the allowlist is usually small or empty: one query says
    # which algorithms it holds at all.
    listed = set(AllowlistEntry.objects.values_list("algorithm", flat=True).distinct())
    if not listed:
        return found
    pdqs = [h for h in hashes if h.algorithm == "pdq"]
    if pdqs and "pdq" in listed:
        index = _allowlist_index.current(AllowlistEntry.objects.filter(algorithm="pdq"))
        results = index.query_many(vectors_from_hex(h.value for h in pdqs), radius=DEFAULT_RADIUS)
        best = {h.pk: matches[0] for h, matches in zip(pdqs, results, strict=True) if matches}
        entries = dict(
            AllowlistEntry.objects.filter(pk__in=[m[0] for m in best.values()]).values_list(
                "pk", "description"
            )
        )
        for hash_id, (entry_id, distance) in best.items():
            if entry_id in entries:
                found[hash_id] = AllowlistMatch(entry_id, entries[entry_id], distance)
    others = [h for h in hashes if h.algorithm != "pdq"]
    if others and listed - {"pdq"}:
        values = sorted({h.value for h in others})
        exact: dict[tuple[str, str], tuple[int, str]] = {}
        # In chunks: a federated import screens many hashes at once.
        for start in range(0, len(values), _CHUNK):
            exact.update(
                ((algorithm, value), (pk, description))
                for pk, algorithm, value, description in AllowlistEntry.objects.filter(
                    value__in=values[start : start + _CHUNK]
                ).values_list("pk", "algorithm", "value", "description")
            )
        for h in others:
            if (h.algorithm, h.value) in exact:
                pk, description = exact[(h.algorithm, h.value)]
                found[h.pk] = AllowlistMatch(pk, description, 0)
    return found


@dataclass(frozen=True)
class NearDuplicate:
    hash_id: int
    list: str
    value: str
    distance: int
    state: str


def hash_state(h: Hash) -> str:
    """A hash's state in a word, for reviewers."""
    if h.disabled:
        return "disabled"
    if h.review_hold:
        return "held for review"
    state = "published" if h.published else "not published"
    return f"{state}, under review" if h.under_review else state


def hash_near_duplicates(*, hash: Hash, radius: int = DEFAULT_RADIUS) -> list[NearDuplicate]:
    """The other PDQ hashes in the bank (every list) within ``radius``, closest first."""
    if hash.algorithm != "pdq":
        return []
    index = _bank_index.current(Hash.objects.filter(algorithm="pdq"))
    matches = [
        (i, d) for i, d in index.query(vectors_from_hex([hash.value])[0], radius) if i != hash.pk
    ]
    rows = Hash.objects.in_bulk([i for i, _ in matches])
    return [
        NearDuplicate(i, list_slug(rows[i].hash_list_id), rows[i].value, d, hash_state(rows[i]))
        for i, d in matches
        if i in rows
    ]


# --- A dispute's signals and a hash's history ------------------------------------------


def _age(since: datetime) -> str:
    days = (timezone.now() - since).days
    return f"{days} day{'s' if days != 1 else ''}"


def dispute_signals(*, dispute: Dispute) -> dict[str, Any]:
    """Everything a reviewer sees about a dispute, as JSON-ready data.

    Holders are counted, never named; partners are named (reviewers may see
    them; victims never do).
    """
    h = Hash.objects.get(pk=dispute.hash_id)
    holders = h.holds.filter(active=True).count()
    feedback = hash_feedback(hash_ids=[h.pk])[h.pk]
    tallies: dict[str, list[str]] = {}
    for f in feedback:
        tallies.setdefault(f.outcome, []).append(f.partner)
    return {
        "dispute": {
            "id": dispute.pk,
            "reason": dispute.reason,
            "state": dispute.state,
            "opened_at": dispute.opened_at.isoformat(),
            "detail": dispute.detail,
        },
        "hash": {
            "id": h.pk,
            "list": list_slug(h.hash_list_id),
            "algorithm": h.algorithm,
            "value": h.value,
            "quality": h.quality,
            "first_seen": h.first_seen.isoformat(),
            "age": _age(h.first_seen),
            "state": hash_state(h),
            "active_holders": holders,
        },
        "feedback": {
            "tallies": {outcome: len(names) for outcome, names in sorted(tallies.items())},
            "partners": [
                {
                    "partner": f.partner,
                    "outcome": f.outcome,
                    "tags": list(f.tags),
                    "updated_at": f.updated_at.isoformat(),
                }
                for f in feedback
            ],
        },
        "near_duplicates": [
            {
                "hash_id": n.hash_id,
                "list": n.list,
                "value": n.value,
                "distance": n.distance,
                "state": n.state,
            }
            for n in hash_near_duplicates(hash=h)
        ],
    }


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    kind: str
    text: str


def hash_history(*, hash_id: int) -> list[HistoryItem]:
    """The hash's log entries, disputes and decisions, oldest first."""
    items: list[HistoryItem] = []
    for index, op, timestamp, removes, redacted in LogEntry.objects.filter(
        hash_id=hash_id
    ).values_list("index", "op", "timestamp", "removes", "redacted"):
        at = datetime.fromtimestamp(timestamp, tz=UTC)  # log times are Unix seconds
        text = f"#{index} {op}" + (f" (removes #{removes})" if removes is not None else "")
        items.append(HistoryItem(at, "log", text + (" [redacted]" if redacted else "")))
    for d in Dispute.objects.filter(hash_id=hash_id):
        items.append(HistoryItem(d.opened_at, "dispute", f"dispute {d.pk} opened: {d.reason}"))
        if d.closed_at:
            items.append(HistoryItem(d.closed_at, "dispute", f"dispute {d.pk} closed: {d.outcome}"))
    for decision in Decision.objects.filter(hash_id=hash_id):
        items.append(
            HistoryItem(
                decision.decided_at,
                "decision",
                f"{decision.username}: {decision.get_action_display()}"
                + (f": {decision.reason}" if decision.reason else ""),
            )
        )
    return sorted(items, key=lambda i: i.at)


def disputes_cleared(*, hash_ids: Sequence[int]) -> set[int]:
    """Hashes a reviewer already decided to keep or re-enable: the allowlist holds them no
    more."""
    return set(
        Decision.objects.filter(hash_id__in=hash_ids, action__in=["keep", "reenable"]).values_list(
            "hash_id", flat=True
        )
    )


def journal(*, since: datetime | None = None) -> QuerySet[Decision]:
    decisions = Decision.objects.all()
    if since is not None:
        decisions = decisions.filter(decided_at__gte=since)
    return decisions.order_by("decided_at", "pk")
