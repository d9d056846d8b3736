"""Real processes for tests: a private redis-server, and Celery worker and beat.

Each process runs in its own session (process group), so a test can SIGKILL a
worker together with its pool children, as a crashed machine would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


#: For test modules that start Celery processes on a private redis-server: they share the
#: test database with them, so it must be PostgreSQL and committed (transaction=True).
LIVE_WORKER_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: the worker processes must share the test database",
    ),
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="needs redis-server on PATH (the tests start a private one)",
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, detail: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{detail()}")
        time.sleep(0.05)


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the database this process uses now (the test database).

    Built from DATABASE_URL when it is set, so its options (e.g. sslmode) carry over.
    """
    name = "/" + quote(str(settings_dict["NAME"]), safe="")
    configured = os.environ.get("DATABASE_URL", "")
    if configured:
        return urlunsplit(urlsplit(configured)._replace(path=name))
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}{name}"


class Process:
    """A child process in its own process group, logging to a file."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.args, self.log, self.env = name, args, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        with self.log.open("ab") as out:
            out.write(f"\n----- starting {self.name} -----\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.args,
                cwd=BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 60) -> str:
        return f"--- {self.name} log (last {lines} lines) ---\n" + "\n".join(
            self.output().splitlines()[-lines:]
        )

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handlers, no acks, no cleanup."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the group and wait; SIGKILL whatever is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Pool children may outlive their parent for a moment.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


class RedisServer(Process):
    """A private, non-persistent redis-server; stop() and start() keep its port."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        super().__init__(
            "redis-server",
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            log,
            dict(os.environ),
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def ping(self) -> bool:
        # A bare socket: the redis client would retry with backoff, slowing every poll.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        super().start()
        wait_for("redis-server to answer", self.ping, 10, self.tail)

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        # The port must be free again before a restart binds it.
        wait_for("redis-server to go away", lambda: not self.ping(), 10, self.tail)


def celery_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "config", *args]


class Worker(Process):
    def __init__(self, log: Path, env: dict[str, str], concurrency: int = 2) -> None:
        super().__init__(
            "celery worker",
            celery_command(
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                f"push-test-{os.getpid()}@%h",
            ),
            log,
            env,
        )
        self._started_at = 0

    def start(self) -> None:
        self._started_at = len(self.output())
        super().start()

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if not self.running:
                raise AssertionError(f"the worker exited\n{self.tail()}")
            return " ready." in self.output()[self._started_at :]

        wait_for("the Celery worker to be ready", ready, timeout, self.tail)


class Beat(Process):
    def __init__(self, log: Path, env: dict[str, str], schedule: Path) -> None:
        super().__init__(
            "celery beat",
            celery_command(
                "beat",
                "--schedule",
                str(schedule),
                "--max-interval",
                "1",
                "--loglevel",
                "INFO",
            ),
            log,
            env,
        )
