"""A real partner webhook endpoint for tests: verifies with the `standardwebhooks`
package, de-duplicates by webhook-id, and can be told to fail or stall."""

from __future__ import annotations

import json
import threading
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
