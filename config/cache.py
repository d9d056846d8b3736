"""Django's Redis cache, with one client per process and a one-round-trip ``incr``;
and the counter cache rate limits use, one round trip per request.

Rate limits (django-ratelimit) touch the cache on every request to the case
API. Django's client builds a new ``redis.Redis`` object for every operation
(hundreds of dict writes each) and does ``incr`` as two round trips (EXISTS,
then INCRBY), which also lets a key expire between the two. Here the client is
built once per connection pool, and ``incr`` is one atomic script.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends import redis as django_redis
from redis import exceptions as redis_exceptions

# Increment only a key that exists, as Django's contract says, in one step.
_INCR_IF_EXISTS = """
if redis.call('exists', KEYS[1]) == 1 then
    return redis.call('incrby', KEYS[1], ARGV[1])
end
return false
"""


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._scripts: dict[tuple[int, str], Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(
                    self._servers[index], **self._pool_options
                )
            # redis.Redis is safe to share between threads: each command takes
            # a connection from the pool.
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client

    # Rate limiting calls add, then incr, on every request to the case API:
    # both go straight to execute_command, skipping redis-py's per-command
    # argument handling and script wrapper (a fifth of their Python).

    def add(self, key: Any, value: Any, timeout: int | None) -> bool:
        if timeout == 0:  # Django's meaning: set and expire at once
            return bool(super().add(key, value, timeout))
        client = self.get_client(key, write=True)
        args = ["SET", key, self._serializer.dumps(value), "NX"]
        if timeout is not None:
            args += ["EX", int(timeout)]
        return bool(client.execute_command(*args))

    def _run_script(self, source: str, key: Any, *args: Any) -> Any:
        """Run a Lua script on one key: EVALSHA straight away, loading it only when
        the server does not know it (a restart or a flush)."""
        client = self.get_client(key, write=True)
        script = self._scripts.get((id(client), source))
        if script is None:
            script = self._scripts[(id(client), source)] = client.register_script(source)
        try:
            return client.execute_command("EVALSHA", script.sha, 1, key, *args)
        except redis_exceptions.NoScriptError:
            return script(keys=[key], args=list(args))

    def incr(self, key: Any, delta: int) -> int:
        value = self._run_script(_INCR_IF_EXISTS, key, delta)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(value)


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


# Count one hit: create the counter with its expiry, or add to it, in one step.
_COUNT = """
local n = redis.call('incrby', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then
    redis.call('expire', KEYS[1], ARGV[2])
end
return n
"""


class RateLimitCacheClient(RedisCacheClient):
    """Counters for django-ratelimit, one round trip per hit.

    django-ratelimit counts a hit as ``add(key, 1, period)`` and, when the key
    exists already, ``incr(key)``: two round trips, and a counter that expires
    between them fails the request closed. Here ``add`` counts the hit itself,
    creating the counter with its expiry or adding to it, in one atomic script;
    when it added to an existing counter it returns False, as ``add`` must, and
    the ``incr`` that follows in the same thread returns that count without
    asking Redis again. So ``add`` on an existing key changes it: this client
    is for the rate-limit cache alone (``RATELIMIT_USE_CACHE``), where every
    ``add`` is a hit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counted = threading.local()

    def add(self, key: Any, value: Any, timeout: int | None) -> bool:
        if type(value) is not int or value < 1 or not timeout or timeout < 0:
            # Not a hit (django-ratelimit peeks with 0): Django's own meaning.
            return super().add(key, value, timeout)
        count = self._run_script(_COUNT, key, value, int(timeout))
        if int(count) == value:
            return True
        self._counted.last = (key, int(count))
        return False

    def incr(self, key: Any, delta: int) -> int:
        last = getattr(self._counted, "last", None)
        self._counted.last = None
        if last is not None and last[0] == key and delta == 1:
            return last[1]
        return super().incr(key, delta)


class RateLimitCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RateLimitCacheClient
