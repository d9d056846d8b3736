"""Push delivery with a real Celery worker, real beat and a real (private) Redis.

The in-process behaviour is in test_push_delivery.py; these tests prove what
needs live processes: a worker SIGKILLed mid-delivery, a broker that is down
(or frozen) while cases are created, and an endpoint that fails five times. In
each, every partner must end with every entry exactly once (after
de-duplication by webhook-id, as Standard Webhooks asks), in order, and never
two requests to one partner at the same time. Last, partners that trickle or
flood their replies must hold up neither the other partners nor the victims.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from cases.services import Eligibility, case_create, case_withdraw
from exchange.models import Delivery, Partner
from exchange.push.services import partner_webhook_set
from exchange.push.tasks import deliveries_kick
from exchange.services import partner_create
from hashbank import tlog
from hashbank.log import list_verifiers
from hashbank.models import HashList, LogEntry
from tests.celery_worker import LIVE_WORKER_MARKS, Beat, RedisServer, Worker, database_url, wait_for
from tests.conftest import ADULT, as_inputs, md5, pdq
from tests.exchange.push.receiver import BadPartner, Receiver, serve

pytestmark = LIVE_WORKER_MARKS

LEASE_S = 3  # must exceed the request timeout
TIMEOUT_S = 2
BACKOFF_BASE_S = 1
BACKOFF_CAP_S = 2
BATCH = 5
DEGRADED_AFTER = 3
DEADLINE_S = 30
# The longest a publish may wait for a broker that is down or not answering.
BROKER_WAIT_MAX_S = 0.1


@dataclass
class Attempt:
    webhook_id: str
    started: float
    ended: float
    status: int


class RecordingReceiver(Receiver):
    """The test receiver, also recording every request's id, timing and answer."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.delay = 0.0  # seconds each request takes before it is answered
        self.active = 0
        self.max_active = 0
        self.started_ids: list[str] = []
        self.attempts: list[Attempt] = []

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        started = time.monotonic()
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.started_ids.append(headers.get("webhook-id", ""))
        try:
            if self.delay:
                time.sleep(self.delay)
            status = super().handle(headers, body)
        finally:
            with self.lock:
                self.active -= 1
        with self.lock:
            self.attempts.append(
                Attempt(headers.get("webhook-id", ""), started, time.monotonic(), status)
            )
        return status

    def summary(self) -> str:
        with self.lock:
            return json.dumps(
                {
                    "indexes": [e["index"] for e in self.entries],
                    "requests": self.requests,
                    "duplicates": self.duplicates,
                    "bad_signatures": self.bad_signatures,
                    "max_active": self.max_active,
                    "attempts": [(a.webhook_id, a.status) for a in self.attempts],
                }
            )


class Push:
    """The live system under test: broker, worker, beat and partner endpoints."""

    def __init__(self, redis: RedisServer, worker: Worker, beat: Beat) -> None:
        self.redis, self.worker, self.beat = redis, worker, beat
        self.partners: list[tuple[Partner, RecordingReceiver]] = []
        self._servers = ExitStack()
        self._cases = 0

    def partner(self, name: str) -> RecordingReceiver:
        receiver = RecordingReceiver()
        receiver.url = self._servers.enter_context(serve(receiver))
        partner, _ = partner_create(name=f"Platform {name}", lists=["adult"])
        receiver.secret = partner_webhook_set(partner=partner, url=receiver.url)
        self.partners.append((partner, receiver))
        return receiver

    def case(self, hashes: int = 2) -> Any:
        self._cases += 1
        n = self._cases
        made = [
            pdq(f"case {n} hash {i}") if i % 2 == 0 else md5(f"case {n} {i}") for i in range(hashes)
        ]
        return case_create(eligibility=Eligibility(**ADULT), hashes=as_inputs(*made)).case

    def close(self) -> None:
        self._servers.close()

    def report(self) -> str:
        rows = list(
            Delivery.objects.values(
                "partner__name",
                "acked_position",
                "batch_start",
                "batch_end",
                "consecutive_failures",
                "degraded",
                "lease_until",
                "next_attempt_at",
                "last_error",
            )
        )
        log_size = HashList.objects.get(slug="adult").log_size
        lines = [f"adult log_size={log_size}", *map(str, rows)]
        lines += [f"{p.name}: {r.summary()}" for p, r in self.partners]
        return "\n".join([*lines, self.worker.tail(), self.beat.tail(25)])

    def caught_up(self) -> bool:
        log_size = HashList.objects.get(slug="adult").log_size
        for partner, receiver in self.partners:
            if receiver.indexes != list(range(log_size)):
                return False
            delivery = Delivery.objects.get(partner=partner)
            if delivery.acked_position != log_size or delivery.lease_until is not None:
                return False  # behind, or still finishing its run
        return True

    def wait_caught_up(self, timeout: float = DEADLINE_S) -> None:
        wait_for("every partner to catch up", self.caught_up, timeout, self.report)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def publish_to(
    redis_server: RedisServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Make this process publish tasks to the private broker instead of running them inline."""
    from config.celery import app

    # Celery reads these variables before its configuration (as CI may set them).
    monkeypatch.setenv("CELERY_BROKER_URL", redis_server.url)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}

    def fresh_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    fresh_pools()
    app.conf.broker_url = redis_server.url
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert app.connection_for_write().as_uri().endswith(f":{redis_server.port}/0")
    yield
    fresh_pools()
    app.conf.update(saved)


@pytest.fixture
def push(redis_server: RedisServer, publish_to: None, tmp_path: Path) -> Iterator[Push]:
    env = dict(os.environ)
    env.update(
        DEBUG="1",
        DATABASE_URL=database_url(connection.settings_dict),
        CELERY_BROKER_URL=redis_server.url,
        HASHBANK_VAR_DIR=str(django_settings.VAR_DIR),
        HASHBANK_WEBHOOK_ALLOW_HTTP="1",
        HASHBANK_WEBHOOK_ALLOW_PRIVATE="1",
        HASHBANK_WEBHOOK_LEASE_S=str(LEASE_S),
        HASHBANK_WEBHOOK_TIMEOUT_S=str(TIMEOUT_S),
        HASHBANK_WEBHOOK_BACKOFF_BASE_S=str(BACKOFF_BASE_S),
        HASHBANK_WEBHOOK_BACKOFF_CAP_S=str(BACKOFF_CAP_S),
        HASHBANK_WEBHOOK_BATCH=str(BATCH),
        HASHBANK_WEBHOOK_DEGRADED_AFTER=str(DEGRADED_AFTER),
        HASHBANK_SWEEP_INTERVAL_S="1",
        PYTHONUNBUFFERED="1",
    )
    worker = Worker(tmp_path / "worker.log", env)
    beat = Beat(tmp_path / "beat.log", env, tmp_path / "beat-schedule")
    system = Push(redis_server, worker, beat)
    try:
        worker.start()
        beat.start()
        worker.wait_ready()
        yield system
    finally:
        worker.stop()
        beat.stop()
        system.close()


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def assert_exactly_once_in_order(push: Push) -> None:
    hash_list = HashList.objects.get(slug="adult")
    rows = {e.index: e for e in LogEntry.objects.filter(hash_list=hash_list)}
    assert len(rows) == hash_list.log_size > 0
    verifier = tlog.parse_vkey(list_verifiers("adult")[0][0])
    for partner, receiver in push.partners:
        detail = f"{partner.name}: {receiver.summary()}"
        assert receiver.indexes == list(range(hash_list.log_size)), detail
        assert receiver.bad_signatures == 0, detail
        delivery = Delivery.objects.get(partner=partner, hash_list=hash_list)
        assert delivery.acked_position == hash_list.log_size
        assert delivery.lease_until is None and delivery.batch_end is None
        # Each entry is the log's entry (a redacted add carries only its leaf hash).
        leaf_hashes = []
        for entry in receiver.entries:
            row = rows[entry["index"]]
            if "leaf" in entry:
                leaf = base64.b64decode(entry["leaf"])
                assert leaf == bytes(row.leaf) and entry["op"] == row.op
                assert tlog.leaf_hash(leaf) == bytes(row.leaf_hash)
            else:
                assert row.redacted and entry["redacted"]
                assert base64.b64decode(entry["leaf_hash"]) == bytes(row.leaf_hash)
            leaf_hashes.append(bytes(row.leaf_hash))
        # Every batch's checkpoint is signed by the list and covers exactly what came so far.
        for body in receiver.bodies:
            checkpoint = tlog.parse_checkpoint(tlog.open_note(body["checkpoint"], [verifier]).text)
            assert checkpoint.size == body["entries"][-1]["index"] + 1
            assert tlog.root_from_leaf_hashes(leaf_hashes[: checkpoint.size]) == checkpoint.root
        # One request at a time per partner; a webhook-id never in flight twice at once.
        assert receiver.max_active == 1, detail
        by_id: dict[str, list[Attempt]] = {}
        for attempt in receiver.attempts:
            by_id.setdefault(attempt.webhook_id, []).append(attempt)
        for attempts in by_id.values():
            attempts.sort(key=lambda a: a.started)
            for before, after in pairwise(attempts):
                assert before.ended <= after.started, detail


def unacked_tasks(redis: RedisServer) -> list[tuple[str, str]]:
    """(task name, args) of the messages the broker holds as delivered but not acknowledged."""
    found = []
    for raw in redis.client().hvals("unacked"):
        payload = json.loads(raw)[0]
        found.append((payload["headers"]["task"], payload["headers"]["argsrepr"]))
    return found


def test_a_worker_killed_mid_delivery_loses_nothing_and_sends_nothing_twice(push: Push) -> None:
    stalled = push.partner("stalled")
    push.partner("healthy")
    stalled_delivery = Delivery.objects.get(partner=push.partners[0][0])
    stalled.stall.set()
    for _ in range(3):
        push.case(hashes=2)  # 6 entries: batches [0, 5) and [5, 6)
    assert stalled.arrived.wait(15), push.report()
    in_flight = stalled.started_ids[0]
    push.worker.kill()  # SIGKILL the worker and its pool children mid-request
    # The database still holds the batch in flight, unacknowledged, under its webhook-id.
    stalled_delivery.refresh_from_db()
    assert stalled_delivery.acked_position == 0 and stalled_delivery.webhook_id == in_flight
    # acks_late: the message of the task that died is still held by the broker, unacknowledged.
    assert ("exchange.tasks.deliver", f"({stalled_delivery.pk},)") in unacked_tasks(push.redis)
    # Entries keep coming while no worker runs; their tasks wait in the broker.
    for _ in range(2):
        push.case(hashes=2)
    stalled.stall.clear()  # the killed request now completes at the partner, unacknowledged
    push.worker.start()
    push.worker.wait_ready()
    push.wait_caught_up()
    assert_exactly_once_in_order(push)
    # The killed batch went out again under the same webhook-id; the partner dropped the copy.
    assert stalled.started_ids.count(in_flight) >= 2, stalled.summary()
    assert stalled.duplicates >= 1


def test_cases_created_while_the_broker_is_down_are_delivered_when_it_returns(
    push: Push, caplog: pytest.LogCaptureFixture
) -> None:
    push.partner("one")
    push.partner("two")
    push.partner("three")
    first = push.case(hashes=3)
    push.wait_caught_up()  # the system is live

    push.redis.stop()
    caplog.clear()
    hash_list_id = HashList.objects.get(slug="adult").pk
    for hashes in (2, 3, 1, 4):
        _, took = timed(lambda n=hashes: push.case(hashes=n))
        assert took < 1, f"creating a case took {took:.2f} s with the broker down"
        # What a publish does for push on commit returns at once, broker or not.
        _, kicked = timed(lambda: deliveries_kick(hash_list_id=hash_list_id))
        assert kicked < BROKER_WAIT_MAX_S, f"the kick took {kicked:.3f} s"
    _, took = timed(lambda: case_withdraw(case=first))
    assert took < 1
    # Nothing could be queued, and the database knows what each partner is owed. The
    # outage is logged once, not once per publish.
    wait_for(
        "the failed queuing to be logged",
        lambda: any("could not queue deliveries" in r.getMessage() for r in caplog.records),
        10,
        push.report,
    )
    assert sum("could not queue deliveries" in r.getMessage() for r in caplog.records) == 1
    log_size = HashList.objects.get(slug="adult").log_size
    assert log_size == 3 + 10 + 3  # three removes for the withdrawal
    assert all(d.acked_position == 3 for d in Delivery.objects.all())
    assert all(receiver.indexes == [0, 1, 2] for _, receiver in push.partners)

    push.redis.start()  # an empty broker on the same port: whatever it held is gone
    push.wait_caught_up()
    assert_exactly_once_in_order(push)
    ops = [e["op"] for e in push.partners[0][1].entries]
    assert ops.count("remove") == 3
    assert "Sending due task sweep-deliveries" in push.beat.output()


def test_an_endpoint_failing_five_times_recovers_without_holding_up_the_others(
    push: Push,
) -> None:
    failing = push.partner("failing")
    healthy = push.partner("healthy")
    slow = push.partner("slow")
    failing.fail_next = 5
    slow.delay = 1.0  # a run of several batches outlives one lease
    failing_partner = push.partners[0][0]
    for _ in range(4):
        push.case(hashes=4)  # 16 entries, at least 4 batches

    degraded_seen: list[Delivery] = []
    healthy_done_while_failing = False

    def progress() -> bool:
        nonlocal healthy_done_while_failing
        delivery = Delivery.objects.get(partner=failing_partner)
        if delivery.degraded:
            degraded_seen.append(delivery)
        if healthy.indexes == list(range(16)) and not failing.entries:
            healthy_done_while_failing = True
        return push.caught_up()

    wait_for("every partner to catch up", progress, DEADLINE_S, push.report)
    assert_exactly_once_in_order(push)

    assert healthy_done_while_failing, "the healthy partner waited for the failing one"
    assert degraded_seen, "the failing partner was never shown as degraded"
    assert all("HTTP 500" in d.last_error and d.last_error_at for d in degraded_seen)
    assert max(d.consecutive_failures for d in degraded_seen) == 5
    recovered = Delivery.objects.get(partner=failing_partner)
    assert not recovered.degraded and recovered.consecutive_failures == 0
    assert recovered.last_success_at is not None and recovered.next_attempt_at is None

    # The first batch was retried under one webhook-id, five failures then a success,
    # each retry after an exponential (jittered) backoff.
    first = failing.attempts[:6]
    assert [a.status for a in first] == [500] * 5 + [204], failing.summary()
    assert len({a.webhook_id for a in first}) == 1
    for n, (before, after) in enumerate(pairwise(first), start=1):
        least = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (n - 1)) * 0.5
        assert after.started - before.started >= least - 0.05, failing.summary()
    assert failing.duplicates == healthy.duplicates == slow.duplicates == 0


def test_a_broker_that_stops_answering_holds_no_publish_up(push: Push) -> None:
    """A frozen Redis (SIGSTOP) still accepts connections but never replies."""
    push.partner("one")
    push.partner("two")
    push.case(hashes=2)
    push.wait_caught_up()
    hash_list_id = HashList.objects.get(slug="adult").pk

    assert push.redis.proc is not None
    os.kill(push.redis.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(3):
            _, took = timed(lambda: push.case(hashes=1))
            assert took < 1, f"creating a case took {took:.2f} s with the broker frozen"
            kicked: list[float] = []
            kick = threading.Thread(
                target=lambda out=kicked: out.append(
                    timed(lambda: deliveries_kick(hash_list_id=hash_list_id))[1]
                ),
                daemon=True,
            )
            kick.start()
            kick.join(5)
            assert kicked, "the kick was still waiting for the broker after 5 s"
            assert kicked[0] < BROKER_WAIT_MAX_S, f"the kick took {kicked[0]:.3f} s"
    finally:
        os.kill(push.redis.proc.pid, signal.SIGCONT)
    push.wait_caught_up()
    assert_exactly_once_in_order(push)


def test_a_trickling_partner_and_a_flooding_one_hold_up_neither_the_others_nor_victims(
    push: Push,
) -> None:
    healthy = [push.partner("healthy one"), push.partner("healthy two")]
    baseline = [timed(lambda: push.case(hashes=2))[1] for _ in range(3)]
    push.wait_caught_up()

    trickling = BadPartner("trickle")
    flooding = BadPartner("flood", fail_next=1)
    bad: dict[str, Partner] = {}
    for name, endpoint in (("trickling", trickling), ("flooding", flooding)):
        url = push._servers.enter_context(endpoint.serve())
        bad[name], _ = partner_create(name=f"Platform {name}", lists=["adult"])
        partner_webhook_set(partner=bad[name], url=url)

    during, lags = [], []
    for _ in range(5):
        _, took = timed(lambda: push.case(hashes=2))
        during.append(took)
        log_size = HashList.objects.get(slug="adult").log_size
        started = time.monotonic()
        wait_for(
            "the healthy partners to receive the new case",
            lambda size=log_size: all(r.indexes == list(range(size)) for r in healthy),
            DEADLINE_S,
            push.report,
        )
        lags.append(time.monotonic() - started)
        time.sleep(0.5)

    # The healthy partners stay fresh: at worst they wait for a pool process that a bad
    # partner holds for one request's deadline.
    assert max(lags) < 2 * TIMEOUT_S + 1, (lags, push.report())
    # Victims don't wait for partners at all.
    assert statistics.median(during) < statistics.median(baseline) * 1.5 + 0.1, (
        baseline,
        during,
    )
    # Each request to the trickling partner ended by its deadline, as a failure.
    assert trickling.connections, push.report()
    assert all(seconds < TIMEOUT_S + 1.5 for seconds, _ in trickling.connections), (
        trickling.connections
    )
    trickled = Delivery.objects.get(partner=bad["trickling"])
    assert trickled.acked_position == 0 and "within" in trickled.last_error, trickled.last_error
    # The flooding partner's replies were cut off after a few KiB (what socket buffers
    # hold is all it managed to send), its 500 was recorded, and its 200s acknowledged.
    wait_for(
        "the flooding partner to catch up",
        lambda: (
            Delivery.objects.get(partner=bad["flooding"]).acked_position
            == HashList.objects.get(slug="adult").log_size
        ),
        DEADLINE_S,
        push.report,
    )
    assert all(sent < 16 << 20 for _, sent in flooding.connections), flooding.connections
    flooded = Delivery.objects.get(partner=bad["flooding"])
    assert flooded.last_error.startswith("HTTP 500: xxx") and len(flooded.last_error) < 300
