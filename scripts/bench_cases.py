#!/usr/bin/env python
"""Benchmark the case API: gunicorn on PostgreSQL, 16 concurrent clients.

Each client creates cases of 20 hashes, then checks the status of each one.
In the same run the script measures how many bare Argon2id PIN hashes per
second this machine does, with the server's own parameters and code, on all
cores, which bounds how fast cases can be created. On a shared (virtual)
machine the speed of the same code drifts by up to 40 % within a minute, so
the creations run in rounds (``--segments``) with a bare measurement before,
between and after them; each round's rate, while all clients are busy, is
compared with the two measurements beside it, and the median round is the
figure.

    .venv/bin/python scripts/bench_cases.py            # full run
    .venv/bin/python scripts/bench_cases.py --quick    # smoke run
    .venv/bin/python scripts/bench_cases.py --ceiling  # the same load, PIN hash only
    .venv/bin/python scripts/bench_cases.py --ceiling framework  # the framework around it

``--ceiling`` serves the same load from a server that does nothing but the
PIN hash (``ceiling_app``): the most any server that hashes the PIN can do on
this machine, with this client and gunicorn. If the ceiling misses a target,
no change to the application can meet it here. ``--ceiling framework`` serves
it from the project's Django, DRF, rate limit and case serializers around that
hash, storing nothing (``scripts/bench_cases_framework.py``): what is left
between it and the real server is the bank's own work.

Needs PostgreSQL (postgres@127.0.0.1:5432, trust) and Redis (127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchlib import free_port, fresh_database, gunicorn, manage, percentile, production_env

TARGET_RATIO = 0.80
TARGET_P99_MS = 300.0

#: By ``--ceiling``: what serves the load (its name in the results, its WSGI app).
SERVERS = {
    None: ("hashbank", "config.wsgi:application"),
    "pin": ("ceiling (PIN hash only)", "scripts.bench_cases:ceiling_app"),
    "framework": (
        "framework ceiling (Django, DRF, rate limit, serializers, PIN hash)",
        "scripts.bench_cases_framework:application",
    ),
}


@functools.cache
def _pins() -> ModuleType:
    """``cases.pins``, the server's own PIN code, with Django set up (once per process)."""
    import django

    django.setup()
    from cases import pins

    return pins


def _argon2_worker(env: dict[str, str], seconds: float, result: multiprocessing.Queue) -> None:
    os.environ.update(env)
    pins = _pins()
    pins.hash_pin("warm-up")
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pins.hash_pin(secrets.token_hex(4))
        count += 1
    result.put(count)


def bare_argon2_rate(env: dict[str, str], seconds: float) -> tuple[float, int]:
    """Argon2id hashes per second with one process per core, using cases.pins itself."""
    processes = os.cpu_count() or 1
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_argon2_worker, args=(env, seconds, queue))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    total = sum(queue.get() for _ in workers)
    for w in workers:
        w.join()
    return total / seconds, processes


def ceiling_app(environ: dict, start_response):  # type: ignore[no-untyped-def]
    """A WSGI app that does only what no case API can skip: one Argon2id hash per request.

    A creation hashes a generated PIN, a status check verifies one (as
    ``cases.pins`` does, same parameters), and both answer with 20 hashes, as
    the real server does, so the client does the same work as against it.
    Nothing is validated or stored: this measures the machine, not the bank.
    """
    pins = _pins()
    path = environ["PATH_INFO"]
    if path == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if path == "/api/v1/cases":
        pin = pins.generate()
        pins.hash_pin(pin)
        answer = {"case_number": secrets.token_hex(8), "pin": pin}
        answer["hashes"] = json.loads(body)["hashes"]
        status = "201 Created"
    else:
        pins.spend_equal_time(json.loads(body)["pin"])
        answer = {"hashes": [{"algorithm": "md5", "value": "0" * 32}] * 20}
        status = "200 OK"
    data = json.dumps(answer).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    start_response(status, headers)
    return [data]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (and their reaped children), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick


def _cpu_stat() -> list[int]:
    """The machine's CPU time counters (user nice system idle iowait irq softirq steal)."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def _steal_share(before: list[int], after: list[int]) -> float:
    """Share of the CPU time the hypervisor gave to others while we wanted it."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    return delta[7] / max(1, sum(delta))


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def random_case_body() -> bytes:
    hashes = []
    for i in range(20):
        if i % 4 == 3:
            hashes.append({"algorithm": "md5", "value": secrets.token_hex(16)})
        else:
            hashes.append({"algorithm": "pdq", "value": secrets.token_hex(32), "quality": 50 + i})
    body = {
        "eligibility": {
            "in_image": True,
            "under_18_at_capture": secrets.randbelow(4) == 0,
            "has_media": True,
            "intimate": True,
        },
        "hashes": hashes,
    }
    return json.dumps(body).encode()


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    """One POST on a new connection, as the sync workers close each one; (status, body).

    Plain sockets and a prebuilt request: the clients share the server's cores,
    and http.client took about twice the CPU per request.
    """
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    # A plain connect: create_connection resolves the address first, every time.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(("127.0.0.1", port))
        sock.sendall(head + body)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    header, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    if b"\r\ntransfer-encoding:" in header.lower():
        raise RuntimeError("chunked response: the benchmark client reads only plain bodies")
    return int(header.split(b" ", 2)[1]), payload


class Client(threading.Thread):
    """Creates its cases in ``segments`` rounds, meeting the others (and the main
    thread, which measures bare Argon2 in between) at ``barrier`` before and after
    each round; then checks every case's status."""

    def __init__(
        self, port: int, cases: int, barrier: threading.Barrier, segments: int = 1
    ) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.cases = cases
        self.barrier = barrier
        self.segments = segments
        self.create_done: list[tuple[int, float]] = []  # (segment, when) per case created
        self.create_ms: list[float] = []
        self.status_ms: list[float] = []
        self.errors: list[str] = []
        self.credentials: list[tuple[str, str]] = []
        self._created: list[bytes] = []  # parsed after the rounds, outside the timed loop

    def run(self) -> None:
        bodies = [random_case_body() for _ in range(self.cases)]
        per_segment = -(-self.cases // self.segments)
        for segment in range(self.segments):
            self.barrier.wait()
            for body in bodies[segment * per_segment : (segment + 1) * per_segment]:
                t0 = time.perf_counter()
                status, data = post(self.port, "/api/v1/cases", body)
                done = time.perf_counter()
                self.create_ms.append((done - t0) * 1000)
                if status != 201:
                    self.errors.append(f"create {status}: {data[:200]!r}")
                    continue
                self.create_done.append((segment, done))
                self._created.append(data)
            self.barrier.wait()
        for data in self._created:
            created = json.loads(data)
            self.credentials.append((created["case_number"], created["pin"]))
        checks = [
            json.dumps({"case_number": number, "pin": pin}).encode()
            for number, pin in self.credentials
        ]
        answers = []
        self.barrier.wait()
        for body in checks:
            t0 = time.perf_counter()
            answers.append(post(self.port, "/api/v1/cases/status", body))
            self.status_ms.append((time.perf_counter() - t0) * 1000)
        for status, data in answers:
            if status != 200 or len(json.loads(data)["hashes"]) != 20:
                self.errors.append(f"status {status}: {data[:200]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--cases-per-client", type=int, default=60)
    # Sync workers, one per core: measured best for this CPU-bound path. More
    # processes than cores made each Argon2 hash itself ~10 % slower (see BENCHMARKS.md).
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--argon2-seconds", type=float, default=5.0)
    # The load runs in rounds with a bare Argon2 measurement before, between and
    # after them: on a shared host the speed of the same code drifts within a
    # minute, so each round is compared with the measurements on either side.
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="small run, to check it works")
    parser.add_argument(
        "--ceiling",
        nargs="?",
        const="pin",
        choices=[name for name in SERVERS if name],
        help="serve the load from a server that only hashes the PIN (the limit on this machine),"
        " or with 'framework' from the project's Django, DRF, rate limit and case serializers"
        " around that hash, storing nothing (scripts/bench_cases_framework.py)",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases_per_client, args.argon2_seconds, args.segments = 6, 2.0, 2

    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database("hashbank_bench_cases")
        unlimited = "1000000/h"
        env = production_env(
            url,
            Path(tmp),
            HASHBANK_RATE_CASE_CREATE=unlimited,
            HASHBANK_RATE_CASE_STATUS=unlimited,
            HASHBANK_RATE_CASE_WITHDRAW=unlimited,
        )
        manage(env, "migrate", "--noinput")
        argon2 = [bare_argon2_rate(env, args.argon2_seconds)[0]]
        processes = os.cpu_count() or 1
        port = free_port()
        server, app = SERVERS[args.ceiling]
        with gunicorn(env, port=port, workers=args.workers, threads=args.threads, app=app):
            warm = Client(port, 4, threading.Barrier(1))
            warm.run()
            barrier = threading.Barrier(args.clients + 1)
            clients = [
                Client(port, args.cases_per_client, barrier, args.segments)
                for _ in range(args.clients)
            ]
            server_pids = _pids(f"gunicorn.*127.0.0.1:{port}")
            pg_pids = _pids("postgres")
            before = (_cpu_seconds(server_pids), _cpu_seconds(pg_pids), time.process_time())
            stat_before = _cpu_stat()
            for c in clients:
                c.start()
            segment_windows = []
            for _ in range(args.segments):
                barrier.wait()
                started = time.perf_counter()
                barrier.wait()
                segment_windows.append((started, time.perf_counter()))
                argon2.append(bare_argon2_rate(env, args.argon2_seconds)[0])
            barrier.wait()  # and on to the status checks
            for c in clients:
                c.join()
            after = (_cpu_seconds(server_pids), _cpu_seconds(pg_pids), time.process_time())
            steal = _steal_share(stat_before, _cpu_stat())
        argon2_rate = sum(argon2) / len(argon2)

    # Each round's rate while every client was still busy (until the first one
    # finished its share), against the mean of the bare rates on either side.
    segment_ratios = []
    for k, (started, ended) in enumerate(segment_windows):
        done = [[t for s, t in c.create_done if s == k] for c in clients]
        first_done = min((max(times) for times in done if times), default=ended)
        count = sum(1 for times in done for t in times if t <= first_done)
        rate = count / (first_done - started) if first_done > started else 0.0
        segment_ratios.append(rate / ((argon2[k] + argon2[k + 1]) / 2))
    create_ms = [x for c in clients for x in c.create_ms]
    status_ms = [x for c in clients for x in c.status_ms]
    errors = [e for c in clients for e in c.errors]
    created = sum(len(c.credentials) for c in clients)
    cases_per_s = created / sum(ended - started for started, ended in segment_windows)
    # CPU per case over the whole run (creation + status), by component.
    per_request = [
        round((a - b) * 1000 / max(1, 2 * created), 2) for a, b in zip(after, before, strict=True)
    ]
    results = {
        "server": server,
        "clients": args.clients,
        "cases_created": created,
        "hashes_per_case": 20,
        "gunicorn": f"{args.workers} workers x {args.threads} threads",
        "argon2_bare_per_s": round(argon2_rate, 1),
        "argon2_bare_each": [round(rate, 1) for rate in argon2],
        "argon2_processes": processes,
        "create_cases_per_s": round(cases_per_s, 1),
        # The target: the median round, each against the bare rates on either side.
        "create_ratio_to_argon2": round(statistics.median(segment_ratios), 3),
        "create_ratio_by_round": [round(r, 3) for r in segment_ratios],
        # All cases over all rounds (ends included) against the mean bare rate.
        "create_ratio_whole_run": round(cases_per_s / argon2_rate, 3),
        "create_p50_ms": round(percentile(create_ms, 50), 1),
        "create_p99_ms": round(percentile(create_ms, 99), 1),
        "status_p50_ms": round(percentile(status_ms, 50), 1),
        "status_p99_ms": round(percentile(status_ms, 99), 1),
        # Little's law: with this many clients always waiting, the mean latency
        # is clients / throughput, and no server that hashes each PIN can go
        # faster than the bare rate. No p99 can be below this floor here.
        "latency_floor_ms": round(args.clients * 1000 / max(argon2), 1),
        "errors": len(errors),
        # On a virtual machine: CPU time taken by the host for other guests.
        "cpu_steal_during_load": f"{steal:.1%}",
        "cpu_ms_per_request": {
            "gunicorn": per_request[0],
            "postgres": per_request[1],
            "bench_client": per_request[2],
            "argon2_alone": round(processes * 1000 / argon2_rate, 2),
        },
    }
    ok = (
        results["create_ratio_to_argon2"] >= TARGET_RATIO
        and results["create_p99_ms"] < TARGET_P99_MS
        and results["status_p99_ms"] < TARGET_P99_MS
        and not errors
    )
    results["targets_met"] = ok
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:>26}: {value}")
        for e in errors[:5]:
            print("error:", e)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
