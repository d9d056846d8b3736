"""Read-side of the exchange: which lists a partner may read, and the feed itself."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from exchange.models import Feedback, FeedbackOutcome, Partner
from exchange.ttl_cache import TtlCache
from hashbank import tlog
from hashbank.db import is_postgres, server_cursor
from hashbank.log import current_checkpoint, tree_nodes
from hashbank.models import HashList, LogEntry
from webapi.errors import InvalidInput, NotFound

MAX_PAGE = 10_000


def partner_lists(*, partner: Partner) -> QuerySet[HashList]:
    """Lists this partner may read: granted, and explicitly so where the list requires it."""
    return HashList.objects.filter(
        Q(grants__partner=partner)
        & (Q(requires_explicit_grant=False) | Q(grants__explicit_confirmation=True))
    ).distinct()


# partner_lists' rule seen from a row of exchange_delivery, in SQL: push checks it
# for every task, and Django takes about a millisecond to compile the same rule
# written as an Exists() (the database runs it in a few microseconds).
# tests/exchange/test_push_delivery.py checks that the two forms agree.
_DELIVERY_ENTITLED_SQL = """EXISTS (
    SELECT 1 FROM exchange_listgrant g
    JOIN exchange_partner p ON p.id = g.partner_id
    JOIN hashbank_hashlist l ON l.id = g.hash_list_id
    WHERE g.partner_id = exchange_delivery.partner_id
      AND g.hash_list_id = exchange_delivery.hash_list_id
      AND p.active
      AND (g.explicit_confirmation OR NOT l.requires_explicit_grant)
)"""


def delivery_entitled() -> RawSQL:
    """Deliveries (push) whose partner is active and may still read the list.

    Push checks it when it queues and before every batch, since a grant can be
    revoked or a partner deactivated while pushes are queued. It refers to the
    delivery table by name, so it fits the single-table UPDATE that claims a
    delivery's lease as well as any query on Delivery that does not alias it.
    """
    return RawSQL(_DELIVERY_ENTITLED_SQL, (), output_field=BooleanField())  # noqa: S611 (constant)


_grant_cache: TtlCache[tuple[int, str], int] = TtlCache()


def partner_list_get(*, partner: Partner, slug: str) -> HashList:
    """The list, or NotFound whether it doesn't exist or isn't granted (indistinguishable).

    Grants are cached per process like credentials (HASHBANK_AUTH_CACHE_S); the
    list row itself is always read fresh.
    """
    key = (partner.pk, slug)
    ttl = settings.HASHBANK_AUTH_CACHE_S
    list_id = _grant_cache.get(key) if ttl else None
    if list_id is not None:
        return HashList.objects.get(pk=list_id)
    hash_list = partner_lists(partner=partner).filter(slug=slug).first()
    if hash_list is None:
        _grant_cache.discard(key)
        raise NotFound("No such list.", field="slug")
    _grant_cache.put(key, hash_list.pk, ttl)
    return hash_list


def grant_cache_clear() -> None:
    _grant_cache.clear()


_checkpoint_cache: TtlCache[str, str] = TtlCache()


def partner_checkpoint(*, partner: Partner, slug: str) -> str:
    """The newest signed checkpoint of a list this partner may read.

    The most polled endpoint of all, so the signed note is kept per process for
    HASHBANK_CHECKPOINT_CACHE_MS: it still covers every committed entry within
    that time (well under the one second partners are promised).
    """
    ttl = settings.HASHBANK_CHECKPOINT_CACHE_MS / 1000
    # Access is checked on every request, through the grant cache (HASHBANK_AUTH_CACHE_S).
    if ttl and settings.HASHBANK_AUTH_CACHE_S and _grant_cache.get((partner.pk, slug)):
        note = _checkpoint_cache.get(slug)
        if note is not None:
            return note
    hash_list = partner_list_get(partner=partner, slug=slug)
    note = current_checkpoint(
        slug=hash_list.slug, size=hash_list.log_size, tree_edge=hash_list.tree_edge
    )
    _checkpoint_cache.put(slug, note, ttl)
    return note


def checkpoint_cache_clear() -> None:
    _checkpoint_cache.clear()


def _b64(data: bytes | memoryview) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def entry_json(index: int, leaf: bytes, leaf_hash: bytes, redacted: bool) -> dict[str, Any]:
    """The wire form of one entry (DESIGN.md section 4): decoded fields plus the exact leaf."""
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
    result is identical to ``json.dumps(entry_json(...), separators=(",", ":"))``.
    """
    if redacted:
        return f'{{"index":{index},"op":"add","redacted":true,"leaf_hash":"{_b64(leaf_hash)}"}}'
    parts = leaf[:-1].decode("ascii").split(" ")
    if parts[0] == "add":
        quality = "null" if parts[3] == "-" else parts[3]
        origin = json.dumps(parts[5]) if len(parts) == 6 else "null"
        return (
            f'{{"index":{index},"op":"add","algorithm":"{parts[1]}","value":"{parts[2]}",'
            f'"quality":{quality},"timestamp":{parts[4]},"origin":{origin},'
            f'"leaf":"{_b64(leaf)}"}}'
        )
    return (
        f'{{"index":{index},"op":"remove","removes":{parts[1]},"reason":"{parts[2]}",'
        f'"timestamp":{parts[3]},"leaf":"{_b64(leaf)}"}}'
    )


@dataclass(frozen=True)
class FeedPage:
    checkpoint: str
    size: int
    entries: list[str]  # each entry as JSON text (entry_json_text)
    next: int | None

    def json_chunks(self, entries_per_chunk: int = 500) -> Iterator[bytes]:
        """The page as JSON in pieces: no multi-megabyte string is ever built."""
        next_ = "null" if self.next is None else str(self.next)
        yield f'{{"checkpoint":{json.dumps(self.checkpoint)},"entries":['.encode()
        for i in range(0, len(self.entries), entries_per_chunk):
            prefix = "," if i else ""
            yield (prefix + ",".join(self.entries[i : i + entries_per_chunk])).encode()
        yield f'],"next":{next_}}}'.encode()


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


def feed_page(*, hash_list: HashList, start: int, limit: int) -> FeedPage:
    """Entries [start, start+limit) with the newest checkpoint, which covers all of them.

    The list row is read first: every entry below its size committed with (or
    before) that checkpoint, so the page and the checkpoint agree.
    """
    head = HashList.objects.values("slug", "log_size", "tree_edge").get(pk=hash_list.pk)
    size = head["log_size"]
    if start > size:
        raise InvalidInput(
            f"start is past the end of the log (size {size}).", field="start", code="out_of_range"
        )
    end = min(start + limit, size)
    entries = entries_json_text(hash_list_id=hash_list.pk, start=start, end=end)
    return FeedPage(
        checkpoint=current_checkpoint(slug=head["slug"], size=size, tree_edge=head["tree_edge"]),
        size=size,
        entries=entries,
        next=end if end < size else None,
    )


def _size_arg(name: str, value: int, size: int) -> int:
    if value > size:
        raise InvalidInput(
            f"{name} is past the end of the log (size {size}).", field=name, code="out_of_range"
        )
    return value


def consistency_proof(*, hash_list: HashList, old: int, new: int | None) -> dict[str, Any]:
    size = HashList.objects.values_list("log_size", flat=True).get(pk=hash_list.pk)
    new = _size_arg("new", size if new is None else new, size)
    if old > new:
        raise InvalidInput("old must not be larger than new.", field="old", code="out_of_range")
    ids = tlog.consistency_proof_nodes(old, new)
    proof = tlog.consistency_proof(old, new, tree_nodes(hash_list.pk, ids))
    return {"old": old, "new": new, "proof": [_b64(p) for p in proof]}


def inclusion_proof(*, hash_list: HashList, index: int, size: int | None) -> dict[str, Any]:
    current = HashList.objects.values_list("log_size", flat=True).get(pk=hash_list.pk)
    size = _size_arg("size", current if size is None else size, current)
    if index >= size:
        raise InvalidInput("index must be below size.", field="index", code="out_of_range")
    ids = tlog.inclusion_proof_nodes(index, size)
    nodes = tree_nodes(hash_list.pk, [*ids, (0, index)])
    proof = tlog.inclusion_proof(index, size, nodes)
    return {
        "index": index,
        "size": size,
        "leaf_hash": _b64(nodes[(0, index)]),
        "proof": [_b64(p) for p in proof],
    }


# Positions per partner (the furthest it pulled or was pushed), then per hash:
# partners past its newest add, and partners that confirmed blocking it.
_PARTNER_COUNTS = """
    WITH positions AS (
        SELECT partner_id, max(position) AS position FROM (
            SELECT partner_id, last_fetch_position AS position
            FROM exchange_partnerliststate WHERE hash_list_id = %(list)s
            UNION ALL
            SELECT partner_id, acked_position FROM exchange_delivery WHERE hash_list_id = %(list)s
        ) AS known
        GROUP BY partner_id
    )
    SELECT ids.id,
        (SELECT count(*) FROM positions WHERE positions.position > (
            SELECT max(e."index") FROM hashbank_logentry e
            WHERE e.hash_id = ids.id AND e.hash_list_id = %(list)s AND e.op = 'add'
        )),
        (SELECT count(DISTINCT f.partner_id) FROM exchange_feedback f
            WHERE f.hash_id = ids.id AND f.outcome = %(blocked)s)
    FROM unnest(%(ids)s::bigint[]) AS ids(id)
"""


def hash_partner_counts(*, hash_list_id: int, hash_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per hash: (partners that received it, partners that confirmed blocking it).

    Counts only, never which partners. A partner received a hash when it pulled
    or was pushed past the hash's newest ``add`` entry. One statement on
    PostgreSQL (a victim's status check runs it), four queries elsewhere.
    """
    if not hash_ids:
        return {}
    if is_postgres():
        params = {
            "list": hash_list_id,
            "ids": list(hash_ids),
            "blocked": FeedbackOutcome.BLOCKED.value,
        }
        with server_cursor() as cursor:
            cursor.execute(_PARTNER_COUNTS, params)
            return {hash_id: (received, blocked) for hash_id, received, blocked in cursor}

    from django.db.models import Count, Max

    from exchange.models import Delivery, PartnerListState

    add_index = dict(
        LogEntry.objects.filter(hash_list_id=hash_list_id, hash_id__in=hash_ids, op=LogEntry.Op.ADD)
        .values("hash_id")
        .annotate(newest=Max("index"))
        .values_list("hash_id", "newest")
    )
    positions: dict[int, int] = {}
    for partner_id, position in [
        *PartnerListState.objects.filter(hash_list_id=hash_list_id).values_list(
            "partner_id", "last_fetch_position"
        ),
        *Delivery.objects.filter(hash_list_id=hash_list_id).values_list(
            "partner_id", "acked_position"
        ),
    ]:
        positions[partner_id] = max(position, positions.get(partner_id, 0))
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
