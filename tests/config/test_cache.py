"""config.cache: Django's Redis cache with one client per process and an atomic incr.

Runs against the Redis on this machine (database 3, emptied first); skipped
only when no Redis answers.
"""

from __future__ import annotations

import threading

import pytest
import redis

from config.cache import RateLimitCache, RedisCache

URL = "redis://127.0.0.1:6379/3"


def empty_redis() -> None:
    try:
        redis.Redis.from_url(URL).flushdb()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")


@pytest.fixture
def cache() -> RedisCache:
    empty_redis()
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


@pytest.fixture
def counters() -> RateLimitCache:
    empty_redis()
    return RateLimitCache(URL, {})


def commands_sent(cache: RedisCache) -> list[tuple]:
    """Record every command the cache's client sends from now on."""
    client = cache._cache.get_client(write=True)
    sent: list[tuple] = []
    execute = client.execute_command

    def record(*args, **kwargs):
        sent.append(args)
        return execute(*args, **kwargs)

    client.execute_command = record
    return sent


def test_a_hit_is_counted_in_one_round_trip_with_the_expiry_set_once(counters):
    raw = redis.Redis.from_url(URL)
    counters.add("warm-up", 1, 60)  # the first ever loads the script
    sent = commands_sent(counters)
    assert counters.add("ip", 1, 60) is True
    assert len(sent) == 1
    raw.expire(counters.make_and_validate_key("ip"), 30)  # later hits leave the expiry alone
    for expected in (2, 3, 4):
        assert counters.add("ip", 1, 60) is False
        assert counters.incr("ip") == expected  # answered from the add, no second trip
    assert len(sent) == 4
    assert counters.get("ip") == 4
    assert 0 < raw.ttl(counters.make_and_validate_key("ip")) <= 30


def test_a_counter_that_expired_starts_again_with_its_expiry(counters):
    counters.add("ip", 1, 60)
    counters.delete("ip")
    assert counters.add("ip", 1, 60) is True
    assert 0 < redis.Redis.from_url(URL).ttl(counters.make_and_validate_key("ip")) <= 60


def test_other_values_keep_djangos_meaning_of_add_and_incr(counters):
    assert counters.add("peek", 0, 60) is True
    assert counters.add("peek", 0, 60) is False
    assert counters.get("peek") == 0
    assert counters.add("doc", {"a": 1}, 60) is True
    assert counters.add("doc", {"a": 2}, 60) is False and counters.get("doc") == {"a": 1}
    counters.add("n", 1, 60)
    assert counters.incr("n", 5) == 6  # a real increment, not a remembered count
    with pytest.raises(ValueError):
        counters.incr("missing")


def test_counting_survives_a_server_that_forgot_the_script(counters):
    counters.add("ip", 1, 60)
    redis.Redis.from_url(URL).script_flush()
    assert counters.add("ip", 1, 60) is False and counters.incr("ip") == 2


def test_django_ratelimit_counts_every_hit_once_under_threads(counters, settings):
    from django.core.cache import caches
    from django.test import RequestFactory
    from django_ratelimit.core import get_usage

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "ratelimit": {"BACKEND": "config.cache.RateLimitCache", "LOCATION": URL},
    }
    settings.RATELIMIT_USE_CACHE = "ratelimit"
    caches["ratelimit"].clear()
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.7")
    seen: list[int] = []

    def hits() -> None:
        for _ in range(50):
            usage = get_usage(request, group="g", key="ip", rate="300/h", increment=True)
            seen.append(usage["count"])

    threads = [threading.Thread(target=hits) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 401))
    over = get_usage(request, group="g", key="ip", rate="300/h", increment=True)
    assert over["count"] == 401 and over["should_limit"]
