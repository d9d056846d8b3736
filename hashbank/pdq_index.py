"""Exact Hamming-radius search over PDQ hashes: multi-index hashing in numpy.

A pure module (numpy only, no Django) shared by the bank (near-duplicates shown to reviewers,
allowlist screening) and the partner client (``hashbank-sync match``).

A hash is a ``numpy.uint8`` vector of 32 bytes in hex order (``bytes.fromhex(hex64)``); an
index holds hashes under int64 ids. :meth:`PDQIndex.query` returns *every* id whose hash is
within the radius, with its distance: the lookup is exact, not approximate.

How (multi-index hashing, Norouzi, Punjani and Fleet, "Fast Exact Search in Hamming Space with
Multi-Index Hashing", 2014; the PDQ paper's note on MIH): by the pigeonhole principle a hash
within distance ``r`` of the query agrees with it to within ``t = r // 8`` bits on at least one
of its eight 32-bit words, and within ``t // 2`` bits on one of that word's two 16-bit halves.
The index keeps, for each of the 16 halves, the rows bucketed by that half's value (a CSR
table, 65,536 buckets) and, beside each row, the value of the other half of its word. A query
visits the buckets within ``t // 2`` bit flips of each of its halves (17 buckets each at the
PDQ match radius 31), drops the rows whose whole word is more than ``t`` bits off using the
stored other half (a sequential read, no random access to the hashes), and only then compares
the few survivors' full 256 bits. At 1M random hashes a query reads ~4,000 bucket entries and
verifies ~10 hashes. Radii of 64 and above (never used for PDQ matching) scan every hash.

Batches: :meth:`PDQIndex.query_many` sorts a batch's probes by bucket, so the tables are read
in one near-sequential sweep instead of at random (the reads, not the arithmetic, are what a
query costs), and reads the buckets' entries in cache-sized blocks. Every step is one numpy
pass over the whole batch, and each pass costs ~1 ns an entry, so the passes are what is
counted: an entry's position and all that its probe's rule needs (the query, the query's
other half of the word, the flip's weight, and whether the half is odd) are repeated out of
the probe as one int64; a near-duplicate found through several of its words is kept once by
one sort of the (query, row) pairs packed in an int64 (numpy sorts int64 with SIMD, ~6 ns an
element here); and the matches are put in order by one sort of (query, distance, row) packed
in an int64, which is (distance, id) order because the tables hold their rows in id order.

Updates: :meth:`PDQIndex.add` puts new hashes in a small unindexed *delta* that queries scan;
:meth:`PDQIndex.remove` marks indexed rows dead. When the delta or the dead rows grow past a
bound, the tables are rebuilt (as long as building the index afresh: seconds at 1M hashes),
so results are always current and updates cost little on average.

One-shot callers (a command line) save the index once with :meth:`PDQIndex.save` and map it
back with :meth:`PDQIndex.load` in milliseconds. ``scripts/bench_match.py`` measures all of
this against threatexchange and faiss; BENCHMARKS.md has the figures.

Memory: 137 bytes a hash (the hash, its id and live flag, and 16 table entries of a 4-byte
row number and a 2-byte half) and 4 MiB of bucket offsets: 135 MiB for 1M hashes; 16 bytes
a hash more once ids are looked up (add, remove, ``in``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_RADIUS",
    "PDQ_BITS",
    "PDQ_BYTES",
    "PDQIndex",
    "vectors_from_hex",
]

PDQ_BYTES: Final = 32
PDQ_BITS: Final = 256
DEFAULT_RADIUS: Final = 31  # the PDQ paper's match threshold

Vectors: TypeAlias = npt.NDArray[np.uint8]
IdsLike: TypeAlias = Sequence[int] | npt.NDArray[np.integer[Any]]
Match: TypeAlias = tuple[int, int]

_HALVES: Final = PDQ_BYTES // 2  # 16 substrings of 16 bits
_BUCKETS: Final = 1 << 16
# The half that shares a 32-bit word with half s (uint16 view of little-endian byte pairs;
# which byte is high does not matter: bit flips are enumerated over all 16 bits).
_PARTNER: Final = np.arange(_HALVES) ^ 1
_HALF_STARTS: Final = (np.arange(_HALVES, dtype=np.int64) * _BUCKETS)[:, None]  # in the offsets
# Above this word threshold (radius >= 64) probing costs more than scanning every hash.
_MAX_PROBED_WORD_DISTANCE: Final = 7
# Added hashes wait in the scanned delta until there are this many; removed rows stay in
# the tables until there are this many or a quarter of the rows, whichever is more.
_DELTA_LIMIT: Final = 2048
_SORT_PROBES_FROM: Final = 16  # queries
_QUERY_CHUNK: Final = 1 << 10  # queries probed together by query_many (bounds temporary memory)
# Bucket entries read at once (the temporaries fit in L2).
_ENTRY_BLOCK: Final = 1 << 15
_WORDWISE_NONZERO_FROM: Final = 1 << 13  # entries (see _flatnonzero)
_SAVED: Final = ("vectors", "ids", "rows", "partner", "offsets")  # PDQIndex.save's files
_FORMAT: Final = "hashbank PDQ index 1\n"
_SCAN_CHUNK: Final = 1 << 16  # rows compared at once when scanning


def _flips(max_bits: int) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.int16]]:
    """All 16-bit masks with at most ``max_bits`` bits set, and their weights."""
    masks = [0]
    weights = [0]
    for k in range(1, max_bits + 1):
        for bits in combinations(range(16), k):
            masks.append(sum(1 << b for b in bits))
            weights.append(k)
    return np.array(masks, dtype=np.uint16), np.array(weights, dtype=np.int16)


_FLIPS: Final = [_flips(h) for h in range(_MAX_PROBED_WORD_DISTANCE // 2 + 1)]


def _probe_classes(h: int) -> npt.NDArray[np.int64]:
    """Each probe's class, by half and flip, shifted into place in its ``info``: the flip's
    weight w (at most 3), plus 4 for an odd half."""
    weights = _FLIPS[h][1].astype(np.int64)
    odd = (np.arange(_HALVES, dtype=np.int64) % 2)[:, None]
    return ((weights[None, :] | odd << 2) << 16)[:, None, :]


def _keeps(t: int) -> npt.NDArray[np.bool_]:
    """Whether a probe of class c keeps an entry whose other half is ``off`` bits from the
    query's, at ``c << 4 | off``: when its whole word is within t bits (off <= t - w), and
    for an odd half, when its even half is not within t // 2 bits (else the even half's
    probe finds the row, and keeps it)."""
    c, off = np.divmod(np.arange(8 << 4), 16)
    return (off <= t - (c & 3)) & ((c < 4) | (off > t // 2))


_PROBE_CLASSES: Final = [_probe_classes(h) for h in range(_MAX_PROBED_WORD_DISTANCE // 2 + 1)]
_KEEPS: Final = [_keeps(t) for t in range(_MAX_PROBED_WORD_DISTANCE + 1)]
# A probe's info: the query's other half of the word in bits 0-15, the probe's class in
# 16-18, and the query's number (below _QUERY_CHUNK) from bit 19.
_QUERY_SHIFT: Final = 19


def vectors_from_hex(values: Iterable[str]) -> Vectors:
    """An (n, 32) uint8 array from 64-digit hex strings (either case).

    Raises ValueError naming the first value that is not 64 hex digits.
    """
    values = list(values)
    for i, value in enumerate(values):
        if not isinstance(value, str) or len(value) != 2 * PDQ_BYTES:
            raise ValueError(f"PDQ hash {i} is not 64 hex digits: {value!r}")
    try:
        # fromhex skips whitespace, but then the byte count comes out short.
        raw = bytes.fromhex("".join(values))
    except ValueError:
        raw = b""
    if len(raw) != PDQ_BYTES * len(values):
        for i, value in enumerate(values):
            try:
                ok = len(bytes.fromhex(value)) == PDQ_BYTES
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"PDQ hash {i} is not 64 hex digits: {value!r}") from None
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), PDQ_BYTES).copy()


_ARANGE: dict[type[np.signedinteger[Any]], npt.NDArray[np.signedinteger[Any]]] = {}


def _arange(n: int, dtype: type[np.signedinteger[Any]]) -> npt.NDArray[np.signedinteger[Any]]:
    """``np.arange(n, dtype=dtype)``, read-only, from a cache that grows as needed."""
    cached = _ARANGE.get(dtype)
    if cached is None or len(cached) < n:
        cached = np.arange(max(n, 2 * len(cached) if cached is not None else n), dtype=dtype)
        cached.flags.writeable = False
        _ARANGE[dtype] = cached
    return cached[:n]


def _check_vectors(vectors: object) -> Vectors:
    if not isinstance(vectors, np.ndarray) or vectors.dtype != np.uint8:
        raise ValueError("vectors must be a numpy uint8 array")
    if vectors.ndim != 2 or vectors.shape[1] != PDQ_BYTES:
        raise ValueError(f"vectors must have shape (n, {PDQ_BYTES}), not {vectors.shape}")
    return np.ascontiguousarray(vectors)


def _check_vector(vector: object) -> Vectors:
    if not isinstance(vector, np.ndarray) or vector.dtype != np.uint8:
        raise ValueError("vector must be a numpy uint8 array")
    if vector.shape != (PDQ_BYTES,):
        raise ValueError(f"vector must have shape ({PDQ_BYTES},), not {vector.shape}")
    return np.ascontiguousarray(vector).reshape(1, PDQ_BYTES)


def _as_ids(ids: object) -> npt.NDArray[np.int64]:
    """A flat int64 array of ``ids`` (integers that fit in int64), or ValueError."""
    try:
        arr = np.asarray(ids)
    except (OverflowError, ValueError, TypeError):
        raise ValueError("ids must be a sequence of integers") from None
    if arr.ndim != 1:
        raise ValueError("ids must be a flat sequence of integers")
    if len(arr) == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError("ids must be integers")
    if arr.dtype == np.uint64 and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError("ids must fit in a signed 64-bit integer")
    return arr.astype(np.int64, copy=False)


def _check_ids(ids: object, n: int) -> npt.NDArray[np.int64]:
    """Ids for n new hashes: distinct integers, one per hash."""
    out = _as_ids(ids)
    if len(out) != n:
        raise ValueError(f"ids must be {n} integers, one per vector, not {len(out)}")
    ordered = np.sort(out)  # milliseconds at 1M, where np.unique takes ~0.4 s
    if not bool((ordered[1:] != ordered[:-1]).all()):
        raise ValueError("ids must be distinct")
    return out


def _check_radius(radius: object) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
        raise ValueError("radius must be an integer")
    if not 0 <= radius <= PDQ_BITS:
        raise ValueError(f"radius must be in 0..{PDQ_BITS}, not {radius}")
    return int(radius)


def _distances(
    words: npt.NDArray[np.uint64], queries: npt.NDArray[np.uint64]
) -> npt.NDArray[np.int64]:
    """Hamming distances between rows of two (k, 4) uint64 arrays, row by row."""
    bits = np.bitwise_count(words ^ queries)
    # Four column adds: summing along the short axis is several times slower.
    dist: npt.NDArray[np.int64] = bits[:, 0].astype(np.int64)
    for column in range(1, 4):
        dist += bits[:, column]
    return dist


def _distinct_pairs(
    q: npt.NDArray[np.signedinteger[Any]], rows: npt.NDArray[np.signedinteger[Any]], n: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct (q, row) pairs of two equal-length arrays of rows below ``n``, by query
    then row: one sort of the pairs packed in an int64 (numpy sorts int64 with SIMD, ~6 ns
    an element here)."""
    shift = max(1, n - 1).bit_length()
    key = q.astype(np.int64) << shift
    key |= rows
    key.sort()
    if len(key) > 1:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return key >> shift, key & ((1 << shift) - 1)


def _flatnonzero(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """``np.flatnonzero(mask)`` of a 1-d bool array, faster when it is long and ~10 % True.

    numpy finds the True entries of a bool array one ``memchr`` at a time up to a tenth of
    them True, and without branches above: ~1.5 ns an entry at 5 to 10 % True (a batch with
    matches), ~0.5 ns at 20 %. Finding the 8-entry words with any True first, then the True
    entries in those, keeps both searches in the cheap regimes; for its extra numpy calls,
    only from ``_WORDWISE_NONZERO_FROM`` entries.
    """
    n = len(mask)
    if n < _WORDWISE_NONZERO_FROM:
        return np.flatnonzero(mask)
    whole = n - n % 8
    words = mask[:whole].view(np.uint64)
    (some,) = np.nonzero(words != 0)
    (within,) = np.nonzero(np.take(words, some).view(np.bool_))
    found: npt.NDArray[np.int64] = np.take(some, within >> 3) << 3
    found |= within & 7
    if whole < n:
        found = np.concatenate([found, np.flatnonzero(mask[whole:]) + whole])
    return found


def _id_order(
    vectors: Vectors, ids: npt.NDArray[np.int64]
) -> tuple[Vectors, npt.NDArray[np.int64]]:
    """Copies of ``vectors`` and ``ids`` in id order, for the tables: rows in id order let a
    query order its matches by (distance, id) with one sort of packed integers."""
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return vectors.copy(), ids.copy()
    order = np.argsort(ids)
    return vectors[order], ids[order]


class _Tables:
    """The immutable MIH part of an index: hashes, ids and the 16 bucket tables.

    For half ``s`` (16 bits) and value ``v``, ``rows[offsets[s * 65536 + v] : offsets[s *
    65536 + v + 1]]`` are the rows whose half ``s`` is ``v``, and ``partner`` beside them the
    value of the other half of the same 32-bit word. Only ``alive`` changes (on removal).
    """

    def __init__(
        self,
        vectors: Vectors,
        ids: npt.NDArray[np.int64],
        rows: npt.NDArray[np.signedinteger[Any]],
        partner: npt.NDArray[np.uint16],
        offsets: npt.NDArray[np.signedinteger[Any]],
    ) -> None:
        self.vectors = vectors
        self.words: npt.NDArray[np.uint64] = vectors.view(np.uint64)
        self.ids = ids
        self.rows = rows
        self.partner = partner
        self.offsets = offsets
        self.index_type: type[np.signedinteger[Any]] = rows.dtype.type
        self.alive = np.ones(len(ids), dtype=bool)
        self.dead = 0
        # (ids sorted, their rows), made on first need: a read-only index never needs it.
        self._by_id: tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]] | None = None

    @classmethod
    def build(cls, vectors: Vectors, ids: npt.NDArray[np.int64]) -> _Tables:
        n = len(vectors)
        # Positions in the tables fit in int32 below 134M hashes: half the memory traffic.
        index_type: type[np.signedinteger[Any]] = np.int32 if _HALVES * n < 2**31 else np.int64
        halves = vectors.view(np.uint16)  # (n, 16); columns copied one at a time (memory)
        rows: npt.NDArray[np.signedinteger[Any]] = np.empty(_HALVES * n, dtype=index_type)
        partner = np.empty(_HALVES * n, dtype=np.uint16)
        offsets: npt.NDArray[np.signedinteger[Any]] = np.empty(
            _HALVES * _BUCKETS + 1, dtype=index_type
        )
        offsets[0] = 0
        for s in range(_HALVES):
            keys = np.ascontiguousarray(halves[:, s])
            order = np.argsort(keys, kind="stable")  # a radix sort for 16-bit keys
            rows[s * n : (s + 1) * n] = order
            other = np.ascontiguousarray(halves[:, _PARTNER[s]])
            np.take(other, order, out=partner[s * n : (s + 1) * n])
            bucket_ends = offsets[s * _BUCKETS + 1 : (s + 1) * _BUCKETS + 1]
            np.cumsum(np.bincount(keys, minlength=_BUCKETS), out=bucket_ends)
            bucket_ends += s * n
        return cls(vectors, ids, rows, partner, offsets)

    def saved_arrays(self) -> list[npt.NDArray[Any]]:
        return [self.vectors, self.ids, self.rows, self.partner, self.offsets]

    @classmethod
    def from_saved(
        cls,
        vectors: npt.NDArray[Any],
        ids: npt.NDArray[Any],
        rows: npt.NDArray[Any],
        partner: npt.NDArray[Any],
        offsets: npt.NDArray[Any],
    ) -> _Tables:
        """Tables from the arrays of :meth:`saved_arrays`; ValueError unless they fit."""
        n = len(vectors)
        ok = (
            vectors.dtype == np.uint8
            and vectors.ndim == 2
            and vectors.shape[1] == PDQ_BYTES
            and ids.dtype == np.int64
            and ids.shape == (n,)
            and rows.dtype in (np.int32, np.int64)
            and rows.shape == (_HALVES * n,)
            and partner.dtype == np.uint16
            and partner.shape == (_HALVES * n,)
            and offsets.dtype == rows.dtype
            and offsets.shape == (_HALVES * _BUCKETS + 1,)
        )
        # Each half's buckets must cover its n entries, in order. (The entries themselves are
        # not read: that would cost as much as the scan the index saves.)
        ok = (
            ok
            and bool((offsets[::_BUCKETS] == np.arange(_HALVES + 1) * n).all())
            and bool((np.diff(offsets) >= 0).all())
        )
        if not ok:
            raise ValueError("the saved arrays are not a PDQ index")
        return cls(vectors, ids, rows, partner, offsets)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        arrays: list[npt.NDArray[Any]] = [self.vectors, self.ids, self.alive]
        arrays += [self.rows, self.partner, self.offsets]
        if self._by_id is not None:
            arrays += self._by_id
        return sum(a.nbytes for a in arrays)

    def rows_of(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """The live rows holding ``ids`` (ids not held are left out)."""
        if len(self.ids) == 0:
            return np.empty(0, dtype=np.intp)
        if self._by_id is None:
            order = np.argsort(self.ids, kind="stable")
            self._by_id = (self.ids[order], order)
        sorted_ids, order = self._by_id
        at = np.searchsorted(sorted_ids, ids).clip(max=len(sorted_ids) - 1)
        rows = order[at[sorted_ids[at] == ids]]
        live: npt.NDArray[np.intp] = rows[self.alive[rows]]
        return live

    def probe(
        self, halves: npt.NDArray[np.uint16], words: npt.NDArray[np.uint64], radius: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(query number, row, distance) of every live row within ``radius`` of a query,
        each once, in no particular order.

        ``halves`` and ``words`` are the queries as (q, 16) uint16 and (q, 4) uint64 views,
        at most ``_QUERY_CHUNK`` of them.
        """
        t = radius // 8  # some 32-bit word is within t bits
        masks, _ = _FLIPS[t // 2]  # ...and one of its halves within t // 2 bits
        nq, nm = len(halves), len(masks)
        # One probe per (half, query, flip), each half's probes in a row; its bucket is
        # half * 65536 + the query's half with the flip applied. What the entries read through
        # it are checked against travels in one int64 (see _PROBE_CLASSES): the query, the
        # probe's class and the other half of the probed word in the query.
        keys = (halves.T[:, :, None] ^ masks).reshape(_HALVES, nq * nm)
        buckets = keys + _HALF_STARTS
        info = (_arange(nq, np.int64) << _QUERY_SHIFT)[None, :, None] | _PROBE_CLASSES[t // 2]
        info = (info | halves.T[_PARTNER][:, :, None]).reshape(_HALVES, nq * nm)
        if nq >= _SORT_PROBES_FROM:
            # Visiting each half's buckets in order turns scattered reads of the tables into
            # a near-sequential sweep: twice as fast for a batch, less the (radix) sort.
            order = np.argsort(keys, axis=1, kind="stable")
            order += _arange(_HALVES, np.int64)[:, None] * (nq * nm)
            buckets = np.take(buckets, order)
            info = np.take(info, order)
        buckets = buckets.ravel()
        starts = np.take(self.offsets, buckets)
        lens = np.take(self.offsets, buckets + 1) - starts
        q, pos = self._near_words(starts, lens, info.ravel(), t)
        q, rows = _distinct_pairs(q, np.take(self.rows, pos), len(self.ids))
        dist = _distances(np.take(self.words, rows, axis=0), np.take(words, q, axis=0))
        ok = (dist <= radius) & np.take(self.alive, rows)
        return q[ok], rows[ok], dist[ok]

    def _near_words(
        self,
        starts: npt.NDArray[np.signedinteger[Any]],
        lens: npt.NDArray[np.signedinteger[Any]],
        info: npt.NDArray[np.int64],
        t: int,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The entries of the probed buckets whose 32-bit word is within ``t`` bits of the
        query's, less those another probe keeps: (query number, position in the tables) of
        each.

        The buckets' entries are read in blocks of about ``_ENTRY_BLOCK``, so the temporary
        arrays stay in the CPU's cache however large the batch. In tables of int32 positions
        each entry's first position and its probe's ``info`` travel in one repeated int64:
        numpy makes one pass over the entries for both (repeats cost ~1 ns an entry).
        """
        empty = np.empty(0, dtype=np.int64)
        ends = np.cumsum(lens, dtype=np.int64)
        if len(ends) == 0 or ends[-1] == 0:
            return empty, empty
        # A probe's first position less the number of the entry it is read into.
        first = starts - (ends - lens)
        packed = self.index_type is np.int32  # positions below 2**31 ride in the high half
        if packed:
            first = (first << 32) | info
        cuts: list[int] = []
        if ends[-1] > _ENTRY_BLOCK:
            at = np.arange(_ENTRY_BLOCK, int(ends[-1]), _ENTRY_BLOCK)
            cuts = (np.searchsorted(ends, at) + 1).tolist()
        keeps = _KEEPS[t]
        queries: list[npt.NDArray[np.int64]] = []
        positions: list[npt.NDArray[np.int64]] = []
        for a, b in pairwise([0, *cuts, len(lens)]):
            read = int(ends[a - 1]) if a else 0  # entries read before this block
            if a >= b or ends[b - 1] == read:
                continue
            if packed:
                tag = np.repeat(first[a:b] + (read << 32), lens[a:b])
                pos = tag >> 32
            else:
                tag = np.repeat(info[a:b], lens[a:b])
                pos = np.repeat(first[a:b] + read, lens[a:b])
            pos += _arange(len(pos), np.int64)
            partner = np.take(self.partner, pos)
            partner ^= tag.astype(np.uint16)
            # The bits the other half is off by: counted by byte (numpy counts bytes with SIMD,
            # uint16s one at a time), and the two counts summed into the high byte by
            # multiplying by 0x101 (lo + (lo + hi) << 8).
            np.bitwise_count(partner.view(np.uint8), out=partner.view(np.uint8))
            partner *= np.uint16(0x101)
            near = _flatnonzero(partner <= (t << 8 | 0xFF))
            tag = tag[near]
            (kept,) = np.nonzero(np.take(keeps, ((tag >> 12) & 0x70) | (partner[near] >> 8)))
            queries.append((tag[kept] >> _QUERY_SHIFT) & (_QUERY_CHUNK - 1))
            positions.append(pos[near[kept]])
        if len(queries) == 1:
            return queries[0], positions[0]
        return np.concatenate(queries), np.concatenate(positions)

    def scan(
        self, words: npt.NDArray[np.uint64], radius: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """Like :meth:`probe`, comparing every row (for radii the tables can't serve)."""
        return _scan(self.words, words, radius, self.alive)


def _scan(
    rows: npt.NDArray[np.uint64],
    queries: npt.NDArray[np.uint64],
    radius: int,
    alive: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """(query number, row, distance) within ``radius``, comparing every (query, row) pair."""
    qs: list[npt.NDArray[np.intp]] = []
    rs: list[npt.NDArray[np.intp]] = []
    ds: list[npt.NDArray[np.int64]] = []
    step = max(1, _SCAN_CHUNK // max(1, len(rows)))
    for q0 in range(0, len(queries), step):
        block = queries[q0 : q0 + step]
        for r0 in range(0, len(rows), _SCAN_CHUNK):
            chunk = rows[r0 : r0 + _SCAN_CHUNK]
            dist = np.bitwise_count(block[:, None, :] ^ chunk[None, :, :]).sum(
                axis=2, dtype=np.int64
            )
            within = dist <= radius
            if alive is not None:
                within &= alive[r0 : r0 + _SCAN_CHUNK]
            q, r = np.nonzero(within)
            qs.append(q + q0)
            rs.append(r + r0)
            ds.append(dist[q, r])
    if not qs:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty, np.empty(0, dtype=np.int64)
    return np.concatenate(qs), np.concatenate(rs), np.concatenate(ds)


class PDQIndex:
    """Exact PDQ near-duplicate search over hashes held under distinct int64 ids.

    ``PDQIndex(vectors, ids)``: ``vectors`` an (n, 32) ``numpy.uint8`` array of hashes in hex
    order, ``ids`` n distinct integers. Several ids may hold the same hash; each is returned.
    Adding an id the index already holds raises ValueError (remove it first); removing ids
    it does not hold is not an error. Every method checks its arguments and raises
    ValueError, changing nothing, when they are malformed.

    Not thread-safe for writers: guard :meth:`add` and :meth:`remove` with a lock if other
    threads query meanwhile.
    """

    def __init__(self, vectors: Vectors | None = None, ids: IdsLike | None = None) -> None:
        if vectors is None:
            vectors = np.empty((0, PDQ_BYTES), dtype=np.uint8)
        vectors = _check_vectors(vectors)
        ids_ = _check_ids([] if ids is None else ids, len(vectors))
        self._tables = _Tables.build(*_id_order(vectors, ids_))
        self._delta_vectors = np.empty((0, PDQ_BYTES), dtype=np.uint8)
        self._delta_ids = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._tables) - self._tables.dead + len(self._delta_ids)

    def __contains__(self, id_: object) -> bool:
        if isinstance(id_, bool) or not isinstance(id_, int | np.integer):
            return False
        key = np.array([id_], dtype=np.int64)
        return len(self._tables.rows_of(key)) > 0 or bool(np.isin(key, self._delta_ids)[0])

    @property
    def nbytes(self) -> int:
        """Bytes held in numpy arrays (the index's memory, less Python object overhead)."""
        return self._tables.nbytes + self._delta_vectors.nbytes + self._delta_ids.nbytes

    def add(self, vectors: Vectors, ids: IdsLike) -> None:
        """Add hashes under new ids; raises ValueError if any id is already held."""
        vectors = _check_vectors(vectors)
        new_ids = _check_ids(ids, len(vectors))
        if len(new_ids) == 0:
            return
        held_rows = self._tables.rows_of(new_ids)
        held = np.isin(new_ids, self._tables.ids[held_rows]) | np.isin(new_ids, self._delta_ids)
        if held.any():
            raise ValueError(f"ids already in the index: {new_ids[held][:10].tolist()}")
        self._delta_vectors = np.concatenate([self._delta_vectors, vectors])
        self._delta_ids = np.concatenate([self._delta_ids, new_ids])
        if len(self._delta_ids) > _DELTA_LIMIT:
            self._rebuild()

    def remove(self, ids: IdsLike) -> int:
        """Remove the hashes held under ``ids``; returns how many were held."""
        gone = np.unique(_as_ids(ids))
        rows = self._tables.rows_of(gone)
        self._tables.alive[rows] = False
        self._tables.dead += len(rows)
        in_delta = np.isin(self._delta_ids, gone)
        removed = len(rows) + int(in_delta.sum())
        if in_delta.any():
            self._delta_vectors = self._delta_vectors[~in_delta]
            self._delta_ids = self._delta_ids[~in_delta]
        if self._tables.dead > max(_DELTA_LIMIT, len(self._tables) // 4):
            self._rebuild()
        return removed

    def _rebuild(self) -> None:
        t = self._tables
        vectors = np.concatenate([t.vectors[t.alive], self._delta_vectors])
        ids = np.concatenate([t.ids[t.alive], self._delta_ids])
        self._tables = _Tables.build(*_id_order(vectors, ids))
        self._delta_vectors = np.empty((0, PDQ_BYTES), dtype=np.uint8)
        self._delta_ids = np.empty(0, dtype=np.int64)

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the index to ``directory``, which must not exist yet, for :meth:`load`.

        Pending adds and removals are folded into the tables first. The directory appears
        whole (it is written beside its final name, then renamed), so a reader never sees
        half an index; if it exists, FileExistsError.
        """
        target = Path(directory)
        if target.exists():
            raise FileExistsError(f"{target} exists")
        if self._tables.dead or len(self._delta_ids):
            self._rebuild()
        t = self._tables
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
        try:
            for name, array in zip(_SAVED, t.saved_arrays(), strict=True):
                np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            (tmp / "FORMAT").write_text(_FORMAT)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, mmap: bool = True) -> PDQIndex:
        """An index written by :meth:`save`.

        With ``mmap`` (the default) the arrays are mapped from the files, not read: loading
        takes milliseconds, a query reads only the pages it touches, and processes share
        them. Only the files' shapes and the bucket offsets are checked, not every entry:
        they are a cache the caller made from data it trusts. Raises FileNotFoundError if
        there is no index there, ValueError if the files are not one.
        """
        d = Path(directory)
        if (d / "FORMAT").read_text() != _FORMAT:
            raise ValueError(f"{d} is not a PDQ index of this version")
        mode: Literal["r"] | None = "r" if mmap else None
        arrays = [
            np.asarray(np.load(d / f"{name}.npy", mmap_mode=mode, allow_pickle=False))
            for name in _SAVED
        ]
        index = cls()
        index._tables = _Tables.from_saved(*arrays)
        return index

    def query(self, vector: Vectors, radius: int = DEFAULT_RADIUS) -> list[Match]:
        """``(id, distance)`` of every hash within ``radius`` bits, by distance then id."""
        return self._search(_check_vector(vector), _check_radius(radius))[0]

    def query_many(self, vectors: Vectors, radius: int = DEFAULT_RADIUS) -> list[list[Match]]:
        """:meth:`query` for each row of an (k, 32) uint8 array, in one pass."""
        vectors = _check_vectors(vectors)
        radius = _check_radius(radius)
        out: list[list[Match]] = []
        for q0 in range(0, len(vectors), _QUERY_CHUNK):
            out += self._search(vectors[q0 : q0 + _QUERY_CHUNK], radius)
        return out

    def _search(self, queries: Vectors, radius: int) -> list[list[Match]]:
        words = queries.view(np.uint64)
        t = self._tables
        if radius // 8 <= _MAX_PROBED_WORD_DISTANCE:
            q, rows, dist = t.probe(queries.view(np.uint16), words, radius)
        else:
            q, rows, dist = t.scan(words, radius)
        n = len(t.ids)
        if len(self._delta_ids):
            dq, drows, ddist = _scan(self._delta_vectors.view(np.uint64), words, radius)
            q = np.concatenate([q, dq])
            rows = np.concatenate([rows, drows + n])  # the delta's rows follow the tables'
            dist = np.concatenate([dist, ddist])
        if len(q) == 0:
            return [[] for _ in range(len(queries))]
        # One sort of (query, distance, row) packed in an int64 (rows below 2**shift, at
        # most 1,024 queries, distances below 512): the rows are in id order (see
        # _id_order), so ties come out by id.
        shift = max(1, n + len(self._delta_ids) - 1).bit_length()
        key = q.astype(np.int64) << (9 + shift)
        key |= dist.astype(np.int64) << shift
        key |= rows
        key.sort()
        rows = key & ((1 << shift) - 1)
        if len(self._delta_ids):
            in_delta = rows >= n
            ids = np.take(t.ids, np.where(in_delta, 0, rows)) if n else np.zeros_like(rows)
            ids[in_delta] = np.take(self._delta_ids, rows[in_delta] - n)
        else:
            ids = np.take(t.ids, rows)
        key >>= shift
        ties = key[1:] == key[:-1]
        if (ties & (ids[1:] < ids[:-1])).any():  # a saved index not in id order, or the delta
            order = np.lexsort((ids, key))
            key, ids = key[order], ids[order]
        q = key >> 9
        dist = key & 511
        bounds = np.searchsorted(q, _arange(len(queries) + 1, np.int64)).tolist()
        pairs = list(zip(ids.tolist(), dist.tolist(), strict=True))
        return [pairs[a:b] for a, b in pairwise(bounds)]
