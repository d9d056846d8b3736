"""Outages, with real processes: Redis (broker and cache, as in docker-compose.yml)
stopped, and PostgreSQL restarted, under a running gunicorn, Celery worker and beat.

Both servers are private to these tests (the machine's shared ones are never
touched): a redis-server on a free port, and a PostgreSQL cluster initialised in
a temporary directory. The bank runs with production settings (DEBUG off).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from scripts.benchlib import manage, production_env
from tests.celery_worker import Beat, Process, RedisServer, Worker, free_port, wait_for
from tests.conftest import case_body, pdq
from tests.exchange.push.receiver import Receiver, serve
from webapi.rate_limits import RETRY_SHARED_S


def _postgres_bin() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


PG_BIN = _postgres_bin()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PG_BIN is None, reason="needs PostgreSQL's initdb and pg_ctl"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

STATUS_LIMIT = 5  # per hour and client address


class PostgresServer:
    """A private PostgreSQL cluster in a temporary directory, on a free port."""

    def __init__(self) -> None:
        assert PG_BIN is not None
        # Under /tmp (not pytest's private tmp_path), so the postgres user can reach it.
        self.root = Path(tempfile.mkdtemp(prefix="hashbank-outage-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:  # initdb refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]  # type: ignore[operator]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{program}: {result.stdout}\n{result.stderr}"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/hashbank"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        admin = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE hashbank")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Gunicorn(Process):
    """One sync worker: one process with one persistent database connection."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        super().__init__(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
             f"127.0.0.1:{self.port}", "--workers", "1", "--timeout", "60"],
            log,
            env,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()

        def up() -> bool:
            try:
                return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for("gunicorn to answer", up, 60, self.tail)


@dataclass
class Stack:
    postgres: PostgresServer
    redis: RedisServer
    web: Gunicorn
    worker: Worker
    beat: Beat
    receiver: Receiver
    env: dict[str, str]

    def post(self, path: str, body: dict[str, Any]) -> tuple[requests.Response, float]:
        started = time.monotonic()
        response = requests.post(f"{self.web.url}{path}", json=body, timeout=30)
        return response, time.monotonic() - started

    def create(self, seed: str) -> tuple[dict[str, Any], float]:
        response, took = self.post("/api/v1/cases", case_body(pdq(seed)))
        assert response.status_code == 201, (response.status_code, response.text, self.report())
        return response.json(), took

    def log_size(self) -> int:
        with psycopg.connect(self.postgres.url, connect_timeout=2) as conn:
            row = conn.execute("SELECT log_size FROM hashbank_hashlist WHERE slug = 'adult'")
            return int(row.fetchone()[0])  # type: ignore[index]

    def delivered(self) -> bool:
        return self.receiver.indexes == list(range(self.log_size()))

    def wait_delivered(self, timeout: float = 30) -> None:
        wait_for("the partner to receive every entry", self.delivered, timeout, self.report)

    def report(self) -> str:
        return "\n".join(p.tail(40) for p in (self.web, self.worker, self.beat))


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("outages")
    postgres = PostgresServer()
    redis = RedisServer(tmp / "redis.log")
    receiver = Receiver()
    processes: list[Process] = []
    try:
        postgres.init()
        redis.start()
        env = production_env(
            postgres.url,
            tmp / "var",
            CACHE_URL=f"redis://127.0.0.1:{redis.port}/1",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{redis.port}/0",
            HASHBANK_WEBHOOK_ALLOW_HTTP="1",
            HASHBANK_WEBHOOK_ALLOW_PRIVATE="1",  # the receiver listens on 127.0.0.1
            HASHBANK_WEBHOOK_TIMEOUT_S="2",
            HASHBANK_WEBHOOK_LEASE_S="3",
            HASHBANK_WEBHOOK_BACKOFF_CAP_S="2",
            HASHBANK_SWEEP_INTERVAL_S="1",
            HASHBANK_RATE_CASE_STATUS=f"{STATUS_LIMIT}/h",
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        manage(env, "migrate", "--noinput")
        with serve(receiver) as hook:
            made = json.loads(
                manage(env, "partner_create", "Platform", "--lists", "adult", "--webhook", hook)
            )
            receiver.secret = made["credentials"]["webhook_secret"]
            web = Gunicorn(tmp / "web.log", env)
            worker = Worker(tmp / "worker.log", env)
            beat = Beat(tmp / "beat.log", env, tmp / "beat-schedule")
            processes += [web, worker, beat]
            for process in processes:
                process.start()
            worker.wait_ready()
            yield Stack(postgres, redis, web, worker, beat, receiver, env)
    finally:
        for process in processes:
            process.stop()
        redis.stop()
        postgres.destroy()


@pytest.fixture
def stack(shared_stack: Stack) -> Iterator[Stack]:
    """The running stack; whatever a test stopped is running again afterwards."""
    yield shared_stack
    for process in (shared_stack.redis, shared_stack.beat):
        if not process.running:
            process.start()
    if not (shared_stack.postgres.data / "postmaster.pid").exists():
        shared_stack.postgres.start()


def test_while_redis_is_down_victims_still_create_check_and_withdraw(stack: Stack) -> None:
    baseline = [stack.create(f"before {n}")[1] for n in range(3)]
    stack.wait_delivered()

    stack.redis.stop()  # the broker and the rate limits' cache, as in docker-compose.yml
    during = []
    cases = []
    for n in range(3):
        case, took = stack.create(f"during {n}")
        cases.append(case)
        during.append(took)
    credentials = {"case_number": cases[0]["case_number"], "pin": cases[0]["pin"]}
    checked, took = stack.post("/api/v1/cases/status", credentials)
    assert checked.status_code == 200, checked.text
    during.append(took)
    withdrawn, took = stack.post("/api/v1/cases/withdraw", credentials)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"
    during.append(took)
    # Neither the cache nor the broker holds a request up (the creations compared).
    assert max(during) < 1, (baseline, during)
    assert statistics.median(during[:3]) < statistics.median(baseline) + 0.1, (baseline, during)

    # The limit still holds, counted in the process: the status check above was the first.
    malformed = {"case_number": "x", "pin": "y"}
    codes = [stack.post("/api/v1/cases/status", malformed)[0].status_code for _ in range(5)]
    assert codes == [400] * (STATUS_LIMIT - 1) + [429], codes
    # ... and the fallback was logged once, not once per request.
    web_log = stack.web.output()
    assert web_log.count("rate limits: the cache is unavailable") == 1, stack.web.tail()

    stack.redis.start()  # empty: the tasks it would have held are gone
    stack.wait_delivered()  # the sweep found what every partner was owed
    case, _ = stack.create("after")
    credentials = {"case_number": case["case_number"], "pin": case["pin"]}
    # Within seconds the limits count in Redis again, from zero.
    wait_for(
        "the rate limits to count in Redis again",
        lambda: stack.post("/api/v1/cases/status", credentials)[0].status_code == 200,
        RETRY_SHARED_S + 5,
        stack.report,
    )
    assert stack.web.output().count("rate limits: the cache answers again") == 1
    stack.wait_delivered()


def test_after_a_postgresql_restart_web_and_worker_recover_by_themselves(stack: Stack) -> None:
    case, _ = stack.create("before the restart")
    stack.wait_delivered()  # the web and worker processes each hold a database connection
    stack.beat.stop()  # no sweep: the worker must deliver on its own, first time
    logged_before = len(stack.web.output()), len(stack.worker.output())
    stack.postgres.stop()
    stack.postgres.start()

    credentials = {"case_number": case["case_number"], "pin": case["pin"]}
    checked, _ = stack.post("/api/v1/cases/status", credentials)
    assert checked.status_code == 200, (checked.text, stack.report())
    stack.create("after the restart")
    stack.wait_delivered()
    since = stack.web.output()[logged_before[0] :] + stack.worker.output()[logged_before[1] :]
    assert "django.db.utils.OperationalError" not in since, since
