#!/usr/bin/env python
"""Benchmark exact PDQ matching at radius 31: ``hashbank.pdq_index`` against the
``threatexchange`` library's ``PDQIndex`` and faiss's binary indexes, on one core.

The data: N random hashes (default 1,000,000) plus, for each of Q query hashes (default
1,000), a planted near-duplicate at every distance 0..33, shuffled together. Recall is the
share of planted neighbours within 31 that come back with their true distance; a *wrong*
result is anything else (a planted neighbour at 32 or 33, or a wrong distance).

Each engine runs in its own process, so its memory is measured alone: RSS before and after
the build (freed heap memory handed back to the OS first), and the peak during the build and
the batches. Per engine: build time; single queries, one by one (mean
and p99, wall clock, and the mean CPU time, which a loaded machine inflates less); and the
same queries in batches of 1,000 (per query); then the same for as many random query hashes
with nothing near them. Thread pools are held to one thread.

    .venv/bin/python scripts/bench_match.py
    .venv/bin/python scripts/bench_match.py --n 100000 --queries 200 --engines hashbank

Engines: ``hashbank`` (this repository's index), ``threatexchange`` (its ``PDQIndex``:
faiss ``IndexBinaryMultiHash``; batches through its ``search_with_distance_in_result``),
``faiss-flat`` (``IndexBinaryFlat``, an exhaustive scan) and ``faiss-mih``
(``IndexBinaryMultiHash``, 16 tables of 16 bits, one bit flip, as threatexchange sets it).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchlib import percentile

RADIUS = 31
PLANTED = range(34)  # distances 0..33: the last two must not come back
BATCH = 1000
ENGINES = ("hashbank", "threatexchange", "faiss-flat", "faiss-mih")
# Each engine's process starts with these, so numpy's and faiss's pools have one thread.
ONE_THREAD = {
    v: "1"
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
}

Matches = list[tuple[int, int]]


def make_data(n: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, query vectors, planted) where planted[i, d] is the id of query i's
    neighbour at distance d. Ids are row numbers."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 256, (queries, 32), dtype=np.uint8)
    bits = np.unpackbits(np.repeat(q, len(PLANTED), axis=0), axis=1)
    dist = np.tile(np.array(PLANTED), queries)
    # Flip the d bits with the smallest random keys: d distinct random bits per row.
    ranks = np.argsort(rng.random(bits.shape), axis=1).argsort(axis=1)
    bits ^= (ranks < dist[:, None]).astype(np.uint8)
    near = np.packbits(bits, axis=1)
    vectors = np.concatenate([rng.integers(0, 256, (n, 32), dtype=np.uint8), near])
    order = rng.permutation(len(vectors))
    vectors = vectors[order]
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    planted = where[n:].reshape(queries, len(PLANTED))
    return vectors, q, planted


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def release_free_memory() -> None:
    """Hand freed heap memory back to the OS, so the RSS delta of the build is the build's
    and not memory the allocator kept from making the data."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


class Engine:
    """What the benchmark needs of an index: build it, query one, query many."""

    arrays_mib: float | None = None

    def build(self, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def query(self, q: np.ndarray, q_hex: str) -> Matches:
        raise NotImplementedError

    def query_many(self, qs: np.ndarray, qs_hex: list[str]) -> list[Matches]:
        raise NotImplementedError


class HashbankEngine(Engine):
    def build(self, vectors: np.ndarray) -> None:
        from hashbank.pdq_index import PDQIndex

        self.index = PDQIndex(vectors, np.arange(len(vectors)))
        self.arrays_mib = self.index.nbytes / 2**20

    def query(self, q: np.ndarray, q_hex: str) -> Matches:
        return self.index.query(q, RADIUS)

    def query_many(self, qs: np.ndarray, qs_hex: list[str]) -> list[Matches]:
        return self.index.query_many(qs, RADIUS)


class ThreatExchangeEngine(Engine):
    def prepare(self, vectors: np.ndarray) -> None:
        # Its API takes hex strings; making them is not timed, but the index keeps them,
        # so they count in its memory.
        self.entries = [(bytes(v).hex(), i) for i, v in enumerate(vectors)]

    def build(self, vectors: np.ndarray) -> None:
        from threatexchange.signal_type.pdq.pdq_index import PDQIndex

        self.index = PDQIndex(self.entries)
        del self.entries

    def query(self, q: np.ndarray, q_hex: str) -> Matches:
        return [(m.metadata, m.similarity_info.distance) for m in self.index.query(q_hex)]

    def query_many(self, qs: np.ndarray, qs_hex: list[str]) -> list[Matches]:
        found = self.index.index.search_with_distance_in_result(qs_hex, RADIUS)
        return [[(int(i), int(d)) for i, _, d in found[h]] for h in qs_hex]


class FaissEngine(Engine):
    def __init__(self, multi_hash: bool) -> None:
        self.multi_hash = multi_hash

    def build(self, vectors: np.ndarray) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        self.index: Any
        if self.multi_hash:
            self.index = faiss.IndexBinaryMultiHash(256, 16, 16)
            self.index.nflip = RADIUS // 16
        else:
            self.index = faiss.IndexBinaryFlat(256)
            self.arrays_mib = vectors.nbytes / 2**20
        self.index.add(vectors)

    def _results(self, lims: np.ndarray, dist: np.ndarray, ids: np.ndarray) -> list[Matches]:
        return [
            list(zip(ids[a:b].tolist(), dist[a:b].tolist(), strict=True))
            for a, b in zip(lims[:-1].tolist(), lims[1:].tolist(), strict=True)
        ]

    def query(self, q: np.ndarray, q_hex: str) -> Matches:
        lims, dist, ids = self.index.range_search(q[None], RADIUS + 1)  # strictly below
        return self._results(lims, dist, ids)[0]

    def query_many(self, qs: np.ndarray, qs_hex: list[str]) -> list[Matches]:
        return self._results(*self.index.range_search(qs, RADIUS + 1))


def make_engine(name: str) -> Engine:
    if name == "hashbank":
        return HashbankEngine()
    if name == "threatexchange":
        return ThreatExchangeEngine()
    return FaissEngine(multi_hash=name == "faiss-mih")


def score(
    results: Sequence[Matches], vectors: np.ndarray, qs: np.ndarray, planted: np.ndarray
) -> tuple[int, int, int]:
    """(planted neighbours found, planted neighbours within the radius, wrong results)."""
    found = wrong = 0
    want_d = np.array(PLANTED)
    for i, matches in enumerate(results):
        got = dict(matches)
        for id_, d in zip(planted[i].tolist(), want_d.tolist(), strict=True):
            if d <= RADIUS and got.get(id_) == d:
                found += 1
        ids = np.array(list(got), dtype=np.int64)
        true_d = np.unpackbits(vectors[ids] ^ qs[i], axis=1).sum(axis=1) if len(ids) else []
        wrong += sum(
            1
            for (id_, d), t in zip(got.items(), np.asarray(true_d).tolist(), strict=True)
            if d != t or t > RADIUS
        )
    return found, int((want_d <= RADIUS).sum()) * len(results), wrong


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def child(args: argparse.Namespace) -> dict[str, Any]:
    vectors, qs, planted = make_data(args.n, args.queries, args.seed)
    qs_hex = [bytes(q).hex() for q in qs]
    engine = make_engine(args.child)
    release_free_memory()
    reset_peak()
    before, _ = rss_mib()
    if isinstance(engine, ThreatExchangeEngine):
        engine.prepare(vectors)
    _, build_s, _ = timed(lambda: engine.build(vectors))
    _, build_peak = rss_mib()
    release_free_memory()  # what the index holds, not what the build used and freed
    after, _ = rss_mib()

    for i in range(min(20, len(qs))):  # warm up
        engine.query(qs[i], qs_hex[i])
    singles: list[Matches] = []
    wall: list[float] = []
    cpu: list[float] = []
    for i in range(len(qs)):
        matches, w, c = timed(partial(engine.query, qs[i], qs_hex[i]))
        singles.append(matches)
        wall.append(w)
        cpu.append(c)
    found, planted_within, wrong = score(singles, vectors, qs, planted)

    reset_peak()
    batch_wall: list[float] = []
    batch_cpu: list[float] = []
    for _ in range(args.batch_repeats):
        batched: list[Matches] = []
        w_total = c_total = 0.0
        for b in range(0, len(qs), BATCH):
            out, w, c = timed(partial(engine.query_many, qs[b : b + BATCH], qs_hex[b : b + BATCH]))
            batched += out
            w_total += w
            c_total += c
        batch_wall.append(w_total / len(qs))
        batch_cpu.append(c_total / len(qs))
    _, batch_peak = rss_mib()
    b_found, _, b_wrong = score(batched, vectors, qs, planted)

    result: dict[str, Any] = {
        "engine": args.child,
        "n": len(vectors),
        "queries": len(qs),
        "build_s": build_s,
        "arrays_mib": engine.arrays_mib,
        "rss_delta_mib": after - before,
        "build_peak_delta_mib": build_peak - before,
        "batch_peak_delta_mib": batch_peak - before,
        "single_mean_ms": 1000 * statistics.fmean(wall),
        "single_p99_ms": 1000 * percentile(wall, 99),
        "single_cpu_mean_ms": 1000 * statistics.fmean(cpu),
        "batch_ms": 1000 * statistics.median(batch_wall),
        "batch_cpu_ms": 1000 * statistics.median(batch_cpu),
        "recall": found / planted_within,
        "batch_recall": b_found / planted_within,
        "wrong": wrong + b_wrong,
    }
    result.update(miss_costs(engine, args.queries, args.seed))
    if isinstance(engine, HashbankEngine) and args.updates:
        result.update(update_costs(engine, args.updates, args.seed))
    return result


def miss_costs(engine: Engine, count: int, seed: int) -> dict[str, float]:
    """Queries with nothing near them in the index (most real lookups): single queries'
    mean time, and per query in batches of 1,000 (wall clock and CPU)."""
    qs = np.random.default_rng(seed + 2).integers(0, 256, (count, 32), dtype=np.uint8)
    qs_hex = [bytes(q).hex() for q in qs]
    single = [timed(partial(engine.query, qs[i], qs_hex[i])) for i in range(count)]
    batches = [
        timed(partial(engine.query_many, qs[b : b + BATCH], qs_hex[b : b + BATCH]))
        for b in range(0, count, BATCH)
    ]
    return {
        "miss_single_ms": 1000 * statistics.fmean(w for _, w, _ in single),
        "miss_single_cpu_ms": 1000 * statistics.fmean(c for _, _, c in single),
        "miss_batch_ms": 1000 * sum(w for _, w, _ in batches) / count,
        "miss_batch_cpu_ms": 1000 * sum(c for _, _, c in batches) / count,
    }


def update_costs(engine: HashbankEngine, count: int, seed: int) -> dict[str, float]:
    """Single adds then single removes: the mean, and the slowest (it folds the pending
    adds into the tables: a rebuild)."""
    rng = np.random.default_rng(seed + 1)
    new = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    first = len(engine.index) + 10
    adds = [timed(partial(engine.index.add, new[i : i + 1], [first + i]))[1] for i in range(count)]
    gone = rng.choice(first - 10, size=count, replace=False)
    removes = [timed(partial(engine.index.remove, [int(gone[i])]))[1] for i in range(count)]
    return {
        "updates": count,
        "add_mean_ms": 1000 * statistics.fmean(adds),
        "add_max_s": max(adds),
        "remove_mean_ms": 1000 * statistics.fmean(removes),
        "remove_max_s": max(removes),
    }


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="random hashes (1,000,000)")
    parser.add_argument("--queries", type=int, default=1000, help="query hashes (1,000)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--batch-repeats", type=int, default=3, help="median of (3)")
    parser.add_argument("--updates", type=int, default=4097, help="single adds/removes timed")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if any(os.environ.get(k) != v for k, v in ONE_THREAD.items()):
            parser.error("--child runs in the process main() starts, with one thread")
        print(json.dumps(child(args)))
        return 0

    command = " ".join([".venv/bin/python", "scripts/bench_match.py", *sys.argv[1:]])
    print(f"# {command}\n# load average at start: {load()}", flush=True)
    rows: list[dict[str, Any]] = []
    for name in args.engines.split(","):
        cmd = [sys.executable, __file__, "--child", name, "--n", str(args.n)]
        cmd += ["--queries", str(args.queries), "--seed", str(args.seed)]
        cmd += ["--batch-repeats", str(args.batch_repeats), "--updates", str(args.updates)]
        env = {**os.environ, **ONE_THREAD}
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"# {name} done, load average {load()}: {rows[-1]}", flush=True)

    n, q = rows[0]["n"], rows[0]["queries"]
    print(f"\n{n:,} hashes ({args.n:,} random + {n - args.n:,} planted), {q:,} queries,")
    print(f"radius {RADIUS}, one thread. Times are wall clock; CPU time in brackets.\n")
    print(
        "| engine | build | memory: arrays / RSS Δ / peak Δ | single query mean (CPU) | p99 "
        "| batch of 1,000, per query (CPU) | recall | wrong |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        arrays = f"{r['arrays_mib']:.0f}" if r["arrays_mib"] is not None else "–"
        peak = max(r["build_peak_delta_mib"], r["batch_peak_delta_mib"])
        print(
            f"| {r['engine']} | {r['build_s']:.1f} s "
            f"| {arrays} / {r['rss_delta_mib']:.0f} / {peak:.0f} MiB "
            f"| {r['single_mean_ms']:.3f} ms ({r['single_cpu_mean_ms']:.3f}) "
            f"| {r['single_p99_ms']:.3f} ms "
            f"| {r['batch_ms']:.4f} ms ({r['batch_cpu_ms']:.4f}) "
            f"| {100 * min(r['recall'], r['batch_recall']):.2f} % | {r['wrong']} |"
        )
    print(
        f"\nThe same for {q:,} random query hashes with nothing within {RADIUS} of them "
        "(most real lookups):\n"
    )
    print("| engine | single query mean (CPU) | batch of 1,000, per query (CPU) |")
    print("|---|---|---|")
    for r in rows:
        print(
            f"| {r['engine']} | {r['miss_single_ms']:.3f} ms ({r['miss_single_cpu_ms']:.3f}) "
            f"| {r['miss_batch_ms']:.4f} ms ({r['miss_batch_cpu_ms']:.4f}) |"
        )
    for r in rows:
        if "updates" in r:
            print(
                f"\n{r['engine']}: {r['updates']:,} single adds: mean {r['add_mean_ms']:.2f} ms, "
                f"slowest {r['add_max_s']:.3f} s; {r['updates']:,} single removes: "
                f"mean {r['remove_mean_ms']:.3f} ms, slowest {r['remove_max_s']:.3f} s"
            )
    print(f"\n# load average at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
