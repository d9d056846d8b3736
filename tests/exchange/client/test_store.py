"""Queries on a synced store: exact lookups and PDQ near-matches (with their cache)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from exchange.client import matching
from exchange.client import sync as sync_module
from exchange.client.errors import ConfigError
from exchange.client.matching import pdq_array, pdq_matches
from exchange.client.store import STORE_FILE, LocalStore
from exchange.client.sync import sync
from hashbank import tlog
from scripts.partner_sync import main
from tests.exchange.client.fake_bank import SLUG, TOKEN, FakeBank, fill, flip_bits, random_pdq
from tests.exchange.client.partner import config


def test_check_and_contains(bank: FakeBank, state_dir: Path, rng: random.Random) -> None:
    fill(bank.log, rng, 30)
    pdq_value = bank.log.json[0]["value"]
    md5_value = bank.log.json[3]["value"]
    bank.log.remove(1)
    removed_value = tlog.decode_leaf(bank.log.leaves[1]).value
    sync(config(bank, state_dir))
    with LocalStore(state_dir) as store:
        assert store.contains("pdq", pdq_value)
        assert store.contains("PDQ", pdq_value.upper())
        assert store.contains("md5", md5_value)
        assert not store.contains("md5", pdq_value[:32])
        assert not store.contains("pdq", removed_value)
        assert store.slug == SLUG and store.size == 31
        with pytest.raises(ConfigError):
            store.contains("pdq", "xyz")


def test_pdq_matches_distance_edges(bank: FakeBank, state_dir: Path, rng: random.Random) -> None:
    q = random_pdq(rng)
    d31, d32, d1 = flip_bits(q, 31), flip_bits(q, 32), flip_bits(q, 1)
    far = f"{int(q, 16) ^ ((1 << 256) - 1):064x}"  # all 256 bits differ
    for v in (d32, q, d31, far, d1, q):  # q published twice: reported once
        bank.log.add(v)
    bank.log.add(q[:32], algorithm="md5")
    sync(config(bank, state_dir))
    with LocalStore(state_dir) as store:
        assert pdq_matches(store, q) == [(q, 0), (d1, 1), (d31, 31)]
        assert pdq_matches(store, q, max_distance=32) == [(q, 0), (d1, 1), (d31, 31), (d32, 32)]
        assert pdq_matches(store, q, 0) == [(q, 0)]
        assert pdq_matches(store, q.upper(), 256)[-1] == (far, 256)
        assert pdq_matches(store, flip_bits(far, 2), 2) == [(far, 2)]
        with pytest.raises(ConfigError):
            pdq_matches(store, q[:-1])
        with pytest.raises(ConfigError):
            pdq_matches(store, q, 257)


def test_pdq_cache_is_rebuilt_when_the_store_changes(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    q = random_pdq(rng)
    bank.log.add(flip_bits(q, 3))
    sync(config(bank, state_dir))
    with LocalStore(state_dir) as store:
        assert pdq_matches(store, q) == [(flip_bits(q, 3), 3)]
    caches = list(state_dir.glob("pdq-*.npy"))
    assert len(caches) == 1 and caches[0].name.startswith("pdq-1-")
    bank.log.add(flip_bits(q, 2))
    bank.log.remove(0)
    assert main(["sync", "--state-dir", str(state_dir), "--token", TOKEN]) == 0
    caches = list(state_dir.glob("pdq-*.npy"))  # refreshed by the CLI sync, old one deleted
    assert [c.name[:6] for c in caches] == ["pdq-3-"]
    with LocalStore(state_dir) as store:
        assert pdq_matches(store, q) == [(flip_bits(q, 2), 2)]


def test_pdq_cache_built_in_chunks(
    bank: FakeBank, state_dir: Path, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = sorted({random_pdq(rng) for _ in range(9)})
    for v in (*values, values[3], values[4]):  # duplicates are reported once
        bank.log.add(v)
    sync(config(bank, state_dir))
    monkeypatch.setattr(matching, "CACHE_CHUNK", 2)
    with LocalStore(state_dir) as store:
        arr = pdq_array(store)
        assert arr.shape == (9, 4)
        assert sorted(pdq_matches(store, values[0], 256)) == sorted(
            (v, bin(int(v, 16) ^ int(values[0], 16)).count("1")) for v in values
        )


def test_a_large_sync_rebuilds_the_lookup_index_beside_the_pdq_cache(
    bank: FakeBank, state_dir: Path, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(bank.log, rng, 40)
    bank.log.add(bank.log.json[0]["value"])  # a duplicate value is cached once
    monkeypatch.setattr(sync_module, "REBUILD_INDEX_MIN_ENTRIES", 10)
    sync(config(bank, state_dir, pdq_cache=True))
    with LocalStore(state_dir) as store:
        indexes = [n for (n,) in store.conn.execute("SELECT name FROM sqlite_master")]
        assert "hashes_algorithm_value" in indexes
        pdq_values = sorted({e["value"] for e in bank.log.json if e.get("algorithm") == "pdq"})
        arr = pdq_array(store)
        assert ["".join(f"{int(w):016x}" for w in row) for row in arr] == pdq_values
    assert len(list(state_dir.glob("pdq-41-*.npy"))) == 1
    assert len(list(state_dir.glob("pdq-41-*.index"))) == 1


def test_the_sync_that_creates_the_store_leaves_it_in_wal_mode(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 5)
    sync(config(bank, state_dir))  # written through a rollback journal, then switched
    conn = sqlite3.connect(state_dir / STORE_FILE)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
    assert not (state_dir / f"{STORE_FILE}-journal").exists()


def test_queries_need_a_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `hashbank-sync sync` first"):
        LocalStore(tmp_path)
