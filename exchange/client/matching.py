"""PDQ near-matches in a partner's store (numpy; only the command line's ``match`` needs it).

The distinct published PDQ values are cached next to the store as an (n, 4) uint64 array,
``pdq-<size>-<root>.npy`` (word k = hex digits 16k..16k+15), rebuilt when the store moves to
another log size; a query is then a vectorised XOR and popcount over the array.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Final

import numpy as np

from exchange.client.errors import ConfigError
from exchange.client.store import LocalStore

DEFAULT_PDQ_DISTANCE: Final = 31
PDQ_BITS: Final = 256
#: Rows compared per numpy step (bounds the temporary arrays).
MATCH_CHUNK = 1 << 18
#: Values per SQLite query while the cache is built: ~4 MiB of hex text.
CACHE_CHUNK = 1 << 16

_PDQ_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")


def _row_popcount(x: np.ndarray) -> np.ndarray:
    counts: np.ndarray = np.bitwise_count(x).sum(axis=1, dtype=np.int32)
    return counts


def _pdq_words(value: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(value), dtype=">u8").astype(np.uint64)


def _cache_path(store: LocalStore, size: int, root: bytes) -> Path:
    return store.dir / f"pdq-{size}-{root.hex()[:16]}.npy"


def pdq_array(store: LocalStore) -> np.ndarray:
    """The distinct PDQ values of ``store`` as an (n, 4) uint64 array, from the cache.

    The meta row and the values are read in one snapshot; the cache is written chunk by
    chunk, so building it takes memory for one chunk, whatever the size of the list.
    """
    conn = store.conn
    conn.execute("BEGIN")
    try:
        _, size, root = store.verified_tree()
        path = _cache_path(store, size, root)
        if path.exists():
            try:
                cached: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
                if cached.dtype == np.uint64 and cached.ndim == 2 and cached.shape[1] == 4:
                    return cached
            except (OSError, ValueError):
                pass
        (count,) = conn.execute(
            "SELECT count(DISTINCT value) FROM hashes WHERE algorithm = 'pdq'"
        ).fetchone()
        fd, tmp = tempfile.mkstemp(dir=store.dir, prefix=".pdq-", suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": "<u8", "fortran_order": False, "shape": (count, 4)}
                )
                last, written = "", 0
                while True:  # SQLite concatenates (fast), in chunks
                    text, last, n = conn.execute(
                        "SELECT group_concat(value, ''), max(value), count(*) FROM (SELECT "
                        "DISTINCT value FROM hashes WHERE algorithm = 'pdq' AND value > ? "
                        "ORDER BY value LIMIT ?)",
                        (last, CACHE_CHUNK),
                    ).fetchone()
                    if n:
                        chunk = np.frombuffer(bytes.fromhex(text), dtype=">u8")
                        f.write(chunk.astype("<u8").tobytes())
                        written += n
                    if n < CACHE_CHUNK:
                        break
                if written != count:  # pragma: no cover - one snapshot, so never
                    raise ConfigError("the store changed while the PDQ cache was built")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    finally:
        conn.execute("COMMIT")
    arr: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    for old in store.dir.glob("pdq-*.npy"):
        if old != path:
            with contextlib.suppress(OSError):
                old.unlink()
    return arr


def refresh_pdq_cache(store: LocalStore) -> None:
    """Build the PDQ cache for the current log size now (``match`` is then instant)."""
    pdq_array(store)


def pdq_matches(
    store: LocalStore, value: str, max_distance: int = DEFAULT_PDQ_DISTANCE
) -> list[tuple[str, int]]:
    """Every distinct published PDQ value within Hamming distance ``max_distance``.

    Returns ``(value, distance)`` pairs sorted by distance, then value.
    """
    value = value.strip().lower()
    if _PDQ_HEX_RE.fullmatch(value) is None:
        raise ConfigError(f"a PDQ hash is 64 hex digits, not {value!r}")
    if type(max_distance) is not int or not 0 <= max_distance <= PDQ_BITS:
        raise ConfigError(f"the distance must be an integer in 0..{PDQ_BITS}")
    arr = pdq_array(store)
    q = _pdq_words(value)
    hits: list[np.ndarray] = []
    dists: list[np.ndarray] = []
    for lo in range(0, len(arr), MATCH_CHUNK):
        d = _row_popcount(np.bitwise_xor(arr[lo : lo + MATCH_CHUNK], q))
        (idx,) = np.nonzero(d <= max_distance)
        hits.append(idx + lo)
        dists.append(d[idx])
    if not hits:
        return []
    idx = np.concatenate(hits)
    dist = np.concatenate(dists)
    out = [
        ("".join(f"{int(w):016x}" for w in arr[i]), int(d))
        for i, d in zip(idx.tolist(), dist.tolist(), strict=True)
    ]
    out.sort(key=lambda t: (t[1], t[0]))
    return out
