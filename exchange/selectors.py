"""Reads more than one part of the exchange needs: which lists a partner may read, entries
in their wire form (pull and push), and the partner counts a case shows."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from exchange.models import (
    Delivery,
    Feedback,
    FeedbackOutcome,
    ListGrant,
    Partner,
    PartnerListState,
)
from exchange.ttl_cache import TtlCache
from hashbank import tlog
from hashbank.models import HashList, LogEntry
from hashbank.selectors import PartnerFeedback


def _grant_entitles() -> Q:
    """The rule, on a ListGrant: it lets its partner read its list when the list needs no
    explicit grant or the grant is explicitly confirmed (the ``minor`` list)."""
    return Q(hash_list__requires_explicit_grant=False) | Q(explicit_confirmation=True)


def partner_lists(*, partner: Partner) -> QuerySet[HashList]:
    """Lists this partner may read (``_grant_entitles``)."""
    return HashList.objects.filter(
        pk__in=ListGrant.objects.filter(_grant_entitles(), partner=partner).values("hash_list")
    )


def delivery_entitled() -> Exists:
    """Deliveries (push) whose partner is active and may still read the list.

    The same rule as ``partner_lists`` (``_grant_entitles``), seen from a row of
    Delivery. Push checks it when it queues and before every batch, since a
    grant can be revoked or a partner deactivated while pushes are queued. It
    refers to the delivery's own columns, so it fits the single-table UPDATE
    that claims a delivery's lease.
    """
    return Exists(
        ListGrant.objects.filter(
            _grant_entitles(),
            partner=OuterRef("partner_id"),
            hash_list=OuterRef("hash_list_id"),
            partner__active=True,
        )
    )


def _b64(data: bytes | memoryview) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def entry_json(index: int, leaf: bytes, leaf_hash: bytes, redacted: bool) -> dict[str, Any]:
    """The wire form of one entry (docs/LOG_FORMAT.md §5): decoded fields plus the exact leaf.

    A redacted add is its leaf hash and nothing else: its value, its salt and its bytes are
    never served again, so nobody can test a guess against the hash.
    """
    if redacted:
        return {"index": index, "op": "add", "redacted": True, "leaf_hash": _b64(leaf_hash)}
    decoded = tlog.decode_leaf(leaf)
    if decoded.op == "add":
        body: dict[str, Any] = {
            "index": index,
            "op": "add",
            "algorithm": decoded.algorithm,
            "value": decoded.value,
            "quality": decoded.quality,
            "timestamp": decoded.timestamp,
            "origin": decoded.origin,
            "salt": _b64(decoded.salt or b""),
        }
    else:
        body = {
            "index": index,
            "op": "remove",
            "removes": decoded.removes,
            "reason": decoded.reason,
            "timestamp": decoded.timestamp,
        }
    body["leaf"] = _b64(leaf)
    return body


def entry_json_text(index: int, leaf: bytes, leaf_hash: bytes, redacted: bool) -> str:
    """``entry_json`` rendered straight to JSON text, for large pages.

    The leaf bytes come from our own canonical encoder (tlog.encode_*), so their
    fields are ASCII of known shape; only the origin needs JSON escaping. The
    result is identical to ``json.dumps(entry_json(...), separators=(",", ":"))``
    (tests/exchange/feeds/test_pull_api.py checks it).
    """
    if redacted:
        return f'{{"index":{index},"op":"add","redacted":true,"leaf_hash":"{_b64(leaf_hash)}"}}'
    parts = leaf[:-1].decode("ascii").split(" ")
    if parts[0] == "add2":  # add2 <salt hex> <algorithm> <value> <quality> <time>[ <origin>]
        salt = _b64(bytes.fromhex(parts[1]))
        quality = "null" if parts[4] == "-" else parts[4]
        origin = json.dumps(parts[6]) if len(parts) == 7 else "null"
        return (
            f'{{"index":{index},"op":"add","algorithm":"{parts[2]}","value":"{parts[3]}",'
            f'"quality":{quality},"timestamp":{parts[5]},"origin":{origin},"salt":"{salt}",'
            f'"leaf":"{_b64(leaf)}"}}'
        )
    return (
        f'{{"index":{index},"op":"remove","removes":{parts[1]},"reason":"{parts[2]}",'
        f'"timestamp":{parts[3]},"leaf":"{_b64(leaf)}"}}'
    )


def entries_json_text(*, hash_list_id: int, start: int, end: int) -> list[str]:
    """Entries [start, end) of a list's log, each as wire-format JSON text (pull and push)."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT "index", leaf, leaf_hash, redacted FROM hashbank_logentry '
            'WHERE hash_list_id = %s AND "index" >= %s AND "index" < %s ORDER BY "index"',
            [hash_list_id, start, end],
        )
        return [
            entry_json_text(index, bytes(leaf), bytes(digest), bool(redacted))
            for index, leaf, digest, redacted in cursor.fetchall()
        ]


def hash_partner_counts(
    *, hash_list_id: int, hash_ids: Sequence[int]
) -> dict[int, tuple[int, int]]:
    """Per hash: (partners that received it, partners that confirmed blocking it).

    Counts only, never which partners. A partner received a hash when it pulled
    or was pushed past the hash's newest ``add`` entry. Registered with the bank
    at start-up (``exchange.apps``): a victim's status reaches it through
    ``hashbank.selectors.hash_partner_counts``.
    """
    if not hash_ids:
        return {}

    positions = _partner_positions(hash_list_id)
    # Nobody has received anything yet: no need to find the hashes' adds.
    add_index = (
        dict(
            LogEntry.objects.filter(
                hash_list_id=hash_list_id, hash_id__in=hash_ids, op=LogEntry.Op.ADD
            )
            .values("hash_id")
            .annotate(newest=Max("index"))
            .values_list("hash_id", "newest")
        )
        if any(positions.values())
        else {}
    )
    blocked = dict(
        Feedback.objects.filter(hash_id__in=hash_ids, outcome=FeedbackOutcome.BLOCKED)
        .values("hash_id")
        .annotate(n=Count("partner", distinct=True))
        .values_list("hash_id", "n")
    )
    counts = {}
    for hash_id in hash_ids:
        index = add_index.get(hash_id)
        received = 0 if index is None else sum(1 for p in positions.values() if p > index)
        counts[hash_id] = (received, blocked.get(hash_id, 0))
    return counts


_positions_cache: TtlCache[int, dict[int, int]] = TtlCache()


def _partner_positions(hash_list_id: int) -> dict[int, int]:
    """The furthest each partner pulled or was pushed in this list, in one query; kept per
    process for HASHBANK_PARTNER_POSITIONS_CACHE_S (the counts may lag by that much)."""
    ttl = settings.HASHBANK_PARTNER_POSITIONS_CACHE_S
    cached = _positions_cache.get(hash_list_id) if ttl else None
    if cached is not None:
        return cached
    positions: dict[int, int] = {}
    pulled = (
        PartnerListState.objects.filter(hash_list_id=hash_list_id)
        .order_by()
        .values_list("partner_id", "last_fetch_position")
    )
    pushed = (
        Delivery.objects.filter(hash_list_id=hash_list_id)
        .order_by()
        .values_list("partner_id", "acked_position")
    )
    for partner_id, position in pulled.union(pushed, all=True):
        positions[partner_id] = max(position, positions.get(partner_id, 0))
    _positions_cache.put(hash_list_id, positions, ttl)
    return positions


def partner_positions_cache_clear() -> None:
    _positions_cache.clear()


def hash_feedback(*, hash_ids: Sequence[int]) -> dict[int, list[PartnerFeedback]]:
    """Per hash: each partner's current feedback, the partner named (for reviewers only).

    Registered with the bank at start-up (``exchange.apps``); reviewers read it
    through ``hashbank.selectors.hash_feedback``.
    """
    found: dict[int, list[PartnerFeedback]] = {}
    for hash_id, partner, outcome, tags, updated_at in Feedback.objects.filter(
        hash_id__in=hash_ids
    ).values_list("hash_id", "partner__name", "outcome", "tags", "updated_at"):
        found.setdefault(hash_id, []).append(
            PartnerFeedback(
                partner=partner, outcome=outcome, tags=tuple(tags), updated_at=updated_at
            )
        )
    return found
