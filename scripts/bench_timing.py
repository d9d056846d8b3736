#!/usr/bin/env python
"""Benchmark: does the time of a status check tell unknown case, wrong PIN and locked case apart?

The three answers are byte-identical; this measures that they also take the
same time. One gunicorn sync worker on a fresh PostgreSQL database, with
production settings, answers one request at a time from one client: each round
sends one request of each kind in a random order, and the script prints each
kind's median over the rounds. The medians must lie within 0.3 ms of one
another (exit status 1 otherwise).

A case takes HASHBANK_PIN_MAX_FAILURES - 1 wrong PINs before the next would
lock it, so the wrong PINs go to as many cases as they need; the locked case is
locked before the rounds start, and is sent its right PIN.

    .venv/bin/python scripts/bench_timing.py            # 300 rounds
    .venv/bin/python scripts/bench_timing.py --quick    # smoke run

Needs PostgreSQL (postgres@127.0.0.1:5432, trust) and Redis (127.0.0.1:6379).
Run it on a quiet machine: on a loaded one, scheduling noise is larger than the
difference it looks for.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases import case_numbers
from scripts.bench_cases import post, random_case_body
from scripts.benchlib import free_port, fresh_database, gunicorn, manage, percentile, production_env

TARGET_SPREAD_MS = 0.3
MAX_FAILURES = 10  # the server's default HASHBANK_PIN_MAX_FAILURES
KINDS = ("unknown", "wrong", "locked")


def credentials(number: str, pin: str) -> bytes:
    return json.dumps({"case_number": number, "pin": pin}).encode()


def create_case(port: int) -> tuple[str, str]:
    status, data = post(port, "/api/v1/cases", random_case_body())
    if status != 201:
        raise RuntimeError(f"creating a case: {status} {data[:200]!r}")
    created = json.loads(data)
    return created["case_number"], created["pin"]


def unknown_number(known: set[str]) -> str:
    while (number := case_numbers.generate()) in known:
        pass
    return number


def measure(port: int, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per request of each kind, over ``rounds`` interleaved rounds."""
    per_case = MAX_FAILURES - 1
    total = rounds + warmup
    open_cases = [create_case(port) for _ in range(-(-total // per_case))]
    locked_number, locked_pin = create_case(port)
    for _ in range(MAX_FAILURES):
        post(port, "/api/v1/cases/status", credentials(locked_number, "wrong-pin"))
    known = {number for number, _ in open_cases} | {locked_number}
    wrong_numbers = [number for number, _ in open_cases for _ in range(per_case)]
    bodies = {
        "unknown": [credentials(unknown_number(known), "wrong-pin") for _ in range(total)],
        "wrong": [credentials(wrong_numbers[n], "wrong-pin") for n in range(total)],
        "locked": [credentials(locked_number, locked_pin)] * total,
    }
    timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
    expected: bytes | None = None
    for n in range(total):
        order = list(KINDS)
        random.shuffle(order)
        for kind in order:
            started = time.perf_counter()
            status, data = post(port, "/api/v1/cases/status", bodies[kind][n])
            elapsed = (time.perf_counter() - started) * 1000
            if status != 403 or (expected is not None and data != expected):
                raise RuntimeError(f"{kind}: {status} {data[:200]!r}")
            expected = data
            if n >= warmup:
                timings[kind].append(elapsed)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20, help="rounds run first, not counted")
    parser.add_argument("--quick", action="store_true", help="small run, to check it works")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup = 30, 5

    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database("hashbank_bench_timing")
        unlimited = "1000000/h"
        env = production_env(
            url,
            Path(tmp),
            HASHBANK_RATE_CASE_CREATE=unlimited,
            HASHBANK_RATE_CASE_STATUS=unlimited,
        )
        manage(env, "migrate", "--noinput")
        port = free_port()
        with gunicorn(env, port=port, workers=1):
            timings = measure(port, args.rounds, args.warmup)

    medians = {kind: statistics.median(timings[kind]) for kind in KINDS}
    spread = max(medians.values()) - min(medians.values())
    result = {
        "rounds": args.rounds,
        "median_ms": {kind: round(value, 3) for kind, value in medians.items()},
        "p10_ms": {kind: round(percentile(timings[kind], 10), 3) for kind in KINDS},
        "p90_ms": {kind: round(percentile(timings[kind], 90), 3) for kind in KINDS},
        "spread_ms": round(spread, 3),
        "target_spread_ms": TARGET_SPREAD_MS,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.rounds} interleaved rounds, load average {result['load_average']}")
        for kind in KINDS:
            print(
                f"  {kind:8} median {medians[kind]:8.3f} ms"
                f"   p10 {result['p10_ms'][kind]:8.3f}   p90 {result['p90_ms'][kind]:8.3f}"
            )
        verdict = "within" if spread <= TARGET_SPREAD_MS else "OVER"
        print(f"  spread   {spread:8.3f} ms ({verdict} the {TARGET_SPREAD_MS} ms target)")
    return 0 if spread <= TARGET_SPREAD_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
