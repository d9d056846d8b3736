"""Tests for scripts/partner_sync.py (the ``hashbank-sync`` partner client).

No Django and no database: the feeds are real signed logs built with ``hashbank.tlog`` (real
Ed25519 keys, real leaves, RFC 6962 roots and proofs) and served by a small local HTTP server
(``FakeBank``) that implements the partner pull API from an in-memory log, with knobs to
misbehave. Run on their own with::

    .venv/bin/python -m pytest --noconftest -p no:django tests/scripts/test_partner_sync.py
"""

from __future__ import annotations

import base64
import http.server
import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from hashbank import tlog
from scripts import partner_sync as ps
from scripts.partner_sync import (
    BadRemove,
    BadSignature,
    ConfigError,
    Fork,
    LocalStore,
    MalformedResponse,
    MissingOrReorderedEntries,
    OriginMismatch,
    Rollback,
    RootMismatch,
    SyncConfig,
    SyncRefused,
    TamperedEntry,
    UnknownKey,
    main,
    sync,
)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "partner_sync.py"
SLUG = "adult"
ORIGIN = f"bank.test/lists/{SLUG}"
TOKEN = "partner-token-123"
T0 = 1_718_000_000


# ------------------------------------------------------------------ in-memory log + server


def signer(origin: str = ORIGIN) -> tlog.NoteSigner:
    return tlog.NoteSigner(origin, tlog.generate_private_key())


def random_pdq(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip_bits(value: str, n: int) -> str:
    """``value`` with its n lowest bits flipped (Hamming distance exactly n)."""
    return f"{int(value, 16) ^ ((1 << n) - 1):064x}"


class FakeLog:
    """An append-only log with every perfect-subtree node, root per size and served JSON."""

    def __init__(self, signers: list[tlog.NoteSigner], origin: str = ORIGIN) -> None:
        self.origin = origin
        self.signers = signers
        self.leaves: list[bytes] = []
        self.edge = tlog.RightEdge()
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.roots: list[bytes] = [tlog.EMPTY_ROOT]
        self.json: list[dict[str, Any]] = []
        self._notes: dict[tuple[int, tuple[bytes, ...]], str] = {}

    @property
    def size(self) -> int:
        return len(self.leaves)

    def append(self, leaf: bytes) -> int:
        """Append raw leaf bytes (no validation: tests also build bad logs)."""
        i = self.size
        lh = tlog.leaf_hash(leaf)
        for level, idx, h in self.edge.append(lh):
            self.nodes[(level, idx)] = h
        self.leaves.append(leaf)
        self.roots.append(self.edge.root())
        decoded = tlog.decode_leaf(leaf)
        entry: dict[str, Any] = {"index": i, "op": decoded.op}
        if decoded.op == "add":
            for k in ("algorithm", "value", "quality", "timestamp", "origin"):
                entry[k] = getattr(decoded, k)
        else:
            for k in ("removes", "reason", "timestamp"):
                entry[k] = getattr(decoded, k)
            j = decoded.removes
            if j is not None and j < i and self.json[j]["op"] == "add":
                # Redaction: the server stops serving the bytes of a removed add.
                self.json[j] = {
                    "index": j,
                    "op": "add",
                    "redacted": True,
                    "leaf_hash": base64.b64encode(tlog.leaf_hash(self.leaves[j])).decode(),
                }
        entry["leaf"] = base64.b64encode(leaf).decode()
        self.json.append(entry)
        return i

    def add(
        self,
        value: str,
        *,
        algorithm: str = "pdq",
        quality: int | None = 90,
        origin: str | None = None,
        ts: int | None = None,
    ) -> int:
        return self.append(
            tlog.encode_add(
                algorithm=algorithm,
                value=value,
                quality=quality if algorithm == "pdq" else None,
                timestamp=T0 + self.size if ts is None else ts,
                origin=origin,
            )
        )

    def remove(self, index: int, reason: str = "withdrawn") -> int:
        return self.append(tlog.encode_remove(index=index, reason=reason, timestamp=T0 + self.size))

    def note(self, size: int | None = None, signers: list[tlog.NoteSigner] | None = None) -> str:
        size = self.size if size is None else size
        signers = self.signers if signers is None else signers
        key = (size, tuple(s.key_id + s.public_key_bytes for s in signers))
        if key not in self._notes:
            text = tlog.format_checkpoint(origin=self.origin, size=size, root=self.roots[size])
            self._notes[key] = tlog.sign_note(text, signers)
        return self._notes[key]

    def expected_rows(self, size: int | None = None) -> dict[int, tuple[Any, ...]]:
        """What a partner's store must hold at ``size``: the adds not removed by then.

        Adds that are removed later (after ``size``) are served redacted, so a partner that
        fetched them after the removal never stores them.
        """
        size = self.size if size is None else size
        live: dict[int, tuple[Any, ...]] = {}
        for i, leaf in enumerate(self.leaves[:size]):
            d = tlog.decode_leaf(leaf)
            if d.op == "add":
                live[i] = (d.algorithm, d.value, d.quality, d.timestamp, d.origin)
            else:
                live.pop(d.removes, None)  # type: ignore[arg-type]
        return {i: v for i, v in live.items() if not self.json[i].get("redacted")}


def flip_signature(note: str) -> str:
    """The note with one bit of the (first) Ed25519 signature flipped."""
    cut = note.rfind("\n\n") + 2
    head, line = note[:cut], note[cut:].split("\n")[0]
    name, b64 = line[2:].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 0x01  # after the 4-byte key ID: inside the signature
    return f"{head}\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"


class FakeBank:
    """Serves a FakeLog over the partner pull API; public attributes are misbehaviour knobs."""

    def __init__(self, log: FakeLog) -> None:
        self.log = log
        self.token = TOKEN
        self.slug = SLUG
        self.url = ""
        self.checkpoint_size: int | None = None  # /checkpoint serves the note at this size
        self.checkpoint_body: str | None = None  # ... or exactly this text
        self.page_note: Callable[[int], str] | None = None  # page checkpoint by log size
        self.leaf_override: dict[int, bytes] = {}
        self.field_override: dict[int, dict[str, Any]] = {}
        self.page_hook: Callable[[int, list[dict[str, Any]]], list[dict[str, Any]]] | None = None
        self.next_hook: Callable[[int, Any], Any] | None = None
        self.proof_hook: Callable[[list[str]], list[str]] | None = None
        self.ignore_limit = False  # serve up to 10,000 entries whatever limit asks
        self.max_limit = 10_000
        self.fail_next: list[int] = []  # statuses to answer the next requests with
        self.delay_next: list[float] = []  # seconds to sleep before the next answers
        self.raw_entries_body: bytes | None = None
        self.on_request: Callable[[str, dict[str, str]], None] | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.auth_seen: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def vkey(self) -> str:
        return self.log.signers[0].vkey

    def render(self, i: int) -> dict[str, Any]:
        e = self.log.json[i]
        if i in self.leaf_override:
            e = {**e, "leaf": base64.b64encode(self.leaf_override[i]).decode()}
        if i in self.field_override:
            e = {**e, **self.field_override[i]}
        return e

    def handle(self, path: str, q: dict[str, str], auth: str | None) -> tuple[int, str, bytes]:
        with self.lock:
            self.requests.append((path, q))
            self.auth_seen.append((path, auth))
            status = self.fail_next.pop(0) if self.fail_next else None
            delay = self.delay_next.pop(0) if self.delay_next else 0.0
        if self.on_request is not None:
            self.on_request(path, q)
        if delay:
            time.sleep(delay)
        if status is not None:
            return status, "application/json", b'{"detail": "try later"}'
        log = self.log
        if path == "/exchange/v1/keys":
            keys = [
                {"list": self.slug, "origin": log.origin, "vkey": s.vkey, "status": "active"}
                for s in log.signers
            ]
            return 200, "application/json", json.dumps({"keys": keys}).encode()
        if auth != f"Bearer {self.token}":
            return 401, "application/json", b'{"detail": "invalid token"}'
        prefix = f"/exchange/v1/lists/{self.slug}/"
        if not path.startswith(prefix):
            return 404, "application/json", b'{"detail": "not found"}'
        tail = path[len(prefix) :]
        if tail == "checkpoint":
            body = self.checkpoint_body or log.note(self.checkpoint_size)
            return 200, "text/plain; charset=utf-8", body.encode()
        if tail == "entries":
            if self.raw_entries_body is not None:
                return 200, "application/json", self.raw_entries_body
            start, limit = int(q["start"]), int(q["limit"])
            if not 0 < limit <= 10_000 or start < 0:
                return 400, "application/json", b'{"detail": "bad limit"}'
            size = log.size
            n = 10_000 if self.ignore_limit else min(limit, self.max_limit)
            end = min(size, start + n)
            entries = [self.render(i) for i in range(start, end)]
            if self.page_hook is not None:
                entries = self.page_hook(start, entries)
            nxt: Any = None if end >= size else end
            if self.next_hook is not None:
                nxt = self.next_hook(start, nxt)
            note = self.page_note(size) if self.page_note else log.note(size)
            body = {"checkpoint": note, "entries": entries, "next": nxt}
            return 200, "application/json", json.dumps(body).encode()
        if tail.startswith("proof/"):
            if tail == "proof/consistency":
                old, new = int(q["old"]), int(q["new"])
                hashes = tlog.consistency_proof(old, new, log.nodes)
                body = {"old": old, "new": new}
            else:
                index, size = int(q["index"]), int(q["size"])
                hashes = tlog.inclusion_proof(index, size, log.nodes)
                lh = tlog.leaf_hash(log.leaves[index])
                body = {"index": index, "size": size, "leaf_hash": base64.b64encode(lh).decode()}
            proof = [base64.b64encode(h).decode() for h in hashes]
            body["proof"] = self.proof_hook(proof) if self.proof_hook else proof
            return 200, "application/json", json.dumps(body).encode()
        return 404, "application/json", b'{"detail": "not found"}'


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: _Server

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            status, ctype, body = self.server.bank.handle(
                parts.path, q, self.headers.get("Authorization")
            )
        except Exception as exc:  # a broken knob: answer 500 rather than hang
            status, ctype, body = 500, "text/plain", repr(exc).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    bank: FakeBank


def serve(bank: FakeBank) -> tuple[_Server, threading.Thread]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.bank = bank
    bank.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The local test server must be reached directly, whatever the environment says.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("HASHBANK_TOKEN", raising=False)


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.fixture
def bank() -> Iterator[FakeBank]:
    fake = FakeBank(FakeLog([signer()]))
    server, thread = serve(fake)
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def config(bank: FakeBank, state_dir: Path, **kw: Any) -> SyncConfig:
    defaults: dict[str, Any] = {
        "state_dir": state_dir,
        "token": TOKEN,
        "base_url": bank.url,
        "slug": SLUG,
        "vkeys": (bank.vkey,),
        "backoff": 0.0,
        "timeout": 5.0,
    }
    return SyncConfig(**{**defaults, **kw})


def fill(log: FakeLog, rng: random.Random, n: int, *, remove_every: int = 0) -> None:
    """n more entries: mostly PDQ adds, some md5 and federated adds, and some removes."""
    for _ in range(n):
        i = log.size
        live = []
        if remove_every and i % remove_every == remove_every - 1:
            live = [j for j, e in enumerate(log.json) if e["op"] == "add" and "leaf" in e]
        if live:
            log.remove(rng.choice(live), rng.choice(sorted(tlog.REMOVE_REASONS)))
        elif i % 7 == 3:
            log.add(f"{rng.getrandbits(128):032x}", algorithm="md5")
        elif i % 11 == 5:
            log.add(random_pdq(rng), quality=None, origin="peer.example.net/lists/adult")
        else:
            log.add(random_pdq(rng), quality=rng.randint(50, 100))


def store_rows(state_dir: Path) -> dict[int, tuple[Any, ...]]:
    conn = sqlite3.connect(state_dir / ps.STORE_FILE)
    try:
        return {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                "SELECT add_index, algorithm, value, quality, timestamp, origin FROM hashes"
            )
        }
    finally:
        conn.close()


def snapshot(state_dir: Path) -> dict[str, Any]:
    """Every file of the state dir (bytes) and every row of every store table."""
    if not state_dir.exists():
        return {"exists": False}
    files = {
        p.name: p.read_bytes()
        for p in sorted(state_dir.iterdir())
        if not p.name.endswith(("-wal", "-shm"))
    }
    rows: dict[str, list[Any]] = {}
    if (state_dir / ps.STORE_FILE).exists():
        conn = sqlite3.connect(state_dir / ps.STORE_FILE)
        try:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                rows[table] = sorted(conn.execute(f"SELECT * FROM {table}"))
        finally:
            conn.close()
    return {"exists": True, "files": files, "rows": rows}


def saved_state(state_dir: Path) -> dict[str, Any]:
    return json.loads((state_dir / ps.STATE_FILE).read_text())


def assert_synced(bank: FakeBank, state_dir: Path, size: int | None = None) -> None:
    """The store holds exactly the live adds of the log, and the state its checkpoint."""
    size = bank.log.size if size is None else size
    assert store_rows(state_dir) == bank.log.expected_rows(size)
    st = saved_state(state_dir)
    assert st["size"] == size
    assert base64.b64decode(st["root"]) == bank.log.roots[size]
    assert st["checkpoint"] == bank.log.note(size)


def refused(exc_type: type[SyncRefused], bank: FakeBank, state_dir: Path, **kw: Any) -> SyncRefused:
    """Run a sync that must be refused with exc_type, and leave every local byte unchanged."""
    before = snapshot(state_dir)
    with pytest.raises(exc_type) as info:
        sync(config(bank, state_dir, **kw))
    assert type(info.value) is exc_type, f"{type(info.value).__name__}: {info.value}"
    assert snapshot(state_dir) == before
    return info.value


# ------------------------------------------------------------------ happy paths


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
    conn = sqlite3.connect(state_dir / ps.STORE_FILE)
    assert conn.execute("SELECT add_index FROM redacted").fetchall() == [(4,)]
    conn.close()
    bank.checkpoint_size = None
    r = sync(config(bank, state_dir))
    assert r.size == 11 and r.removed == 0  # the hash was never in the store
    conn = sqlite3.connect(state_dir / ps.STORE_FILE)
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
        sizes[n] = (d / ps.STATE_FILE).stat().st_size
        # O(log n): a fixed part (note, keys) plus one 44-char hash per set bit of the size.
        assert sizes[n] <= 1200 + 56 * n.bit_count()
        text = (d / ps.STATE_FILE).read_text()
        assert not any(e["value"] in text for e in bank.log.json if "value" in e)
    assert sizes[1024] < sizes[1] + 64  # 1024 entries, one hash, like 1 entry
    assert sizes[1023] - sizes[255] <= 2 * 56 + 4


def test_interrupted_sync_is_recovered_from_the_store(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 20)
    sync(config(bank, state_dir))
    old_state = (state_dir / ps.STATE_FILE).read_bytes()
    fill(bank.log, rng, 10)
    sync(config(bank, state_dir))
    # Simulate a crash after the store commit and before the state file replacement.
    (state_dir / ps.STATE_FILE).write_bytes(old_state)
    fill(bank.log, rng, 5)
    r = sync(config(bank, state_dir))
    assert (r.previous_size, r.size) == (30, 35)
    assert_synced(bank, state_dir)


def test_store_missing_is_a_clear_error(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 5)
    sync(config(bank, state_dir))
    (state_dir / ps.STORE_FILE).unlink()
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


def test_retries_on_5xx_and_timeouts(bank: FakeBank, state_dir: Path, rng: random.Random) -> None:
    fill(bank.log, rng, 30)
    bank.fail_next = [503, 502]
    assert sync(config(bank, state_dir, retries=2)).size == 30
    fill(bank.log, rng, 5)
    bank.delay_next = [1.0]
    assert sync(config(bank, state_dir, timeout=0.3, retries=1)).size == 35
    fill(bank.log, rng, 5)
    bank.fail_next = [503, 503, 503]
    with pytest.raises(ps.ServerError, match="HTTP 503"):
        sync(config(bank, state_dir, retries=2))


def test_http_errors_are_explained(bank: FakeBank, state_dir: Path) -> None:
    with pytest.raises(ps.AuthError, match="check --token-file or HASHBANK_TOKEN"):
        sync(config(bank, state_dir, token="wrong"))
    other = signer("bank.test/lists/minor")
    with pytest.raises(ps.NotFound, match="'minor' is unknown or not granted"):
        sync(config(bank, state_dir, slug="minor", vkeys=(other.vkey,)))
    assert not state_dir.exists()


def test_plain_http_is_refused_unless_local_or_allowed() -> None:
    assert ps.normalize_base_url("https://bank.example.org/") == "https://bank.example.org"
    assert ps.normalize_base_url("http://127.0.0.1:8000/x/") == "http://127.0.0.1:8000/x"
    assert ps.normalize_base_url("https://b.org/exchange/v1") == "https://b.org"
    with pytest.raises(ConfigError, match="--allow-http"):
        ps.normalize_base_url("http://bank.example.org")
    assert ps.normalize_base_url("http://bank.example.org", allow_http=True)
    with pytest.raises(ConfigError):
        ps.normalize_base_url("ftp://bank.example.org")


# ------------------------------------------------------------------ refusals


@pytest.fixture
def synced(bank: FakeBank, state_dir: Path, rng: random.Random) -> FakeBank:
    """A partner synced to 40 entries; the server then has 25 more (adds and removes)."""
    fill(bank.log, rng, 40, remove_every=8)
    sync(config(bank, state_dir))
    fill(bank.log, rng, 20)
    for i in sorted(store_rows(state_dir))[:5]:
        bank.log.remove(i)
    return bank


def replace_value(leaf: bytes) -> bytes:
    parts = leaf.split(b" ")
    parts[2] = parts[2][:-1] + (b"0" if parts[2][-1:] != b"0" else b"1")
    return b" ".join(parts)


def first_plain_add(bank: FakeBank, start: int) -> int:
    return next(
        i
        for i in range(start, bank.log.size)
        if bank.log.json[i]["op"] == "add" and "leaf" in bank.log.json[i]
    )


def test_refuses_a_tampered_leaf_byte(synced: FakeBank, state_dir: Path) -> None:
    i = first_plain_add(synced, 45)
    synced.leaf_override[i] = replace_value(synced.log.leaves[i])
    exc = refused(TamperedEntry, synced, state_dir)
    assert exc.index == i and f"entry {i}" in str(exc) and "'value'" in str(exc)


def test_refuses_a_tampered_leaf_with_matching_json(synced: FakeBank, state_dir: Path) -> None:
    # The server changes the leaf and the JSON consistently: only the root catches it.
    i = first_plain_add(synced, 45)
    leaf = replace_value(synced.log.leaves[i])
    synced.leaf_override[i] = leaf
    synced.field_override[i] = {"value": tlog.decode_leaf(leaf).value}
    exc = refused(RootMismatch, synced, state_dir)
    assert "40..64" in str(exc)


def test_refuses_a_non_canonical_leaf(synced: FakeBank, state_dir: Path) -> None:
    i = first_plain_add(synced, 41)
    synced.leaf_override[i] = synced.log.leaves[i].replace(b"\n", b" \n")
    exc = refused(TamperedEntry, synced, state_dir)
    assert "not a canonical leaf" in str(exc)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("value", "0" * 64),
        ("quality", 12),
        ("timestamp", 5),
        ("origin", "evil.example/lists/adult"),
        ("algorithm", "md5"),
        ("op", "remove"),
        ("quality", None),
    ],
)
def test_refuses_json_fields_that_disagree_with_the_leaf(
    synced: FakeBank, state_dir: Path, field: str, bad: Any
) -> None:
    i = next(
        j
        for j in range(41, synced.log.size)
        if synced.log.json[j].get("algorithm") == "pdq" and synced.log.json[j].get("quality")
    )
    synced.field_override[i] = {field: bad}
    exc = refused(TamperedEntry, synced, state_dir)
    assert exc.index == i and field in str(exc)


def test_refuses_a_missing_json_field(synced: FakeBank, state_dir: Path) -> None:
    i = first_plain_add(synced, 41)
    synced.page_hook = lambda start, es: [
        {k: v for k, v in e.items() if not (e["index"] == i and k == "timestamp")} for e in es
    ]
    assert "missing" in str(refused(TamperedEntry, synced, state_dir))


def test_refuses_a_reordered_page(synced: FakeBank, state_dir: Path) -> None:
    def swap(start: int, es: list[dict[str, Any]]) -> list[dict[str, Any]]:
        es = list(es)
        es[3], es[4] = es[4], es[3]
        return es

    synced.page_hook = swap
    exc = refused(MissingOrReorderedEntries, synced, state_dir, page_size=10)
    assert "expected entry 43" in str(exc)


def test_refuses_a_missing_entry(synced: FakeBank, state_dir: Path) -> None:
    synced.page_hook = lambda start, es: [e for e in es if e["index"] != 47]
    synced.next_hook = lambda start, nxt: nxt if nxt is None else nxt - 1
    exc = refused(MissingOrReorderedEntries, synced, state_dir, page_size=10)
    assert "entry 47 is missing" in str(exc) and exc.index == 47


def test_refuses_a_page_whose_next_does_not_follow(synced: FakeBank, state_dir: Path) -> None:
    synced.page_hook = lambda start, es: [e for e in es if e["index"] != 47]
    exc = refused(MalformedResponse, synced, state_dir, page_size=10)
    assert "next" in str(exc)


def test_refuses_a_duplicated_entry(synced: FakeBank, state_dir: Path) -> None:
    synced.page_hook = lambda start, es: (es[:3] + es[2:])[: len(es)]
    exc = refused(MissingOrReorderedEntries, synced, state_dir, page_size=10)
    assert "duplicated" in str(exc) and exc.index == 43


def test_refuses_an_empty_page(synced: FakeBank, state_dir: Path) -> None:
    synced.page_hook = lambda start, es: [] if start >= 50 else es
    synced.next_hook = lambda start, nxt: None if start >= 50 else nxt
    refused(MissingOrReorderedEntries, synced, state_dir, page_size=10)


def test_refuses_an_unknown_key(synced: FakeBank, state_dir: Path) -> None:
    synced.log.signers = [signer()]
    exc = refused(UnknownKey, synced, state_dir, vkeys=())  # the key pinned in the state
    assert "--accept-new-vkey" in str(exc)


def test_refuses_an_unknown_key_at_the_first_sync(bank: FakeBank, state_dir: Path) -> None:
    refused(UnknownKey, bank, state_dir, vkeys=(signer().vkey,))
    assert not state_dir.exists()


def test_refuses_a_bad_signature(synced: FakeBank, state_dir: Path) -> None:
    synced.checkpoint_body = flip_signature(synced.log.note())
    exc = refused(BadSignature, synced, state_dir)
    assert "invalid signature" in str(exc)


def test_refuses_a_bad_signature_at_the_first_sync(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 10)
    bank.checkpoint_body = flip_signature(bank.log.note())
    refused(BadSignature, bank, state_dir)
    assert not state_dir.exists()


def test_refuses_a_badly_signed_page_checkpoint(synced: FakeBank, state_dir: Path) -> None:
    synced.page_note = lambda size: flip_signature(synced.log.note(size))
    refused(BadSignature, synced, state_dir)


def test_refuses_a_checkpoint_of_another_origin(synced: FakeBank, state_dir: Path) -> None:
    # Signed by the pinned key, but for another log.
    text = tlog.format_checkpoint(
        origin="bank.test/lists/minor", size=synced.log.size, root=synced.log.roots[-1]
    )
    synced.checkpoint_body = tlog.sign_note(text, synced.log.signers)
    refused(OriginMismatch, synced, state_dir)


def test_refuses_a_rollback(synced: FakeBank, state_dir: Path) -> None:
    synced.checkpoint_size = 30  # a genuine, older signed checkpoint
    exc = refused(Rollback, synced, state_dir)
    assert "30" in str(exc) and "40" in str(exc)


def test_refuses_a_fork_of_the_same_size(
    synced: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    forked = FakeLog(synced.log.signers)
    fill(forked, rng, 40)
    synced.log = forked
    refused(Fork, synced, state_dir)


def test_refuses_a_fork_of_a_larger_size(
    synced: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    # History rewritten: entry 6 of the first 40 changed, then more entries.
    forked = FakeLog(synced.log.signers)
    for i, leaf in enumerate(synced.log.leaves[:40]):
        forked.append(replace_value(leaf) if i == 6 else leaf)  # entry 6 is an add
    fill(forked, rng, 10)
    synced.log = forked
    synced.requests.clear()
    exc = refused(Fork, synced, state_dir)
    assert "not an extension" in str(exc)
    assert not [p for p, _ in synced.requests if p.endswith("/entries")]  # refused before


def test_refuses_a_forged_consistency_proof(synced: FakeBank, state_dir: Path) -> None:
    synced.proof_hook = lambda proof: [base64.b64encode(b"\x00" * 32).decode(), *proof[1:]]
    refused(Fork, synced, state_dir)


def test_refuses_a_page_checkpoint_of_the_same_size_with_another_root(
    synced: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    forked = FakeLog(synced.log.signers)
    fill(forked, rng, synced.log.size)
    synced.page_note = lambda size: forked.note(size)
    refused(Fork, synced, state_dir)


def test_refuses_a_wrong_redacted_leaf_hash(
    synced: FakeBank, state_dir: Path, tmp_path: Path
) -> None:
    # A fresh partner receives the removed adds redacted; one leaf_hash is wrong.
    bad = base64.b64encode(b"\x01" * 32).decode()
    i = next(j for j, e in enumerate(synced.log.json) if e.get("redacted"))
    synced.field_override[i] = {"leaf_hash": bad}
    refused(RootMismatch, synced, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    # The partner synced to 40 receives a new add redacted (removed at once): wrong hash.
    j = synced.log.add("ab" * 32)
    synced.log.remove(j)
    synced.field_override[j] = {"leaf_hash": bad}
    refused(RootMismatch, synced, state_dir)


def test_refuses_a_redacted_entry_that_is_not_an_add(synced: FakeBank, state_dir: Path) -> None:
    i = next(j for j in range(40, synced.log.size) if synced.log.json[j]["op"] == "remove")
    lh = base64.b64encode(tlog.leaf_hash(synced.log.leaves[i])).decode()
    synced.page_hook = lambda start, es: [
        {"index": i, "op": "remove", "redacted": True, "leaf_hash": lh} if e["index"] == i else e
        for e in es
    ]
    refused(TamperedEntry, synced, state_dir)


@pytest.mark.parametrize(
    "case", ["names a remove", "names itself", "names a later entry", "removes twice"]
)
def test_refuses_a_remove_that_names_no_published_add(
    bank: FakeBank, state_dir: Path, rng: random.Random, case: str
) -> None:
    fill(bank.log, rng, 10)
    bank.log.remove(2)  # index 10
    sync(config(bank, state_dir))
    fill(bank.log, rng, 3)  # 11..13
    i = bank.log.size
    target = {
        "names a remove": 10,
        "names itself": i,
        "names a later entry": i + 5,
        "removes twice": 2,
    }[case]
    bank.log.append(tlog.encode_remove(index=target, reason="withdrawn", timestamp=T0))
    exc = refused(BadRemove, bank, state_dir)
    assert exc.index == i and f"entry {i} removes entry {target}" in str(exc)
    assert isinstance(exc, TamperedEntry)


def test_refuses_malformed_answers(synced: FakeBank, state_dir: Path) -> None:
    synced.raw_entries_body = b"<html>proxy error</html>"
    assert "not JSON" in str(refused(MalformedResponse, synced, state_dir))
    synced.raw_entries_body = b'{"entries": "nope", "checkpoint": "x", "next": null}'
    refused(MalformedResponse, synced, state_dir)
    synced.raw_entries_body = None
    synced.checkpoint_body = "not a signed note\n"
    refused(BadSignature, synced, state_dir)
    synced.checkpoint_body = None
    synced.page_hook = lambda start, es: [{**e, "leaf": "%%%"} for e in es]
    refused(MalformedResponse, synced, state_dir)
    synced.page_hook = lambda start, es: [{**e, "index": str(e["index"])} for e in es]
    refused(MissingOrReorderedEntries, synced, state_dir)


# ------------------------------------------------------------------ queries


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
        assert store.pdq_matches(q) == [(q, 0), (d1, 1), (d31, 31)]
        assert store.pdq_matches(q, max_distance=32) == [(q, 0), (d1, 1), (d31, 31), (d32, 32)]
        assert store.pdq_matches(q, 0) == [(q, 0)]
        assert store.pdq_matches(q.upper(), 256)[-1] == (far, 256)
        assert store.pdq_matches(flip_bits(far, 2), 2) == [(far, 2)]
        with pytest.raises(ConfigError):
            store.pdq_matches(q[:-1])
        with pytest.raises(ConfigError):
            store.pdq_matches(q, 257)


def test_pdq_cache_is_rebuilt_when_the_store_changes(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    q = random_pdq(rng)
    bank.log.add(flip_bits(q, 3))
    sync(config(bank, state_dir))
    with LocalStore(state_dir) as store:
        assert store.pdq_matches(q) == [(flip_bits(q, 3), 3)]
    caches = list(state_dir.glob("pdq-*.npy"))
    assert len(caches) == 1 and caches[0].name.startswith("pdq-1-")
    bank.log.add(flip_bits(q, 2))
    bank.log.remove(0)
    assert main(["sync", "--state-dir", str(state_dir), "--token", TOKEN]) == 0
    caches = list(state_dir.glob("pdq-*.npy"))  # refreshed by the CLI sync, old one deleted
    assert [c.name[:6] for c in caches] == ["pdq-3-"]
    with LocalStore(state_dir) as store:
        assert store.pdq_matches(q) == [(flip_bits(q, 2), 2)]


def test_pdq_cache_built_in_chunks(
    bank: FakeBank, state_dir: Path, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = sorted({random_pdq(rng) for _ in range(9)})
    for v in (*values, values[3], values[4]):  # duplicates are reported once
        bank.log.add(v)
    sync(config(bank, state_dir))
    monkeypatch.setattr(LocalStore, "CACHE_CHUNK", 2)
    monkeypatch.setattr(LocalStore, "MATCH_CHUNK", 4)
    with LocalStore(state_dir) as store:
        arr = store.pdq_array()
        assert arr.shape == (9, 4)
        assert sorted(store.pdq_matches(values[0], 256)) == sorted(
            (v, bin(int(v, 16) ^ int(values[0], 16)).count("1")) for v in values
        )


def test_corrupt_state_is_a_local_error(
    bank: FakeBank, state_dir: Path, rng: random.Random, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(bank.log, rng, 5)
    sync(config(bank, state_dir))
    st = saved_state(state_dir)
    st["size"] = 4
    (state_dir / ps.STATE_FILE).write_text(json.dumps(st))
    code, _, err = run(capsys, "sync", "--state-dir", str(state_dir), "--token", TOKEN)
    assert code == 2 and "state directory" in err
    with pytest.raises(ConfigError, match="page size"):
        sync(config(bank, state_dir, page_size=10_001))


def test_queries_need_a_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `hashbank-sync sync` first"):
        LocalStore(tmp_path)


# ------------------------------------------------------------------ command line


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_end_to_end(
    bank: FakeBank,
    state_dir: Path,
    rng: random.Random,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(bank.log, rng, 50, remove_every=6)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    base = ["--state-dir", str(state_dir)]
    code, out, err = run(
        capsys,
        "sync",
        *base,
        "--base-url",
        bank.url,
        "--list",
        SLUG,
        "--vkey",
        bank.vkey,
        "--token-file",
        str(token_file),
        "--json",
        "--page-size",
        "16",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary) == {"list", "size", "added", "removed", "seconds", "entries_per_s"}
    assert summary["list"] == SLUG and summary["size"] == 50
    assert summary["added"] == len(store_rows(state_dir))
    assert "warning" not in err and "\r" not in err  # no progress bar: not a terminal

    # Token from the environment, no command word (sync is the default), human output.
    fill(bank.log, rng, 5)
    monkeypatch.setenv("HASHBANK_TOKEN", TOKEN)
    code, out, err = run(capsys, *base)
    assert code == 0 and "verified checkpoint 55" in out and "5 hashes added" in out
    code, out, err = run(capsys, *base)
    assert code == 0 and "up to date at size 55" in out
    monkeypatch.delenv("HASHBANK_TOKEN")

    # check: exit 0 / 1 and JSON.
    value = next(v[1] for v in store_rows(state_dir).values() if v[0] == "pdq")
    code, out, _ = run(capsys, "check", *base, "--algorithm", "pdq", "--value", value.upper())
    assert code == 0
    answer = json.loads(out)
    assert answer["present"] is True and answer["value"] == value and answer["list"] == SLUG
    code, out, _ = run(capsys, "check", *base, "--algorithm", "pdq", "--value", "0" * 64)
    assert code == 1 and json.loads(out)["present"] is False
    code, _, err = run(capsys, "check", *base, "--algorithm", "pdq", "--value", "0" * 63)
    assert code == 2 and "64" in err

    # match: exit 0 with matches, 1 without.
    code, out, _ = run(capsys, "match", *base, "--pdq", flip_bits(value, 31))
    assert code == 0
    assert json.loads(out)["matches"][0] == {"value": value, "distance": 31}
    code, out, _ = run(capsys, "match", *base, "--pdq", flip_bits(value, 40), "--distance", "5")
    assert code == 1 and json.loads(out)["matches"] == []

    # Refusal: exit 3, a clear message, a JSON error, nothing changed.
    fill(bank.log, rng, 5)
    before = snapshot(state_dir)
    bank.checkpoint_size = 10
    code, out, err = run(capsys, *base, "--token", TOKEN, "--json")
    assert code == 3
    assert "warning: --token is visible" in err
    assert "REFUSED (Rollback)" in err and "nothing was changed" in err
    assert json.loads(out)["refused"] == "Rollback"
    assert snapshot(state_dir) == before

    # Other errors: 401 (exit 4), a different vkey (exit 2), no token (exit 2).
    bank.checkpoint_size = None
    code, _, err = run(capsys, *base, "--token", "wrong")
    assert code == 4 and "check --token-file or HASHBANK_TOKEN" in err
    code, _, err = run(capsys, *base, "--token", TOKEN, "--vkey", signer().vkey)
    assert code == 2 and "--accept-new-vkey" in err
    code, _, err = run(capsys, *base)
    assert code == 2 and "HASHBANK_TOKEN" in err
    assert snapshot(state_dir) == before


def test_cli_keys(bank: FakeBank, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "keys", "--base-url", bank.url, "--json")
    assert code == 0 and json.loads(out)["keys"][0]["vkey"] == bank.vkey
    assert "out of band" in err
    assert all(p == "/exchange/v1/keys" for p, _ in bank.requests)


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "--help")[0] == 0
    assert run(capsys, "check", "--state-dir", str(tmp_path))[0] == 2
    code, _, err = run(
        capsys,
        "sync",
        "--state-dir",
        str(tmp_path / "s"),
        "--token",
        "t",
        "--base-url",
        "https://bank.example.org",
    )
    assert code == 2 and "--vkey" in err
    code, _, err = run(
        capsys, "check", "--state-dir", str(tmp_path), "--algorithm", "md5", "--value", "0" * 32
    )
    assert code == 2 and "run `hashbank-sync sync` first" in err


def test_script_runs_directly_without_django() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=str(REPO / "scripts"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "sync" in proc.stdout and "check" in proc.stdout and "match" in proc.stdout
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import scripts.partner_sync; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(REPO)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == "[]"


def test_keys_endpoint_is_not_sent_the_token(bank: FakeBank) -> None:
    with ps.BankClient(bank.url, TOKEN) as client:
        assert client.keys()[0]["origin"] == ORIGIN
    assert bank.auth_seen == [("/exchange/v1/keys", None)]


def test_inclusion_proofs_from_the_client(bank: FakeBank, rng: random.Random) -> None:
    fill(bank.log, rng, 13)
    with ps.BankClient(bank.url, TOKEN) as client:
        lh, proof = client.inclusion(SLUG, 5, 13)
    tlog.verify_inclusion(leaf_hash=lh, index=5, size=13, proof=proof, root=bank.log.roots[13])


def test_network_failure_is_a_server_error(tmp_path: Path) -> None:
    with requests.Session() as session:
        client = ps.BankClient(
            "http://127.0.0.1:9", TOKEN, retries=1, backoff=0, timeout=1, session=session
        )
        with pytest.raises(ps.ServerError, match="after 2 attempt"):
            client.checkpoint(SLUG)
