"""Read-side of the pull feeds: a partner's lists, checkpoints, pages and proofs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from exchange.models import Partner
from exchange.selectors import entries_json_text, partner_lists
from exchange.ttl_cache import TtlCache
from hashbank import tlog
from hashbank.log import current_checkpoint, tree_nodes
from hashbank.models import HashList
from webapi.errors import InvalidInput, NotFound

MAX_PAGE = 10_000


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


def _b64(data: bytes | memoryview) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


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
