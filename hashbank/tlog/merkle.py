"""RFC 6962 / RFC 9162 Merkle tree: hashing, the compact right edge, inclusion and consistency
proofs (``docs/LOG_FORMAT.md`` §2).

Proofs are built from stored *perfect-subtree nodes* ``(level, index)``: the nodes
:meth:`RightEdge.append` reports as it completes them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from hashbank.tlog._codec import (
    HASH_SIZE,
    MAX_INT64,
    b64decode_strict,
    b64encode,
    check_hash,
    check_int,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "ProofError",
    "RightEdge",
    "consistency_proof",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "right_edge_node_ids",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]


class ProofError(ValueError):
    """A Merkle inclusion or consistency proof that does not verify."""


EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("leaf data must be bytes")
    return _sha256(b"\x00" + data).digest()  # bytes + any bytes-like is bytes


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    check_hash("left", left)
    check_hash("right", right)
    return _sha256(b"\x01" + left + right).digest()


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Hash of a right-edge subtree given its perfect parts, largest (leftmost) first."""
    r = hashes[-1]
    for i in range(len(hashes) - 2, -1, -1):
        r = _sha256(b"\x01" + hashes[i] + r).digest()
    return r


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The RFC 6962 tree head of the given leaf hashes (reference, iterative, O(n))."""
    level = list(hashes)
    for h in level:
        check_hash("leaf hash", h)
    if not level:
        return EMPTY_ROOT
    h256 = _sha256
    while len(level) > 1:
        nxt = [
            h256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) & 1:
            nxt.append(level[-1])  # an odd node is promoted unchanged (RFC 6962 split rule)
        level = nxt
    return level[0]


def right_edge_node_ids(size: int) -> list[tuple[int, int]]:
    """Perfect-subtree node ids ``(level, index)`` that make up the compact range [0, size)."""
    check_int("size", size)
    return _subtree_node_ids(0, size)


class RightEdge:
    """The compact range [0, size): one perfect-subtree hash per set bit of ``size``.

    ``append`` is O(1) amortized and reports every perfect node it completes, so a server can
    store them and later answer any proof from stored nodes alone; ``root`` is O(log n).
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []  # largest (leftmost) subtree first

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree hashes, leftmost first (ids from ``right_edge_node_ids``)."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return the ``(level, index, hash)`` of every node completed."""
        check_hash("leaf hash", leaf_hash)
        size = self._size
        if size >= MAX_INT64:
            raise ValueError("tree is full")
        hashes = self._hashes
        created = [(0, size, leaf_hash)]
        h = leaf_hash
        level = 0
        s = size
        while s & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            level += 1
            s >>= 1
            created.append((level, s, h))
        hashes.append(h)
        self._size = size + 1
        return created

    def push(self, leaf_hash: bytes) -> None:
        """Append one leaf hash without reporting nodes (see :meth:`push_all`)."""
        self.push_all((leaf_hash,))

    def push_all(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes without reporting nodes: the fast path for verifiers."""
        hashes = self._hashes
        for leaf_hash in leaf_hashes:
            check_hash("leaf hash", leaf_hash)
            size = self._size
            if size >= MAX_INT64:
                raise ValueError("tree is full")
            h = leaf_hash
            s = size
            while s & 1:
                h = _sha256(b"\x01" + hashes.pop() + h).digest()
                s >>= 1
            hashes.append(h)
            self._size = size + 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Append several leaf hashes; return all the nodes completed, in order."""
        created: list[tuple[int, int, bytes]] = []
        for h in leaf_hashes:
            created.extend(self.append(h))
        return created

    def root(self) -> bytes:
        """The tree head of [0, size)."""
        if not self._hashes:
            return EMPTY_ROOT
        return _fold(self._hashes)

    def copy(self) -> RightEdge:
        other = RightEdge()
        other._size = self._size
        other._hashes = list(self._hashes)
        return other

    def to_json(self) -> dict[str, Any]:
        """``{"size": n, "hashes": [base64, ...]}`` (O(log n) hashes, leftmost first)."""
        return {"size": self._size, "hashes": [b64encode(h) for h in self._hashes]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RightEdge:
        """Inverse of ``to_json``; strict (exact keys, hash count, canonical base64)."""
        if not isinstance(d, Mapping) or set(d.keys()) != {"size", "hashes"}:
            raise ValueError('right edge JSON must be an object with exactly "size" and "hashes"')
        size = d["size"]
        if type(size) is not int or not 0 <= size <= MAX_INT64:
            raise ValueError("right edge size must be a non-negative int")
        raw = d["hashes"]
        if not isinstance(raw, list) or len(raw) != size.bit_count():
            raise ValueError("right edge JSON must hold one hash per set bit of size")
        hashes = []
        for item in raw:
            h = b64decode_strict(item)
            if h is None or len(h) != HASH_SIZE:
                raise ValueError("right edge hashes must be canonical base64 of 32 bytes")
            hashes.append(h)
        edge = cls()
        edge._size = size
        edge._hashes = hashes
        return edge

    @classmethod
    def from_nodes(cls, size: int, nodes: Mapping[tuple[int, int], bytes]) -> RightEdge:
        """Rebuild the right edge of [0, size) from stored nodes (see ``right_edge_node_ids``)."""
        edge = cls()
        edge._hashes = [_get_node(nodes, nid) for nid in right_edge_node_ids(size)]
        edge._size = size
        return edge

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RightEdge):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"RightEdge(size={self._size}, root={self.root().hex()})"


# --------------------------------------------------------------------------------------------
# Proofs over perfect-subtree nodes
# --------------------------------------------------------------------------------------------
#
# A node id (level, idx) names the perfect subtree over leaves [idx * 2**level, (idx+1) *
# 2**level). Every element of an RFC 9162 proof is the hash of an RFC 6962 subtree [a, b); if it
# is not perfect it lies on the right edge of the tree (b == size) and its hash is the right
# fold of the perfect subtrees that make up [a, b) (the binary decomposition of b - a).


def _subtree_node_ids(start: int, end: int) -> list[tuple[int, int]]:
    ids: list[tuple[int, int]] = []
    length = end - start
    pos = start
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            ids.append((level, pos >> level))
            pos += 1 << level
    return ids


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges of the RFC 9162 inclusion path PATH(index, D[size]), leaf to root."""
    ranges: list[tuple[int, int]] = []
    level = 0
    while (1 << level) < size:
        start = ((index >> level) ^ 1) << level
        if start < size:
            ranges.append((start, min(start + (1 << level), size)))
        level += 1
    return ranges


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """Leaf ranges of the RFC 9162 consistency proof PROOF(old, D[new]) (0 < old < new)."""
    # SUBPROOF(m, D[lo:hi], b), unrolled: descend, remembering the hashes appended on the way up.
    tail: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new, old, True
    while m != hi - lo:
        n = hi - lo
        k = 1 << ((n - 1).bit_length() - 1)  # largest power of two smaller than n
        if m <= k:
            tail.append((lo + k, hi))
            hi = lo + k
        else:
            tail.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    head = [] if complete else [(lo, hi)]
    return head + tail[::-1]


def _get_node(nodes: Mapping[tuple[int, int], bytes], nid: tuple[int, int]) -> bytes:
    try:
        h = nodes[nid]
    except KeyError:
        raise ValueError(f"missing tree node {nid}") from None
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise ValueError(f"tree node {nid} is not {HASH_SIZE} bytes")
    return h


def _ranges_to_hashes(
    ranges: list[tuple[int, int]], nodes: Mapping[tuple[int, int], bytes]
) -> list[bytes]:
    return [_fold([_get_node(nodes, nid) for nid in _subtree_node_ids(a, b)]) for a, b in ranges]


def _check_index_size(index: int, size: int) -> None:
    check_int("index", index)
    check_int("size", size)
    if index >= size:
        raise ValueError(f"index {index} is not below tree size {size}")


def _check_old_new(old: int, new: int) -> None:
    check_int("old", old)
    check_int("new", new)
    if old > new:
        raise ValueError(f"old size {old} is larger than new size {new}")


def inclusion_proof_nodes(index: int, size: int) -> list[tuple[int, int]]:
    """The perfect-subtree node ids needed for ``inclusion_proof(index, size, ...)``."""
    _check_index_size(index, size)
    return [nid for a, b in _inclusion_ranges(index, size) for nid in _subtree_node_ids(a, b)]


def consistency_proof_nodes(old: int, new: int) -> list[tuple[int, int]]:
    """The perfect-subtree node ids needed for ``consistency_proof(old, new, ...)``."""
    _check_old_new(old, new)
    if old == 0 or old == new:
        return []
    return [nid for a, b in _consistency_ranges(old, new) for nid in _subtree_node_ids(a, b)]


def inclusion_proof(index: int, size: int, nodes: Mapping[tuple[int, int], bytes]) -> list[bytes]:
    """RFC 9162 inclusion path for leaf ``index`` in the tree of ``size`` leaves."""
    _check_index_size(index, size)
    return _ranges_to_hashes(_inclusion_ranges(index, size), nodes)


def consistency_proof(old: int, new: int, nodes: Mapping[tuple[int, int], bytes]) -> list[bytes]:
    """RFC 9162 consistency proof from size ``old`` to ``new`` (empty if old is 0 or new)."""
    _check_old_new(old, new)
    if old == 0 or old == new:
        return []
    return _ranges_to_hashes(_consistency_ranges(old, new), nodes)


def _proof_hashes(proof: Sequence[bytes], expected_len: int) -> list[bytes]:
    if isinstance(proof, bytes | str) or not isinstance(proof, Sequence):
        raise ProofError("proof must be a sequence of hashes")
    if len(proof) != expected_len:
        raise ProofError(f"proof has {len(proof)} hashes, expected {expected_len}")
    return [check_hash("proof hash", p, ProofError) for p in proof]


def _inclusion_proof_len(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); raise ProofError if it does not verify."""
    check_hash("leaf_hash", leaf_hash, ProofError)
    check_hash("root", root, ProofError)
    fn = check_int("index", index, error=ProofError)
    size = check_int("size", size, error=ProofError)
    # 1. leaf_index must be below tree_size.
    if fn >= size:
        raise ProofError(f"index {fn} is not below tree size {size}")
    path = _proof_hashes(proof, _inclusion_proof_len(fn, size))
    # 2-3. fn = leaf_index, sn = tree_size - 1, r = hash.
    sn = size - 1
    r = leaf_hash
    # 4. Walk the path.
    for p in path:
        if sn == 0:
            raise ProofError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0 and r must equal the root.
    if sn != 0:
        raise ProofError("inclusion proof too short")
    if not hmac.compare_digest(r, root):
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    *,
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raise ProofError if it does not verify.

    Edge cases: ``old_size == new_size`` needs an empty proof and equal roots;
    ``old_size == 0`` needs an empty proof and ``old_root == EMPTY_ROOT`` (an empty tree is
    consistent with every tree, but only the genuine empty root is accepted for it).
    """
    check_hash("old_root", old_root, ProofError)
    check_hash("new_root", new_root, ProofError)
    first = check_int("old_size", old_size, error=ProofError)
    second = check_int("new_size", new_size, error=ProofError)
    if first > second:
        raise ProofError(f"old size {first} is larger than new size {second}")
    if first == second or first == 0:
        _proof_hashes(proof, 0)
        if first == 0 and not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise ProofError("the root of an empty tree must be SHA-256 of the empty string")
        if first == second and not hmac.compare_digest(old_root, new_root):
            raise ProofError("trees of equal size have different roots")
        return
    path = _proof_hashes(proof, len(_consistency_ranges(first, second)))
    # 1. An empty path fails (already excluded by the length check).
    # 2. If first is an exact power of 2, prepend first_hash.
    if first & (first - 1) == 0:
        path.insert(0, old_root)
    # 3. fn = first - 1, sn = second - 1.
    fn = first - 1
    sn = second - 1
    # 4. While LSB(fn) is set, right-shift fn and sn.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = first value of the path.
    fr = sr = path[0]
    # 6. For each subsequent value c.
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # 7. fr == first_hash, sr == second_hash, sn == 0.
    if sn != 0:
        raise ProofError("consistency proof too short")
    if not hmac.compare_digest(fr, old_root):
        raise ProofError("consistency proof does not lead to the old root")
    if not hmac.compare_digest(sr, new_root):
        raise ProofError("consistency proof does not lead to the new root")
