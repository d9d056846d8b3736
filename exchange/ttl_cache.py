"""A small per-process memo with expiry, for the hot partner-facing lookups."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values kept for a given number of seconds; emptied when it outgrows ``max_size``.

    Thread-safe enough for gunicorn threads: each operation is a single dict
    operation, and a lost update only costs one more database read.
    """

    def __init__(self, max_size: int = 10_000) -> None:
        self._items: dict[K, tuple[float, V]] = {}
        self._max_size = max_size

    def get(self, key: K) -> V | None:
        hit = self._items.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._items) >= self._max_size:
            self._items.clear()
        self._items[key] = (time.monotonic() + ttl, value)

    def discard(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
