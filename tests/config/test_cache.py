"""config.cache: Django's Redis cache with one client per process and an atomic incr.

Runs against the Redis on this machine (database 3, emptied first); skipped
only when no Redis answers.
"""

from __future__ import annotations

import threading

import pytest
import redis

from config.cache import RedisCache

URL = "redis://127.0.0.1:6379/3"


@pytest.fixture
def cache() -> RedisCache:
    try:
        redis.Redis.from_url(URL).flushdb()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return RedisCache(URL, {})


def test_incr_counts_a_key_that_exists_and_refuses_one_that_does_not(cache):
    assert cache.add("k", 1, 60)
    assert cache.incr("k") == 2
    assert cache.incr("k", 5) == 7
    assert cache.get("k") == 7
    with pytest.raises(ValueError):
        cache.incr("missing")
    assert cache.get("missing") is None  # refusing did not create it


def test_incr_keeps_the_expiry_and_is_atomic_under_threads(cache):
    cache.add("hits", 0, 60)
    threads = [
        threading.Thread(target=lambda: [cache.incr("hits") for _ in range(50)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("hits") == 400
    assert 0 < redis.Redis.from_url(URL).ttl(cache.make_and_validate_key("hits")) <= 60


def test_one_client_serves_every_operation(cache):
    client = cache._cache.get_client(write=True)
    cache.set("a", "x")
    assert cache._cache.get_client() is client
    assert cache._cache.get_client("any", write=True) is client


def test_add_sets_only_a_missing_key_with_its_expiry_or_none(cache):
    raw = redis.Redis.from_url(URL)
    assert cache.add("a", {"n": 1}, 60) is True
    assert cache.add("a", {"n": 2}, 60) is False
    assert cache.get("a") == {"n": 1}
    assert 0 < raw.ttl(cache.make_and_validate_key("a")) <= 60
    assert cache.add("forever", 3, None) is True
    assert raw.ttl(cache.make_and_validate_key("forever")) == -1
    # Django's meaning of a zero timeout: stored and expired at once.
    assert cache.add("gone", 1, 0) is True
    assert cache.get("gone") is None


def test_incr_survives_a_server_that_forgot_the_script(cache):
    cache.add("k", 1, 60)
    assert cache.incr("k") == 2
    redis.Redis.from_url(URL).script_flush()
    assert cache.incr("k") == 3
