"""PDQ near-matches in a partner's store (numpy; only the command line's ``match`` needs it).

The distinct published PDQ values are cached next to the store as an (n, 4) big-endian
uint64 array, ``pdq-<size>-<root>.npy`` (word k = hex digits 16k..16k+15, so a row's bytes
are the hash's bytes in order), and indexed for near matches
(``hashbank.pdq_index``, the bank's own index, saved as ``pdq-<size>-<root>.index/``), both
rebuilt when the store moves to another log size; a query then reads a few buckets of the
index rather than every row.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Final

import numpy as np

from exchange.client.errors import ConfigError
from exchange.client.store import LocalStore
from hashbank.pdq_index import PDQIndex

DEFAULT_PDQ_DISTANCE: Final = 31
PDQ_BITS: Final = 256
#: Values per SQLite query while the cache is built: ~4 MiB of hex text.
CACHE_CHUNK = 1 << 16

_PDQ_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")
_WORD: Final = np.dtype(">u8")


def _cache_path(store: LocalStore, size: int, root: bytes) -> Path:
    return store.dir / f"pdq-{size}-{root.hex()[:16]}.npy"


def pdq_array(store: LocalStore) -> np.ndarray:
    """The distinct PDQ values of ``store`` as an (n, 4) big-endian uint64 array, from the cache.

    The meta row and the values are read in one snapshot; building the cache takes about
    twice the cache's size in memory (32 bytes a hash), less than indexing it.
    """
    return _pdq_cache(store)[0]


def _pdq_cache(store: LocalStore) -> tuple[np.ndarray, Path]:
    """:func:`pdq_array`, and the cache file it was read from."""
    conn = store.conn
    conn.execute("BEGIN")
    try:
        _, size, root = store.verified_tree()
        path = _cache_path(store, size, root)
        if path.exists():
            try:
                cached: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
                if cached.dtype == _WORD and cached.ndim == 2 and cached.shape[1] == 4:
                    return cached, path
            except (OSError, ValueError):
                pass
        distinct = _distinct_pdq_values(conn)
        fd, tmp = tempfile.mkstemp(dir=store.dir, prefix=".pdq-", suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": _WORD.str, "fortran_order": False, "shape": (len(distinct), 4)}
                )
                f.write(distinct.data)  # big-endian words: the hashes' bytes as they are
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
    for old in store.dir.glob("pdq-*.index"):
        if old != _index_path(path):
            shutil.rmtree(old, ignore_errors=True)
    return arr, path


def _distinct_pdq_values(conn: sqlite3.Connection) -> np.ndarray:
    """The store's distinct PDQ values in order, one 32-byte item (``V32``) per hash.

    Read in table order, without the lookup index (a sync builds it while this runs), and
    sorted here: unstructured 32-byte items compare like their bytes, i.e. in hex order.
    """
    (count,) = conn.execute("SELECT count(*) FROM hashes WHERE algorithm = 'pdq'").fetchone()
    values = np.empty((count, PDQ_BITS // 8), dtype=np.uint8)
    last, filled = -1, 0
    while True:  # SQLite concatenates (fast), in chunks
        text, last, n = conn.execute(
            "SELECT group_concat(value, ''), max(add_index), count(*) FROM (SELECT add_index, "
            "value FROM hashes NOT INDEXED WHERE add_index > ? AND algorithm = 'pdq' "
            "ORDER BY add_index LIMIT ?)",
            (last, CACHE_CHUNK),
        ).fetchone()
        if n:
            chunk = np.frombuffer(bytes.fromhex(text), dtype=np.uint8)
            values[filled : filled + n] = chunk.reshape(n, -1)
            filled += n
        if n < CACHE_CHUNK:
            break
    if filled != count:  # pragma: no cover - one snapshot, so never
        raise ConfigError("the store changed while the PDQ cache was built")
    items = values.view(f"V{PDQ_BITS // 8}").ravel()
    items.sort()
    first = np.ones(len(items), dtype=bool)
    first[1:] = items[1:] != items[:-1]
    distinct: np.ndarray = items[first]
    return distinct


def _index_path(cache: Path) -> Path:
    return cache.with_suffix(".index")  # pdq-<size>-<root>.index/, beside the cache


def pdq_index(store: LocalStore) -> tuple[PDQIndex, np.ndarray]:
    """A PDQ index over :func:`pdq_array` (id i is row i), and the array.

    Built and saved beside the cache the first time, then mapped from disk (milliseconds).
    """
    arr, cache = _pdq_cache(store)
    path = _index_path(cache)
    with contextlib.suppress(FileNotFoundError, ValueError):
        index = PDQIndex.load(path)
        if len(index) == len(arr):
            return index, arr
    shutil.rmtree(path, ignore_errors=True)
    vectors = arr.view(np.uint8).reshape(-1, 32)  # the hashes' bytes in order, not copied
    index = PDQIndex(vectors, np.arange(len(arr)))
    with contextlib.suppress(FileExistsError):  # another `match` saved it first
        index.save(path)
    return index, arr


def refresh_pdq_cache(store: LocalStore) -> None:
    """Build the PDQ cache and index for the current log size now (``match`` is then instant)."""
    pdq_index(store)


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
    index, arr = pdq_index(store)
    q = np.frombuffer(bytes.fromhex(value), dtype=np.uint8)
    # By distance, then id: the cache's rows are in value order, so then by value.
    return [("".join(f"{int(w):016x}" for w in arr[i]), d) for i, d in index.query(q, max_distance)]
