"""Syncs that succeed: full and incremental, paging, prefetch, crash recovery, key rotation."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

import pytest

from exchange.client.errors import ConfigError, TamperedEntry, UnknownKey
from exchange.client.state import STATE_FILE
from exchange.client.store import STORE_FILE
from exchange.client.sync import SyncConfig, sync
from tests.exchange.client.fake_bank import TOKEN, FakeBank, fill, signer
from tests.exchange.client.partner import (
    assert_synced,
    config,
    refused,
    saved_state,
    snapshot,
    store_rows,
)


def test_full_then_incremental_sync(bank: FakeBank, state_dir: Path, rng: random.Random) -> None:
    fill(bank.log, rng, 120, remove_every=9)
    r = sync(config(bank, state_dir, page_size=25))
    assert (r.previous_size, r.size, r.entries) == (0, 120, 120)
    assert r.root == bank.log.roots[120]
    assert_synced(bank, state_dir)
    assert r.added == len(store_rows(state_dir)) and r.removed == 0  # removed adds: redacted
    assert r.redacted > 0
    # Incremental: new adds, removes of adds the partner already has (not redacted for it).
    known = sorted(store_rows(state_dir))
    fill(bank.log, rng, 30)
    bank.log.remove(known[0], "disabled")
    bank.log.remove(known[5], "expired")
    r2 = sync(config(bank, state_dir, page_size=7))
    assert (r2.previous_size, r2.size, r2.entries) == (120, 152, 32)
    assert r2.removed == 2 and r2.added == 30
    assert_synced(bank, state_dir)
    rows = store_rows(state_dir)
    assert known[0] not in rows and known[5] not in rows
    # Nothing new: no change at all, not even the state file's bytes.
    before = snapshot(state_dir)
    r3 = sync(config(bank, state_dir, vkeys=()))
    assert (r3.entries, r3.added, r3.removed, r3.size) == (0, 0, 0, 152)
    assert snapshot(state_dir) == before


def test_first_sync_of_an_empty_list(bank: FakeBank, state_dir: Path, rng: random.Random) -> None:
    r = sync(config(bank, state_dir))
    assert r.size == 0 and saved_state(state_dir)["size"] == 0
    fill(bank.log, rng, 3)
    assert sync(config(bank, state_dir)).added == 3
    assert_synced(bank, state_dir)


def test_later_runs_need_only_the_state_dir(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 10)
    sync(config(bank, state_dir))
    fill(bank.log, rng, 5)
    r = sync(SyncConfig(state_dir=state_dir, token=TOKEN, backoff=0))
    assert r.size == 15
    assert_synced(bank, state_dir)


def test_redacted_add_whose_remove_comes_after_the_checkpoint(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 10)
    bank.log.remove(4)  # index 10: entry 4 is now served redacted
    bank.checkpoint_size = 10  # ...but the checkpoint does not include the remove yet
    r = sync(config(bank, state_dir))
    assert r.size == 10 and r.redacted == 1 and 4 not in store_rows(state_dir)
    conn = sqlite3.connect(state_dir / STORE_FILE)
    assert conn.execute("SELECT add_index FROM redacted").fetchall() == [(4,)]
    conn.close()
    bank.checkpoint_size = None
    r = sync(config(bank, state_dir))
    assert r.size == 11 and r.removed == 0  # the hash was never in the store
    conn = sqlite3.connect(state_dir / STORE_FILE)
    assert conn.execute("SELECT add_index FROM redacted").fetchall() == []
    conn.close()
    assert_synced(bank, state_dir)


def test_entries_past_the_checkpoint_are_left_for_the_next_run(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 30)
    bank.checkpoint_size = 20
    bank.ignore_limit = True  # pages run to the server's newest size, past the checkpoint
    r = sync(config(bank, state_dir, page_size=8))
    assert r.size == 20 and max(store_rows(state_dir)) < 20
    assert_synced(bank, state_dir, 20)
    bank.checkpoint_size = None
    assert sync(config(bank, state_dir, page_size=8)).size == 30
    assert_synced(bank, state_dir)


@pytest.mark.parametrize(
    ("page_size", "prefetch", "max_limit"),
    [
        (1, 2, 10_000),
        (3, 1, 10_000),
        (10_000, 2, 10_000),
        (7, 0, 10_000),
        (50, 2, 6),  # the server answers fewer entries than asked
    ],
)
def test_paging(
    bank: FakeBank,
    tmp_path: Path,
    rng: random.Random,
    page_size: int,
    prefetch: int,
    max_limit: int,
) -> None:
    fill(bank.log, rng, 61, remove_every=5)
    bank.max_limit = max_limit
    d = tmp_path / "s"
    sync(config(bank, d, page_size=page_size, prefetch=prefetch))
    assert_synced(bank, d)
    limits = [int(q["limit"]) for p, q in bank.requests if p.endswith("/entries")]
    assert max(limits) <= page_size
    starts = [int(q["start"]) for p, q in bank.requests if p.endswith("/entries")]
    assert starts == sorted(set(starts)) and starts[0] == 0


@pytest.mark.parametrize("prefetch", [0, 2])
def test_next_page_downloads_while_the_current_one_is_applied(
    bank: FakeBank, state_dir: Path, rng: random.Random, prefetch: int
) -> None:
    fill(bank.log, rng, 40)
    second_page_requested = threading.Event()

    def on_request(path: str, q: dict[str, str]) -> None:
        if path.endswith("/entries") and q.get("start") == "10":
            second_page_requested.set()

    bank.on_request = on_request
    fetched_ahead: list[bool] = []

    def on_page(start: int, count: int) -> None:
        if start == 0:  # the first page is being applied: has page 2 been requested?
            fetched_ahead.append(second_page_requested.wait(5 if prefetch else 0.3))

    r = sync(config(bank, state_dir, page_size=10, prefetch=prefetch), on_page=on_page)
    assert r.size == 40
    assert fetched_ahead == [bool(prefetch)]
    assert_synced(bank, state_dir)


def test_download_thread_stops_on_a_refusal(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 100)
    bank.field_override[15] = {"timestamp": 1}
    refused(TamperedEntry, bank, state_dir, page_size=5)
    assert not [t for t in threading.enumerate() if t.name == "hashbank-sync-download"]
    entry_requests = [q for p, q in bank.requests if p.endswith("/entries")]
    # Pages 0..15, at most 2 queued and 1 waiting to be queued: the download stopped.
    assert len(entry_requests) <= 7


def test_state_file_stays_small(bank: FakeBank, tmp_path: Path, rng: random.Random) -> None:
    sizes = {}
    for n in (1, 255, 1023, 1024):
        fill(bank.log, rng, n - bank.log.size)
        d = tmp_path / str(n)
        sync(config(bank, d))
        st = saved_state(d)
        assert len(st["edge"]["hashes"]) == n.bit_count()
        sizes[n] = (d / STATE_FILE).stat().st_size
        # O(log n): a fixed part (note, keys) plus one 44-char hash per set bit of the size.
        assert sizes[n] <= 1200 + 56 * n.bit_count()
        text = (d / STATE_FILE).read_text()
        assert not any(e["value"] in text for e in bank.log.json if "value" in e)
    assert sizes[1024] < sizes[1] + 64  # 1024 entries, one hash, like 1 entry
    assert sizes[1023] - sizes[255] <= 2 * 56 + 4


def test_interrupted_sync_is_recovered_from_the_store(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 20)
    sync(config(bank, state_dir))
    old_state = (state_dir / STATE_FILE).read_bytes()
    fill(bank.log, rng, 10)
    sync(config(bank, state_dir))
    # Simulate a crash after the store commit and before the state file replacement.
    (state_dir / STATE_FILE).write_bytes(old_state)
    fill(bank.log, rng, 5)
    r = sync(config(bank, state_dir))
    assert (r.previous_size, r.size) == (30, 35)
    assert_synced(bank, state_dir)


def test_store_missing_is_a_clear_error(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 5)
    sync(config(bank, state_dir))
    (state_dir / STORE_FILE).unlink()
    with pytest.raises(ConfigError, match=r"store .* missing"):
        sync(config(bank, state_dir))


def test_key_rotation(bank: FakeBank, state_dir: Path, rng: random.Random) -> None:
    old = bank.log.signers[0]
    fill(bank.log, rng, 5)
    sync(config(bank, state_dir))
    new = signer()
    bank.log.signers = [old, new]  # during a rotation checkpoints carry both signatures
    fill(bank.log, rng, 5)
    assert sync(config(bank, state_dir, vkeys=())).size == 10
    bank.log.signers = [new]
    fill(bank.log, rng, 5)
    refused(UnknownKey, bank, state_dir, vkeys=())
    with pytest.raises(ConfigError, match="--accept-new-vkey"):
        sync(config(bank, state_dir, vkeys=(new.vkey,)))
    r = sync(config(bank, state_dir, vkeys=(new.vkey,), accept_new_vkey=True))
    assert r.size == 15 and saved_state(state_dir)["vkeys"] == [new.vkey]
    assert_synced(bank, state_dir)
    # A key for another list is not accepted even with --accept-new-vkey.
    other = signer("bank.test/lists/minor")
    with pytest.raises(ConfigError):
        sync(config(bank, state_dir, vkeys=(other.vkey,), accept_new_vkey=True))
