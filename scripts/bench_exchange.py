#!/usr/bin/env python
"""Benchmark the signed exchange, everything on this machine over loopback.

1. Append: 1,000,000 log entries to the adult list through ``hashbank.log.log_append``
   in batches of 10,000, signing a checkpoint after each batch (target < 30 s, issue 11).
   The hashes themselves are loaded beforehand with COPY (not timed); the full
   publish path (``hashes_hold``) is timed separately on a smaller batch.
2. Native sync: ``hashbank-sync`` (scripts/partner_sync.py) pulls and verifies the
   whole list from gunicorn on PostgreSQL (target >= 100,000 entries/s), once at
   100k entries and once at 1M, to show memory does not grow with the list.
3. StopNCII path: the unmodified ``threatexchange`` StopNCIIAPI client fetches the
   same list through /stopncii/v1 (native should be >= 10x faster).
4. Checkpoint latency under 16 concurrent clients (target p99 < 20 ms).
5. Peak RSS of the gunicorn worker(s) and of each client.

    .venv/bin/python scripts/bench_exchange.py                # full run (~3 min)
    .venv/bin/python scripts/bench_exchange.py --entries 200000

Needs PostgreSQL (postgres@127.0.0.1:5432, trust) and Redis (127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchlib import (
    REPO,
    free_port,
    fresh_database,
    gunicorn,
    manage,
    percentile,
    production_env,
    run_measured,
)

BATCH = 10_000


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gunicorn_workers(master_pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master_pid)], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def load_hashes(count: int, start: int) -> list[int]:
    """COPY ``count`` published hashes (3 PDQ : 1 MD5) with holds; return their ids."""
    from django.db import connection
    from django.utils import timezone

    from hashbank.models import Hash, HashList

    hash_list = HashList.objects.get(slug="adult")
    now = timezone.now()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY hashbank_hash (hash_list_id, algorithm, value, quality, first_seen, published,"
            " disabled, under_review, review_hold, changed_at, origin) FROM STDIN"
        ) as copy:
            for i in range(count):
                if i % 4 == 3:
                    row = ("md5", secrets.token_hex(16), None)
                else:
                    row = ("pdq", secrets.token_hex(32), 50 + i % 51)
                copy.write_row((hash_list.pk, *row, now, True, False, False, False, now, ""))
    ids = list(
        Hash.objects.filter(hash_list=hash_list).order_by("pk").values_list("pk", flat=True)
    )[start : start + count]
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY hashbank_hold (hash_id, holder_kind, holder_id, active, created_at, origin)"
            " FROM STDIN"
        ) as copy:
            for pk in ids:
                copy.write_row((pk, "peer", 0, True, now, ""))
    return ids


def append(ids: list[int]) -> tuple[float, int]:
    """Append an add entry per hash, BATCH at a time, each batch under the list lock
    with a signed checkpoint. Returns (seconds, checkpoints signed)."""
    from django.db import transaction

    from hashbank import tlog
    from hashbank.log import PendingEntry, current_checkpoint, log_append, log_timestamp
    from hashbank.models import Hash
    from hashbank.services import hash_list_lock

    rows = dict(
        (pk, (algorithm, value, quality))
        for pk, algorithm, value, quality in Hash.objects.filter(pk__in=ids).values_list(
            "pk", "algorithm", "value", "quality"
        )
    )
    list_id = Hash.objects.get(pk=ids[0]).hash_list_id
    started = time.perf_counter()
    checkpoints = 0
    for offset in range(0, len(ids), BATCH):
        with transaction.atomic():
            hash_list = hash_list_lock(hash_list_id=list_id)
            ts = log_timestamp(hash_list)
            entries = []
            for pk in ids[offset : offset + BATCH]:
                algorithm, value, quality = rows[pk]
                leaf = tlog.encode_add(
                    salt=secrets.token_bytes(tlog.SALT_SIZE),
                    algorithm=algorithm,
                    value=value,
                    quality=quality,
                    timestamp=ts,
                )
                entries.append(PendingEntry(op="add", leaf=leaf, hash_id=pk))
            log_append(hash_list=hash_list, entries=entries, timestamp=ts)
            current_checkpoint(
                slug=hash_list.slug, size=hash_list.log_size, tree_edge=hash_list.tree_edge
            )
            checkpoints += 1
    return time.perf_counter() - started, checkpoints


def publish_path(count: int) -> float:
    """hashes/s through the full publish path (hashes_hold: hash + hold + log)."""
    from hashbank.models import HashList, Holder, HolderKind
    from hashbank.services import HashInput, hashes_hold

    hash_list = HashList.objects.get(slug="adult")
    items = [HashInput("pdq", secrets.token_hex(32), 90) for _ in range(count)]
    holder = Holder(HolderKind.PEER, 1)
    started = time.perf_counter()
    for offset in range(0, count, BATCH):
        hashes_hold(hash_list=hash_list, hashes=items[offset : offset + BATCH], holder=holder)
    return count / (time.perf_counter() - started)


def run_sync(base: str, token_file: Path, vkey: str, state_dir: Path) -> dict:
    """One full verified sync in a child process; returns its JSON summary + peak RSS."""
    cmd = [
        sys.executable, "-m", "scripts.partner_sync", "sync",
        "--state-dir", str(state_dir), "--base-url", base, "--list", "adult",
        "--token-file", str(token_file), "--vkey", vkey, "--json", "--no-progress",
    ]  # fmt: skip
    started = time.perf_counter()
    code, out, err, peak = run_measured(cmd, cwd=REPO)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"sync failed ({code}): {err[-2000:]}")
    summary = json.loads(out)
    summary["wall_seconds"] = round(elapsed, 2)
    summary["peak_rss_mib"] = round(peak, 1)
    return summary


STOPNCII_CLIENT = r"""
import json, sys, time
from threatexchange.exchanges.clients.stopncii.api import StopNCIIAPI
api = StopNCIIAPI(subscription_key=sys.argv[2], fetch_function_key=sys.argv[3],
                  base_url_override=sys.argv[1])
started = time.perf_counter()
records = {}
for page in api.fetch_hashes_iter(start_timestamp=0):
    for r in page.hashRecords:
        records[(r.signalType, r.hashValue)] = r.hashStatus
elapsed = time.perf_counter() - started
print(json.dumps({"records": len(records), "seconds": elapsed}))
"""


def run_stopncii(base: str, creds: dict[str, str]) -> dict:
    code, out, err, peak = run_measured(
        [sys.executable, "-c", STOPNCII_CLIENT, base + "/stopncii/v1",
         creds["subscription_key"], creds["fetch_function_key"]]
    )  # fmt: skip
    if code != 0:
        raise RuntimeError(f"StopNCII fetch failed: {err[-2000:]}")
    return {**json.loads(out), "peak_rss_mib": round(peak, 1)}


def checkpoint_latency(port: int, token: str, clients: int, requests: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        barrier.wait()
        for _ in range(requests):
            t0 = time.perf_counter()
            conn.request(
                "GET",
                "/exchange/v1/lists/adult/checkpoint",
                headers={"Authorization": f"Bearer {token}"},
            )
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - t0) * 1000)
            assert response.status == 200
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="size of the first sync")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, object] = {"entries": args.entries}

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = fresh_database("hashbank_bench_exchange")
        env = production_env(url, tmp / "var")
        manage(env, "migrate", "--noinput")
        os.environ.update(env)
        import django

        django.setup()

        ids = load_hashes(args.entries, 0)
        small = min(args.small, args.entries)
        t_small, cps_small = append(ids[:small])
        # First sync at the small size (for memory comparison), after starting the server.
        created = json.loads(manage(env, "partner_create", "Bench Platform", "--lists", "adult"))
        creds = created["credentials"]
        vkey = created["verifier_keys"]["adult"][0]["vkey"]
        token_file = tmp / "token"
        token_file.write_text(creds["bearer"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with gunicorn(env, port=port, workers=args.workers, threads=args.threads) as server:
            sync_small = run_sync(base, token_file, vkey, tmp / "sync-small")
            t_rest, cps_rest = append(ids[small:])
            append_seconds = t_small + t_rest
            results["append"] = {
                "entries": len(ids),
                "seconds": round(append_seconds, 2),
                "entries_per_s": round(len(ids) / append_seconds),
                "checkpoints_signed": cps_small + cps_rest,
                "target_s": 30,
            }
            sync_full = run_sync(base, token_file, vkey, tmp / "sync-full")
            results["native_sync"] = {
                "small": sync_small,
                "full": sync_full,
                "target_entries_per_s": 100_000,
            }
            workers = gunicorn_workers(server.pid)
            results["server_worker_peak_rss_mib_after_native_sync"] = [
                round(peak_rss_mib(p), 1) for p in workers
            ]
            stop = run_stopncii(base, creds)
            stop["records_per_s"] = round(stop["records"] / stop["seconds"])
            results["stopncii_fetch"] = stop
            native_rate = sync_full["size"] / sync_full["wall_seconds"]
            results["native_vs_stopncii"] = round(native_rate / stop["records_per_s"], 1)
            lat = checkpoint_latency(port, creds["bearer"], clients=16, requests=200)
            results["checkpoint_latency_ms"] = {
                "clients": 16,
                "requests": len(lat),
                "p50": round(percentile(lat, 50), 2),
                "p99": round(percentile(lat, 99), 2),
                "target_p99": 20,
            }
            results["server_worker_peak_rss_mib"] = [round(peak_rss_mib(p), 1) for p in workers]
        results["publish_path_hashes_per_s"] = round(publish_path(50_000))

    sync_rate = (
        results["native_sync"]["full"]["size"] / results["native_sync"]["full"]["wall_seconds"]
    )  # type: ignore[index]
    results["targets_met"] = bool(
        results["append"]["seconds"] < 30  # type: ignore[index]
        and sync_rate >= 100_000
        and results["native_vs_stopncii"] >= 10  # type: ignore[operator]
        and results["checkpoint_latency_ms"]["p99"] < 20  # type: ignore[index]
    )
    print(json.dumps(results, indent=2))
    return 0 if results["targets_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
