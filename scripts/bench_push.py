#!/usr/bin/env python
"""Benchmark push delivery: gunicorn on PostgreSQL, a live Celery worker and beat on
Redis, and 20 partner webhook receivers on loopback (in their own process, each
verifying every request with the `standardwebhooks` package and de-duplicating by
webhook-id, as a partner would).

1. Freshness: a steady 10 cases/s for --steady-seconds; for each case, the time from
   sending it to its entries being received and verified at EVERY partner (p50/p99;
   target p99 <= 2 s).
2. Throughput: 10,000 new hashes (500 cases of 20) created as fast as 16 clients can,
   until all 20 partners hold all of them (target < 30 s).
3. Recovery: one partner answers 503 for 60 s while cases keep coming at 10/s; the
   time from its return until it has caught up.
4. Slow partners: for --steady-seconds at 10 cases/s, one partner trickles its reply a
   byte every 0.5 s and another floods a reply of a terabyte; the freshness at the
   other 18 and the case API's latency, against phase 1's.

    .venv/bin/python scripts/bench_push.py
    .venv/bin/python scripts/bench_push.py --quick

Needs PostgreSQL (postgres@127.0.0.1:5432, trust) and Redis (127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchlib import (
    REPO,
    free_port,
    fresh_database,
    gunicorn,
    manage,
    percentile,
    production_env,
)

PARTNERS = 20
# What a receiver does, per partner (shared with the receivers' process).
NORMAL, OUTAGE, TRICKLE, FLOOD = 0, 1, 2, 3


# --- partner receivers (separate process) ------------------------------------------


def _receivers_main(
    ports: list[int], secrets_: list[str], events: mp.Queue, outage: Any, ready: Any
) -> None:
    from standardwebhooks.webhooks import Webhook

    seen: list[set[str]] = [set() for _ in ports]
    locks = [threading.Lock() for _ in ports]

    def handler_for(i: int) -> type[BaseHTTPRequestHandler]:
        verifier = Webhook(secrets_[i])

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if outage[i] == OUTAGE:
                    self._reply(503)
                    return
                if outage[i] in (TRICKLE, FLOOD):
                    self.close_connection = True
                    try:
                        self._misbehave(outage[i])
                    except OSError:
                        pass  # the bank hung up, as it should
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    payload = verifier.verify(body, headers)
                except Exception:
                    self._reply(401)
                    return
                now = time.time()
                with locks[i]:
                    fresh = headers["webhook-id"] not in seen[i]
                    seen[i].add(headers["webhook-id"])
                if fresh:
                    values = [e["value"] for e in payload["entries"] if e.get("op") == "add"]
                    events.put((i, now, values, payload["entries"][-1]["index"]))
                self._reply(204)

            def _misbehave(self, how: int) -> None:
                if how == TRICKLE:
                    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 240:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.5)
                    return
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")
                chunk = b"x" * 65536
                for _ in range(4096):  # at most 256 MiB
                    self.wfile.write(chunk)

            def _reply(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    servers = []
    for i, port in enumerate(ports):
        server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(i))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    ready.set()
    signal.sigwait([signal.SIGTERM])


class Arrivals:
    """Collects (partner, time, values) events from the receivers' process."""

    def __init__(self, events: mp.Queue) -> None:
        self.events = events
        self.first_seen: dict[str, list[float]] = {}  # value -> arrival time per partner
        self.count = [0] * PARTNERS
        self.lock = threading.Lock()
        self.stop = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while not self.stop.is_set():
            try:
                i, t, values, _last = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.lock:
                for v in values:
                    times = self.first_seen.setdefault(v, [0.0] * PARTNERS)
                    if not times[i]:
                        times[i] = t
                        self.count[i] += 1

    def everywhere(self, value: str) -> float | None:
        with self.lock:
            times = self.first_seen.get(value)
            if times and all(times):
                return max(times)
        return None

    def when(self, value: str, partners: range) -> float:
        """When the last of ``partners`` received ``value`` (inf if one has not)."""
        with self.lock:
            times = self.first_seen.get(value)
            if not times or not all(times[p] for p in partners):
                return float("inf")
            return max(times[p] for p in partners)

    def wait_all(self, values: list[str], deadline: float, partners: range | None = None) -> float:
        partners = partners or range(PARTNERS)
        while time.time() < deadline:
            with self.lock:
                done = all(
                    (t := self.first_seen.get(v)) is not None and all(t[p] for p in partners)
                    for v in values
                )
                if done:
                    return max(max(self.first_seen[v][p] for p in partners) for v in values)
            time.sleep(0.05)
        raise TimeoutError("not every partner received every entry in time")


# --- case creation -------------------------------------------------------------------


def case_body(n_hashes: int) -> tuple[bytes, list[str]]:
    values = [secrets.token_hex(32) for _ in range(n_hashes)]
    body = {
        "eligibility": {"in_image": True, "under_18_at_capture": False, "has_media": True,
                        "intimate": True},
        "hashes": [{"algorithm": "pdq", "value": v, "quality": 90} for v in values],
    }  # fmt: skip
    return json.dumps(body).encode(), values


def create_case(conn: http.client.HTTPConnection, body: bytes) -> None:
    conn.request("POST", "/api/v1/cases", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 201:
        raise RuntimeError(f"case creation failed: {response.status} {data[:200]!r}")


def steady(
    port: int, rate: float, seconds: float, hashes: int = 2, latencies: list[float] | None = None
) -> list[tuple[float, list[str]]]:
    """Create cases at ``rate`` per second; returns (send time, values) per case.

    Each request's latency (ms) is appended to ``latencies`` when given.
    """
    sent: list[tuple[float, list[str]]] = []
    lock = threading.Lock()
    start = time.time()
    total = int(rate * seconds)
    slots: queue.Queue[int] = queue.Queue()
    for k in range(total):
        slots.put(k)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            try:
                k = slots.get_nowait()
            except queue.Empty:
                return
            due = start + k / rate
            time.sleep(max(0.0, due - time.time()))
            body, values = case_body(hashes)
            t0 = time.time()
            create_case(conn, body)
            took = (time.time() - t0) * 1000
            with lock:
                sent.append((t0, values))
                if latencies is not None:
                    latencies.append(took)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent


def burst(port: int, cases: int, hashes: int, clients: int = 16) -> list[str]:
    bodies = [case_body(hashes) for _ in range(cases)]
    work: queue.Queue[bytes] = queue.Queue()
    for body, _ in bodies:
        work.put(body)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            create_case(conn, body)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [v for _, values in bodies for v in values]


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steady-seconds", type=float, default=30)
    parser.add_argument("--outage-seconds", type=float, default=60)
    parser.add_argument("--burst-hashes", type=int, default=10_000)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.steady_seconds, args.outage_seconds, args.burst_hashes = 5, 5, 1000
    results: dict[str, Any] = {"partners": PARTNERS}

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = fresh_database("hashbank_bench_push")
        unlimited = "1000000/h"
        env = production_env(
            url,
            tmp / "var",
            CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
            HASHBANK_WEBHOOK_ALLOW_HTTP="1",
            HASHBANK_WEBHOOK_ALLOW_PRIVATE="1",  # the receivers listen on 127.0.0.1
            HASHBANK_SWEEP_INTERVAL_S="1",
            HASHBANK_RATE_CASE_CREATE=unlimited,
            HASHBANK_RATE_CASE_STATUS=unlimited,
        )
        subprocess.run(["redis-cli", "-n", "3", "FLUSHDB"], check=True, capture_output=True)
        manage(env, "migrate", "--noinput")
        ports = [free_port() for _ in range(PARTNERS)]
        whsecs = []
        for i, port in enumerate(ports):
            out = json.loads(
                manage(env, "partner_create", f"Platform {i}", "--lists", "adult",
                       "--webhook", f"http://127.0.0.1:{port}/hook")
            )  # fmt: skip
            whsecs.append(out["credentials"]["webhook_secret"])

        ctx = mp.get_context("spawn")
        events: mp.Queue = ctx.Queue()
        outage = ctx.Array("b", [0] * PARTNERS)
        ready = ctx.Event()
        receivers = ctx.Process(
            target=_receivers_main, args=(ports, whsecs, events, outage, ready), daemon=True
        )
        receivers.start()
        ready.wait(30)
        arrivals = Arrivals(events)

        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
             "--concurrency", str(args.worker_concurrency), "--without-gossip",
             "--without-mingle", "--prefetch-multiplier", "1"],
            env=env, cwd=REPO, start_new_session=True,
        )  # fmt: skip
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
             "--schedule", str(tmp / "beat-schedule")],
            env=env, cwd=REPO, start_new_session=True,
        )  # fmt: skip
        port = free_port()
        try:
            with gunicorn(env, port=port, workers=2, threads=4):
                # Warm-up: one case reaches everyone.
                body, values = case_body(1)
                create_case(http.client.HTTPConnection("127.0.0.1", port), body)
                arrivals.wait_all(values, time.time() + 60)

                # 1. Freshness at a steady 10 cases/s.
                calm_latency: list[float] = []
                sent = steady(port, 10, args.steady_seconds, latencies=calm_latency)
                last_values = [v for _, vals in sent for v in vals]
                arrivals.wait_all(last_values, time.time() + 60)
                fresh = []
                for t0, vals in sent:
                    done = max(arrivals.everywhere(v) or float("inf") for v in vals)
                    fresh.append((done - t0) * 1000)
                results["freshness_ms"] = {
                    "cases": len(sent),
                    "rate_per_s": 10,
                    "p50": round(percentile(fresh, 50)),
                    "p99": round(percentile(fresh, 99)),
                    "max": round(max(fresh)),
                    "target_p99": 2000,
                    "case_create_p50_ms": round(percentile(calm_latency, 50)),
                    "case_create_p99_ms": round(percentile(calm_latency, 99)),
                }

                # 2. Throughput: 10,000 new hashes to all 20 partners.
                t0 = time.time()
                values = burst(port, args.burst_hashes // 20, 20)
                created = time.time()
                done = arrivals.wait_all(values, time.time() + 300)
                results["throughput"] = {
                    "hashes": len(values),
                    "created_in_s": round(created - t0, 2),
                    "all_partners_have_all_s": round(done - t0, 2),
                    "deliveries_per_s": round(len(values) * PARTNERS / (done - t0)),
                    "target_s": 30,
                }

                # 3. Recovery after a partner outage.
                outage[0] = OUTAGE
                sent = steady(port, 10, args.outage_seconds)
                outage[0] = NORMAL
                back = time.time()
                all_values = [v for _, vals in sent for v in vals]
                others = arrivals.wait_all(all_values, time.time() + 120, range(1, PARTNERS))
                caught_up = arrivals.wait_all(all_values, time.time() + 600, range(0, 1))
                results["recovery"] = {
                    "outage_s": args.outage_seconds,
                    "entries_missed_during_outage": len(all_values),
                    "catch_up_after_return_s": round(caught_up - back, 2),
                    "other_partners_unaffected_lag_s": round(max(0.0, others - back), 2),
                    "note": "includes waiting out the retry backoff (base 2 s, cap 300 s)",
                }

                # 4. A trickling and a flooding partner; the other 18 and the victims.
                arrivals.wait_all(all_values, time.time() + 600)  # everyone level first
                outage[0], outage[1] = TRICKLE, FLOOD
                slow_latency: list[float] = []
                sent = steady(port, 10, args.steady_seconds, latencies=slow_latency)
                healthy = range(2, PARTNERS)
                arrivals.wait_all([v for _, vals in sent for v in vals], time.time() + 120, healthy)
                fresh = []
                for t0, vals in sent:
                    done = max(arrivals.when(v, healthy) for v in vals)
                    fresh.append((done - t0) * 1000)
                outage[0] = outage[1] = NORMAL
                results["slow_partners"] = {
                    "cases": len(sent),
                    "other_18_freshness_p50_ms": round(percentile(fresh, 50)),
                    "other_18_freshness_p99_ms": round(percentile(fresh, 99)),
                    "case_create_p50_ms": round(percentile(slow_latency, 50)),
                    "case_create_p99_ms": round(percentile(slow_latency, 99)),
                    "note": "partner 0 trickles a byte every 0.5 s; partner 1 floods its reply",
                }
        finally:
            for proc in (worker, beat):
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            arrivals.stop.set()
            receivers.terminate()

    results["targets_met"] = bool(
        results["freshness_ms"]["p99"] <= 2000
        and results["throughput"]["all_partners_have_all_s"] < 30
    )
    print(json.dumps(results, indent=2))
    return 0 if results["targets_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
