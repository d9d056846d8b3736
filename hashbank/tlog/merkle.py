"""Transparency log primitives: leaf encoding, RFC 6962 Merkle tree, checkpoints, signed notes.

Pure module (stdlib + ``cryptography`` only, no Django) shared by the server and the partner
sync client. Everything here is a wire format: see ``docs/LOG_FORMAT.md`` for the
specification, which this module implements exactly.

* Leaves: one canonical ASCII line per log entry (:func:`encode_add`, :func:`encode_remove`,
  :func:`decode_leaf`). Decoding accepts exactly what the encoders produce.
* Tree: RFC 6962 / RFC 9162 Merkle tree hashing (:func:`leaf_hash`, :func:`node_hash`,
  :func:`root_from_leaf_hashes`), the compact right edge (:class:`RightEdge`), and inclusion /
  consistency proofs built from stored *perfect-subtree nodes* ``(level, index)``.
* Checkpoints (C2SP ``tlog-checkpoint``) and signed notes (C2SP ``signed-note``, Ed25519),
  compatible with Go's ``golang.org/x/mod/sumdb/note``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_NOTE_SIGNATURES",
    "MAX_NOTE_SIZE",
    "REMOVE_REASONS",
    "Checkpoint",
    "CheckpointError",
    "KeyFormatError",
    "Leaf",
    "LeafError",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "ProofError",
    "RightEdge",
    "UnknownKeyError",
    "consistency_proof",
    "consistency_proof_nodes",
    "decode_leaf",
    "encode_add",
    "encode_remove",
    "format_checkpoint",
    "generate_private_key",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "key_id",
    "leaf_hash",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "parse_vkey",
    "private_key_from_text",
    "private_key_to_text",
    "right_edge_node_ids",
    "root_from_leaf_hashes",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
]

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class LeafError(ValueError):
    """Leaf bytes or fields that are not in the canonical encoding."""


class ProofError(ValueError):
    """A Merkle inclusion or consistency proof that does not verify."""


class CheckpointError(ValueError):
    """Checkpoint text that is not a well-formed C2SP tlog-checkpoint."""


class NoteError(ValueError):
    """A malformed signed note, or a signature by a known key that does not verify."""


class UnknownKeyError(NoteError):
    """A well-formed note that carries no verified signature from any known key."""


class KeyFormatError(ValueError):
    """A verifier key or private key text that is malformed."""


# --------------------------------------------------------------------------------------------
# Constants and small helpers
# --------------------------------------------------------------------------------------------

HASH_SIZE: Final = 32
EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()

#: Largest index / timestamp / tree size accepted anywhere (fits a signed 64-bit integer).
MAX_INT64: Final = 2**63 - 1
#: Signed notes larger than this (in UTF-8 bytes) are refused, when signing and opening.
MAX_NOTE_SIZE: Final = 1 << 20
#: Notes with more signature lines than this are refused (same bound as Go's note.Open).
MAX_NOTE_SIGNATURES: Final = 100

REMOVE_REASONS: Final = frozenset({"withdrawn", "disabled", "expired"})

ED25519_ALG: Final = 0x01
_SIG_PREFIX: Final = "\u2014 "  # EM DASH, SPACE

_sha256 = hashlib.sha256

# Unicode White_Space (what Go's unicode.IsSpace reports), used for key-name validation on top
# of Python's str.isspace(), so both languages agree on what a valid key name is.
_GO_SPACES: Final = frozenset(
    [
        *(0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680),
        *range(0x2000, 0x200B),
        *(0x2028, 0x2029, 0x202F, 0x205F, 0x3000),
    ]
)

_CONTROL_RE: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")
_B64_RE: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_DECIMAL_RE: Final = re.compile(r"0|[1-9][0-9]{0,18}")


def _check_int(name: str, value: object, *, lo: int = 0, hi: int = MAX_INT64) -> int:
    if type(value) is not int:  # rejects bool and int subclasses too
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def _check_hash(name: str, value: object, error: type[ValueError] = ValueError) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise error(f"{name} must be {HASH_SIZE} bytes")
    return value


def _b64decode_strict(text: str) -> bytes | None:
    """Decode canonical standard base64 (padded, no whitespace, zero pad bits); None if not."""
    if not isinstance(text, str) or _B64_RE.fullmatch(text) is None:
        return None
    data = base64.b64decode(text, validate=True)
    if base64.b64encode(data).decode("ascii") != text:
        return None
    return data


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------------------------
# Leaf encoding
# --------------------------------------------------------------------------------------------

_ALGORITHM_RE: Final = re.compile(r"[a-z0-9_]{1,16}")
_VALUE_RE: Final = re.compile(r"[0-9a-f]{1,512}")
_ORIGIN_RE: Final = re.compile(r"[!-*,-~]{1,255}")  # printable ASCII minus space and '+'
_FIXED_VALUE_LENGTHS: Final = {"pdq": 64, "md5": 32}
_MAX_LEAF_SIZE: Final = 1024

_ADD_LEAF_RE: Final = re.compile(
    rb"add ([a-z0-9_]{1,16}) ([0-9a-f]{1,512}) (-|0|[1-9][0-9]?|100) (0|[1-9][0-9]{0,18})"
    rb"(?: ([!-*,-~]{1,255}))?\n"
)
_REMOVE_LEAF_RE: Final = re.compile(
    rb"remove (0|[1-9][0-9]{0,18}) (withdrawn|disabled|expired) (0|[1-9][0-9]{0,18})\n"
)


@dataclass(frozen=True, slots=True)
class Leaf:
    """A decoded log entry. Fields that do not apply to ``op`` are None."""

    op: Literal["add", "remove"]
    algorithm: str | None = None
    value: str | None = None
    quality: int | None = None
    timestamp: int = 0
    origin: str | None = None
    removes: int | None = None
    reason: str | None = None

    def encode(self) -> bytes:
        """The canonical leaf bytes (raises LeafError if the fields are not encodable)."""
        if self.op == "add":
            if self.removes is not None or self.reason is not None:
                raise LeafError("an add leaf has no removes/reason")
            return encode_add(
                algorithm=self.algorithm,  # type: ignore[arg-type]
                value=self.value,  # type: ignore[arg-type]
                quality=self.quality,
                timestamp=self.timestamp,
                origin=self.origin,
            )
        if self.op == "remove":
            if any(f is not None for f in (self.algorithm, self.value, self.quality, self.origin)):
                raise LeafError("a remove leaf has no algorithm/value/quality/origin")
            return encode_remove(
                index=self.removes,  # type: ignore[arg-type]
                reason=self.reason,  # type: ignore[arg-type]
                timestamp=self.timestamp,
            )
        raise LeafError(f"unknown op {self.op!r}")


def _leaf_int(name: str, value: object, hi: int = MAX_INT64) -> int:
    try:
        return _check_int(name, value, hi=hi)
    except (TypeError, ValueError) as exc:
        raise LeafError(str(exc)) from None


def encode_add(
    *,
    algorithm: str,
    value: str,
    quality: int | None,
    timestamp: int,
    origin: str | None = None,
) -> bytes:
    """``add <algorithm> <value> <quality|-> <unix-time>[ <origin>]\\n`` (ASCII)."""
    if not isinstance(algorithm, str) or _ALGORITHM_RE.fullmatch(algorithm) is None:
        raise LeafError("algorithm must match [a-z0-9_]{1,16}")
    if not isinstance(value, str) or _VALUE_RE.fullmatch(value) is None:
        raise LeafError("value must be 1 to 512 lowercase hex digits")
    want = _FIXED_VALUE_LENGTHS.get(algorithm)
    if want is not None and len(value) != want:
        raise LeafError(f"a {algorithm} value must be exactly {want} hex digits")
    q = "-" if quality is None else str(_leaf_int("quality", quality, hi=100))
    ts = _leaf_int("timestamp", timestamp)
    if origin is None:
        return f"add {algorithm} {value} {q} {ts}\n".encode("ascii")
    if not isinstance(origin, str) or _ORIGIN_RE.fullmatch(origin) is None:
        raise LeafError("origin must be 1 to 255 printable ASCII characters without space or '+'")
    return f"add {algorithm} {value} {q} {ts} {origin}\n".encode("ascii")


def encode_remove(*, index: int, reason: str, timestamp: int) -> bytes:
    """``remove <index of the add entry> <reason> <unix-time>\\n`` (ASCII)."""
    idx = _leaf_int("index", index)
    if not isinstance(reason, str) or reason not in REMOVE_REASONS:
        raise LeafError(f"reason must be one of {sorted(REMOVE_REASONS)}")
    ts = _leaf_int("timestamp", timestamp)
    return f"remove {idx} {reason} {ts}\n".encode("ascii")


def decode_leaf(data: bytes) -> Leaf:
    """Decode canonical leaf bytes; anything the encoders would not produce raises LeafError."""
    if not isinstance(data, bytes):
        raise LeafError("leaf data must be bytes")
    if len(data) > _MAX_LEAF_SIZE:
        raise LeafError("leaf too long")
    m = _ADD_LEAF_RE.fullmatch(data)
    if m is not None:
        algorithm = m[1].decode("ascii")
        value = m[2].decode("ascii")
        want = _FIXED_VALUE_LENGTHS.get(algorithm)
        if want is not None and len(value) != want:
            raise LeafError(f"a {algorithm} value must be exactly {want} hex digits")
        timestamp = int(m[4])
        if timestamp > MAX_INT64:
            raise LeafError("timestamp out of range")
        leaf = Leaf(
            op="add",
            algorithm=algorithm,
            value=value,
            quality=None if m[3] == b"-" else int(m[3]),
            timestamp=timestamp,
            origin=None if m[5] is None else m[5].decode("ascii"),
        )
    else:
        m = _REMOVE_LEAF_RE.fullmatch(data)
        if m is None:
            raise LeafError("not a canonical add or remove leaf")
        removes, timestamp = int(m[1]), int(m[3])
        if removes > MAX_INT64 or timestamp > MAX_INT64:
            raise LeafError("number out of range")
        leaf = Leaf(op="remove", removes=removes, reason=m[2].decode("ascii"), timestamp=timestamp)
    # The grammar above is canonical (no leading zeros, fixed separators, bounded fields), so
    # what matches is exactly what the encoders emit; the round-trip property tests hold this.
    return leaf


# --------------------------------------------------------------------------------------------
# Merkle tree hashing
# --------------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("leaf data must be bytes")
    return _sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    _check_hash("left", left)
    _check_hash("right", right)
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
        _check_hash("leaf hash", h)
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
    _check_int("size", size)
    ids: list[tuple[int, int]] = []
    pos = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            ids.append((level, pos >> level))
            pos += 1 << level
    return ids


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
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
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
        """Append one leaf hash without reporting nodes: the fast path for verifiers."""
        if len(leaf_hash) != HASH_SIZE or not isinstance(leaf_hash, bytes):
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
        size = self._size
        if size >= MAX_INT64:
            raise ValueError("tree is full")
        hashes = self._hashes
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
        return {"size": self._size, "hashes": [_b64encode(h) for h in self._hashes]}

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
            h = _b64decode_strict(item)
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
    _check_int("index", index)
    _check_int("size", size)
    if index >= size:
        raise ValueError(f"index {index} is not below tree size {size}")


def _check_old_new(old: int, new: int) -> None:
    _check_int("old", old)
    _check_int("new", new)
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


def _proof_size_arg(name: str, value: object) -> int:
    try:
        return _check_int(name, value)
    except (TypeError, ValueError) as exc:
        raise ProofError(str(exc)) from None


def _proof_hashes(proof: Sequence[bytes], expected_len: int) -> list[bytes]:
    if isinstance(proof, bytes | str) or not isinstance(proof, Sequence):
        raise ProofError("proof must be a sequence of hashes")
    if len(proof) != expected_len:
        raise ProofError(f"proof has {len(proof)} hashes, expected {expected_len}")
    return [_check_hash("proof hash", p, ProofError) for p in proof]


def _inclusion_proof_len(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); raise ProofError if it does not verify."""
    _check_hash("leaf_hash", leaf_hash, ProofError)
    _check_hash("root", root, ProofError)
    fn = _proof_size_arg("index", index)
    size = _proof_size_arg("size", size)
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
    _check_hash("old_root", old_root, ProofError)
    _check_hash("new_root", new_root, ProofError)
    first = _proof_size_arg("old_size", old_size)
    second = _proof_size_arg("new_size", new_size)
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


# --------------------------------------------------------------------------------------------
# Checkpoints (C2SP tlog-checkpoint)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def _checkpoint_line_ok(line: str) -> bool:
    """Non-empty, no newline or other ASCII control character, encodable as UTF-8."""
    if not line or "\n" in line or _CONTROL_RE.search(line):
        return False
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def format_checkpoint(
    *, origin: str, size: int, root: bytes, extensions: Sequence[str] = ()
) -> str:
    """The checkpoint text: origin, size, base64 root, then any extension lines, each + ``\\n``."""
    if not isinstance(origin, str) or not _checkpoint_line_ok(origin):
        raise CheckpointError("origin must be a non-empty line without control characters")
    try:
        _check_int("size", size)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(str(exc)) from None
    _check_hash("root", root, CheckpointError)
    for ext in extensions:
        if not isinstance(ext, str) or not _checkpoint_line_ok(ext):
            raise CheckpointError("extension lines must be non-empty, without control characters")
    return "".join(f"{line}\n" for line in (origin, str(size), _b64encode(root), *extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint text strictly (the inverse of ``format_checkpoint``)."""
    if not isinstance(text, str):
        raise CheckpointError("checkpoint text must be str")
    if len(text) > MAX_NOTE_SIZE:
        raise CheckpointError("checkpoint text too long")
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs origin, size and root lines")
    for line in lines:
        if not _checkpoint_line_ok(line):
            raise CheckpointError("checkpoint lines must be non-empty, without control characters")
    origin, size_line, root_line, *extensions = lines
    if _DECIMAL_RE.fullmatch(size_line) is None or int(size_line) > MAX_INT64:
        raise CheckpointError("tree size must be a decimal number without leading zeros")
    root = _b64decode_strict(root_line)
    if root is None or len(root) != HASH_SIZE:
        raise CheckpointError("root hash must be canonical base64 of 32 bytes")
    return Checkpoint(origin=origin, size=int(size_line), root=root, extensions=tuple(extensions))


# --------------------------------------------------------------------------------------------
# Keys and signed notes (C2SP signed-note, Ed25519)
# --------------------------------------------------------------------------------------------


def _valid_key_name(name: object) -> bool:
    """C2SP key name: non-empty, no Unicode space, no '+' (also: no control chars, UTF-8)."""
    if not isinstance(name, str) or not name or "+" in name:
        return False
    if _CONTROL_RE.search(name):
        return False
    if any(ch.isspace() or ord(ch) in _GO_SPACES for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require_key_name(name: object, error: type[ValueError] = ValueError) -> str:
    if not _valid_key_name(name):
        raise error("key name must be non-empty, without spaces, '+' or control characters")
    return name  # type: ignore[return-value]


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]."""
    _require_key_name(name)
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise ValueError("Ed25519 public key must be 32 bytes")
    return _sha256(name.encode("utf-8") + b"\n" + bytes([ED25519_ALG]) + public_key).digest()[:4]


def _check_note_text(text: object) -> bytes:
    """Validate note text for signing; return its UTF-8 bytes."""
    if not isinstance(text, str):
        raise NoteError("note text must be str")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if len(text) > MAX_NOTE_SIZE or _CONTROL_RE.search(text):
        raise NoteError("note text is too long or holds control characters other than newline")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("note text is not valid Unicode") from None
    if len(data) > MAX_NOTE_SIZE:
        raise NoteError("note text too long")
    return data


class NoteVerifier:
    """An Ed25519 note verifier key: ``name``, ``key_id``, ``public_key_bytes``, ``vkey``."""

    __slots__ = ("_key", "key_id", "name", "public_key_bytes")

    def __init__(self, name: str, public_key: bytes | Ed25519PublicKey) -> None:
        self.name: str = _require_key_name(name, KeyFormatError)
        if isinstance(public_key, Ed25519PublicKey):
            public_key = public_key.public_bytes_raw()
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise KeyFormatError("Ed25519 public key must be 32 bytes")
        try:
            self._key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError:
            raise KeyFormatError("invalid Ed25519 public key") from None
        self.public_key_bytes: bytes = public_key
        self.key_id: bytes = key_id(name, public_key)

    @property
    def vkey(self) -> str:
        """``<name>+<key ID as 8 hex digits>+<base64(0x01 || public key)>``."""
        key = _b64encode(bytes([ED25519_ALG]) + self.public_key_bytes)
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoteVerifier):
            return NotImplemented
        return (self.name, self.public_key_bytes) == (other.name, other.public_key_bytes)

    def __hash__(self) -> int:
        return hash((self.name, self.public_key_bytes))

    def __repr__(self) -> str:
        return f"NoteVerifier({self.vkey!r})"


def parse_vkey(vkey: str) -> NoteVerifier:
    """Parse ``<name>+<8 lowercase hex key ID>+<base64(0x01 || 32-byte key)>`` strictly."""
    if not isinstance(vkey, str):
        raise KeyFormatError("verifier key must be str")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("verifier key must be <name>+<key id>+<key>")
    name, hex_id, key_b64 = parts
    if not _valid_key_name(name):
        raise KeyFormatError("verifier key has an invalid key name")
    if re.fullmatch(r"[0-9a-f]{8}", hex_id) is None:
        raise KeyFormatError("verifier key ID must be 8 lowercase hex digits")
    key = _b64decode_strict(key_b64)
    if key is None or len(key) == 0:
        raise KeyFormatError("verifier key must end in canonical base64")
    if key[0] != ED25519_ALG:
        raise KeyFormatError(f"unsupported verifier key algorithm 0x{key[0]:02x} (want 0x01)")
    if len(key) != 33:
        raise KeyFormatError("Ed25519 verifier key must hold 32 key bytes")
    verifier = NoteVerifier(name, key[1:])
    if verifier.key_id.hex() != hex_id:
        raise KeyFormatError("verifier key ID does not match the key")
    return verifier


class NoteSigner:
    """An Ed25519 note signer; the key name is normally the log origin."""

    __slots__ = ("_key", "key_id", "name", "public_key_bytes")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name: str = _require_key_name(name)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("private_key must be an Ed25519PrivateKey")
        self._key = private_key
        self.public_key_bytes: bytes = private_key.public_key().public_bytes_raw()
        self.key_id: bytes = key_id(name, self.public_key_bytes)

    @property
    def vkey(self) -> str:
        return self.verifier().vkey

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.public_key_bytes)

    def sign(self, text: str) -> str:
        """The signature line ``— <name> <base64(key ID || signature)>\\n`` for ``text``."""
        sig = self._key.sign(_check_note_text(text))
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + sig)}\n"

    def __repr__(self) -> str:
        return f"NoteSigner({self.vkey!r})"


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """The signed note: ``text``, an empty line, then one signature line per signer.

    Per C2SP the text must end in a newline and hold no ASCII control character other than
    newline; it may contain empty lines (the last empty line of a note separates it from the
    signatures).
    """
    _check_note_text(text)
    signers = list(signers)
    if not signers:
        raise NoteError("at least one signer is needed")
    if len(signers) > MAX_NOTE_SIGNATURES:
        raise NoteError("too many signers")
    if len({(s.name, s.key_id) for s in signers}) != len(signers):
        raise NoteError("duplicate signer")
    note = text + "\n" + "".join(s.sign(text) for s in signers)
    if len(note.encode("utf-8")) > MAX_NOTE_SIZE:
        raise NoteError("signed note too long")
    return note


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """The verified text, the ``(name, key_id)`` of each verified signature, in note order,
    and those of the signatures by keys the caller does not know (ignored, not verified)."""

    text: str
    verified: tuple[tuple[str, bytes], ...]
    unknown: tuple[tuple[str, bytes], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.verified)


def open_note(note: str | bytes, verifiers: Sequence[NoteVerifier]) -> OpenedNote:
    """Verify a signed note against known verifier keys (C2SP signed-note).

    Signatures by unknown keys (name and key ID not both matching a known key) are ignored. A
    signature by a known key that fails, a duplicate signature by a known key, or a malformed
    note raises NoteError; no verified signature at all raises UnknownKeyError.
    """
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_SIZE:
            raise NoteError("note too long")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    elif isinstance(note, str):
        if len(note) > MAX_NOTE_SIZE:
            raise NoteError("note too long")
        try:
            size = len(note.encode("utf-8"))
        except UnicodeEncodeError:
            raise NoteError("note is not valid Unicode") from None
        if size > MAX_NOTE_SIZE:
            raise NoteError("note too long")
    else:
        raise NoteError("note must be str or bytes")

    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        if not isinstance(v, NoteVerifier):
            raise TypeError("verifiers must be NoteVerifier instances")
        prev = known.setdefault((v.name, v.key_id), v)
        if prev != v:
            raise ValueError(f"two different verifier keys share name and key ID ({v.name})")

    if _CONTROL_RE.search(note):
        raise NoteError("note holds control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no empty line before its signatures")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise NoteError("note must end with signature lines")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise NoteError("too many signatures")

    message = text.encode("utf-8")
    verified: list[tuple[str, bytes]] = []
    unknown: list[tuple[str, bytes]] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("malformed signature line")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        raw = _b64decode_strict(b64) if sep else None
        if raw is None or len(raw) < 5 or not _valid_key_name(name):
            raise NoteError("malformed signature line")
        kid, sig = raw[:4], raw[4:]
        verifier = known.get((name, kid))
        if verifier is None:
            if (name, kid) not in unknown:
                unknown.append((name, kid))
            continue
        if (name, kid) in verified:
            raise NoteError(f"duplicate signature by {name}")
        if not verifier.verify(message, sig):
            raise NoteError(f"invalid signature by {name}")
        verified.append((name, kid))
    if not verified:
        raise UnknownKeyError("note has no verified signature from a known key")
    return OpenedNote(text=text, verified=tuple(verified), unknown=tuple(unknown))


# --------------------------------------------------------------------------------------------
# Private keys
# --------------------------------------------------------------------------------------------


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_text(key: Ed25519PrivateKey) -> str:
    """Base64 of the 32-byte Ed25519 seed (keep it secret)."""
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("key must be an Ed25519PrivateKey")
    return _b64encode(key.private_bytes_raw())


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """Inverse of ``private_key_to_text``; surrounding whitespace is ignored.

    Error messages never include the key material.
    """
    if not isinstance(text, str):
        raise KeyFormatError("signing key text must be str")
    seed = _b64decode_strict(text.strip())
    if seed is None:
        raise KeyFormatError("signing key is not canonical standard base64")
    if len(seed) != 32:
        raise KeyFormatError(f"signing key must be a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)
