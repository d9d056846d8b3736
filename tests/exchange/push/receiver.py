"""A real partner webhook endpoint for tests: verifies with the `standardwebhooks`
package, de-duplicates by webhook-id, and can be told to fail or stall."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


class Receiver:
    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.seen_ids: set[str] = set()
        self.entries: list[dict[str, Any]] = []
        self.requests = 0
        self.duplicates = 0
        self.bad_signatures = 0
        self.fail_next = 0  # answer 500 to this many requests
        self.stall = threading.Event()  # while set, requests hang
        self.arrived = threading.Event()
        self.bodies: list[dict[str, Any]] = []

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests += 1
            self.arrived.set()
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500
        while self.stall.is_set():
            threading.Event().wait(0.05)
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except Exception:
            with self.lock:
                self.bad_signatures += 1
            return 401
        with self.lock:
            msg_id = headers["webhook-id"]
            if msg_id in self.seen_ids:
                self.duplicates += 1
                return 200
            self.seen_ids.add(msg_id)
            self.bodies.append(payload)
            self.entries.extend(payload["entries"])
        return 204

    @property
    def indexes(self) -> list[int]:
        with self.lock:
            return [e["index"] for e in self.entries]


@contextmanager
def serve(receiver: Receiver) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def dump(receiver: Receiver) -> str:
    return json.dumps({"requests": receiver.requests, "indexes": receiver.indexes})


class BadPartner:
    """A webhook endpoint that answers badly, on a raw socket.

    ``trickle``: the reply's status line and headers come one byte every
    ``byte_every`` seconds, for up to ``trickle_for`` seconds.
    ``flood``: a reply declaring a terabyte, streamed as fast as the client
    takes it, up to ``flood_cap`` bytes; the first ``fail_next`` replies are
    500s, later ones 200s.

    ``connections`` records (seconds open, bytes of reply sent) per request.
    """

    def __init__(
        self,
        mode: str,
        *,
        byte_every: float = 0.5,
        trickle_for: float = 60,
        flood_cap: int = 128 << 20,
        fail_next: int = 0,
    ) -> None:
        assert mode in ("trickle", "flood")
        self.mode = mode
        self.byte_every, self.trickle_for, self.flood_cap = byte_every, trickle_for, flood_cap
        self.fail_next = fail_next
        self.lock = threading.Lock()
        self.connections: list[tuple[float, int]] = []

    def _answer(self, conn: socket.socket, sent: list[int]) -> None:
        reader = conn.makefile("rb")
        length = 0
        while (line := reader.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        reader.read(length)
        if self.mode == "trickle":
            head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
            ends = time.monotonic() + self.trickle_for
            while time.monotonic() < ends and sent[0] < len(head):
                conn.sendall(head[sent[0] : sent[0] + 1])
                sent[0] += 1
                time.sleep(self.byte_every)
            return
        with self.lock:
            status = b"500 Internal Server Error" if self.fail_next > 0 else b"200 OK"
            self.fail_next = max(0, self.fail_next - 1)
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 1000000000000\r\n\r\n")
        chunk = b"x" * 65536
        while sent[0] < self.flood_cap:
            conn.sendall(chunk)
            sent[0] += len(chunk)

    @contextmanager
    def serve(self) -> Iterator[str]:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        stop = threading.Event()

        def handle(conn: socket.socket) -> None:
            opened = time.monotonic()
            sent = [0]
            with conn:
                try:
                    self._answer(conn, sent)
                except OSError:
                    pass  # the client hung up mid-reply
                finally:
                    with self.lock:
                        self.connections.append((time.monotonic() - opened, sent[0]))

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        finally:
            stop.set()
            thread.join(5)
            listener.close()
