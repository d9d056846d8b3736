"""Rate limits that keep answering while the shared cache is down.

The counts live in Django's cache (Django's own Redis backend in production,
counted by django-ratelimit, unmodified). When Redis cannot be reached, a
victim must still be able to check or withdraw a case, so the limit falls back
to a count kept in this process alone, and says so in the log once per outage,
not once per request. While the cache is known to be down, requests don't wait
for it: it is tried again every ``RETRY_SHARED_S`` seconds.

With several processes, the fallback lets a client through up to the limit in
each of them: looser than the shared count, never unlimited.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django_ratelimit.core import _get_ip, _split_rate, is_ratelimited
from django_ratelimit.exceptions import Ratelimited
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What Django's Redis cache raises when Redis is down, unreachable or refusing
# writes (redis-py's errors pass through the backend unwrapped).
CACHE_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError)
RETRY_SHARED_S = 5.0
# Distinct (limit, client) counts kept at most; beyond it the oldest windows go first.
LOCAL_MAX_KEYS = 100_000

Key = str | Callable[[str, Any], str]
Rate = str | Callable[[str, Any], str]


class LocalCounts:
    """Fixed-window counts in this process, for when the shared cache is down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, int], int] = {}
        self._shared_down_until = 0.0  # monotonic time; 0 while the cache answers

    def hit(self, *, group: str, value: str, limit: int, period: int) -> bool:
        """Count one request; True if it is over the limit."""
        window = int(time.time()) // period
        key = (group, value, window)
        with self._lock:
            if len(self._counts) >= LOCAL_MAX_KEYS:
                for old in sorted(self._counts, key=lambda k: k[2])[: LOCAL_MAX_KEYS // 2]:
                    del self._counts[old]
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        return count > limit

    def shared_down(self) -> bool:
        return time.monotonic() < self._shared_down_until

    def mark_shared_down(self, exc: Exception) -> None:
        with self._lock:
            first = not self._shared_down_until
            self._shared_down_until = time.monotonic() + RETRY_SHARED_S
        if first:
            logger.warning(
                "rate limits: the cache is unavailable (%s); counting in this process "
                "until it answers again",
                type(exc).__name__,
            )

    def mark_shared_up(self) -> None:
        if not self._shared_down_until:
            return
        with self._lock:
            was_down, self._shared_down_until = bool(self._shared_down_until), 0.0
            self._counts.clear()
        if was_down:
            logger.warning("rate limits: the cache answers again; counting there")


local_counts = LocalCounts()


def _key_value(key: Key, group: str, request: Any) -> str:
    if callable(key):
        return key(group, request)
    if key == "ip":
        return str(_get_ip(request))  # django-ratelimit's own reading of the address
    raise ImproperlyConfigured(f"rate limit key must be 'ip' or a callable, got {key!r}")


def ratelimit(
    *, key: Key, rate: Rate, method: str = "POST", group: str | None = None, block: bool = True
) -> Any:
    """django-ratelimit's ``ratelimit``, falling back to ``local_counts``.

    Over the limit it raises ``Ratelimited`` (a 429 through ``webapi.errors``),
    or with ``block=False`` sets ``request.limited`` as django-ratelimit does.
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = group or f"{fn.__module__}.{fn.__qualname__}"

        @functools.wraps(fn)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            limited = request.method == method and _over_limit(request, name, key, rate)
            request.limited = limited or getattr(request, "limited", False)  # type: ignore[attr-defined]
            if limited and block:
                raise Ratelimited()
            return fn(request, *args, **kwargs)

        return wrapped

    return decorator


def _over_limit(request: Any, group: str, key: Key, rate: Rate) -> bool:
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return False
    value = _key_value(key, group, request)
    if not local_counts.shared_down():
        try:
            limited = is_ratelimited(
                request=request,
                group=group,
                key=lambda _group, _request: value,
                rate=rate,
                method=request.method,
                increment=True,
            )
        except CACHE_UNAVAILABLE as exc:
            local_counts.mark_shared_down(exc)
        else:
            local_counts.mark_shared_up()
            return bool(limited)
    limit, period = _split_rate(rate(group, request) if callable(rate) else rate)
    return local_counts.hit(group=group, value=value, limit=limit, period=period)
