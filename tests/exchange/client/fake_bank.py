"""A bank for the partner client's tests: a real signed log over a small local HTTP server.

The feeds are real signed logs built with ``hashbank.tlog`` (real Ed25519 keys, real leaves,
RFC 6962 roots and proofs), served by ``FakeBank``, which implements the partner pull API
from an in-memory log, with knobs to misbehave. No Django, no database: the federation tests
use it as a peer bank too.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hashbank import tlog

SLUG = "adult"

ORIGIN = f"bank.test/lists/{SLUG}"

TOKEN = "partner-token-123"

T0 = 1_718_000_000


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
            entry["salt"] = base64.b64encode(decoded.salt or b"").decode()
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
                salt=secrets.token_bytes(tlog.SALT_SIZE),
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
        self.fail_headers: dict[str, str] = {}  # sent with every error answer
        self.cut_next = 0  # the next answers stop halfway through their body
        self.delay_next: list[float] = []  # seconds to sleep before the next answers
        self.raw_entries_body: bytes | None = None
        self.on_request: Callable[[str, dict[str, str]], None] | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.request_times: list[float] = []  # time.monotonic() of each request
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
            self.request_times.append(time.monotonic())
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
        cut = False
        with self.server.bank.lock:
            if self.server.bank.cut_next:
                self.server.bank.cut_next -= 1
                cut = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if status != 200:
            for name, value in self.server.bank.fail_headers.items():
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut:  # the promised length, half of it sent, then the connection closes
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    bank: FakeBank


@contextlib.contextmanager
def served_bank() -> Iterator[FakeBank]:
    """A fake bank with one signing key, serving on 127.0.0.1 until the block ends."""
    bank = FakeBank(FakeLog([signer()]))
    server = _Server(("127.0.0.1", 0), _Handler)
    server.bank = bank
    bank.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield bank
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


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
