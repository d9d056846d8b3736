"""Unit tests for hashbank.tlog (pure: no Django, no database).

Run on their own with ``pytest --noconftest tests/hashbank/test_tlog.py`` (the shared
tests/conftest.py imports Django).
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashbank import tlog
from hashbank.tlog import (
    EMPTY_ROOT,
    Checkpoint,
    CheckpointError,
    KeyFormatError,
    Leaf,
    LeafError,
    NoteError,
    NoteSigner,
    NoteVerifier,
    ProofError,
    RightEdge,
    UnknownKeyError,
    consistency_proof,
    consistency_proof_nodes,
    decode_leaf,
    encode_add,
    encode_remove,
    format_checkpoint,
    generate_private_key,
    inclusion_proof,
    inclusion_proof_nodes,
    key_id,
    leaf_hash,
    node_hash,
    open_note,
    parse_checkpoint,
    parse_vkey,
    private_key_from_text,
    private_key_to_text,
    right_edge_node_ids,
    root_from_leaf_hashes,
    sign_note,
    verify_consistency,
    verify_inclusion,
)

# No example database on disk: these tests must not write into the working tree.
HYP = settings(database=None, max_examples=300, deadline=None)

REPO_ROOT = Path(__file__).resolve().parents[2]
C2SP_DIR = (REPO_ROOT / ".." / "shared" / "testdata" / "c2sp").resolve()

PDQ = "f" * 48 + "0123456789abcdef"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SALT = bytes(range(32))
SALT_HEX = SALT.hex()


def h(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


def flip(data: bytes, i: int, bit: int = 0) -> bytes:
    return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def noncanonical_b64(data: bytes) -> str:
    """Base64 of data with a non-zero padding bit: decodes to data, yet is not canonical."""
    text = base64.b64encode(data).decode()
    assert text.endswith("=")
    i = len(text.rstrip("=")) - 1
    out = text[:i] + B64_ALPHABET[B64_ALPHABET.index(text[i]) ^ 1] + text[i + 1 :]
    assert base64.b64decode(out) == data and out != text
    return out


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ============================================================================================
# Leaf encoding
# ============================================================================================


class TestLeafEncoding:
    def test_add_examples(self) -> None:
        assert (
            encode_add(salt=SALT, algorithm="pdq", value=PDQ, quality=93, timestamp=1700000000)
            == f"add2 {SALT_HEX} pdq {PDQ} 93 1700000000\n".encode()
        )
        assert (
            encode_add(salt=SALT, algorithm="md5", value=MD5, quality=None, timestamp=0)
            == f"add2 {SALT_HEX} md5 {MD5} - 0\n".encode()
        )
        assert (
            encode_add(
                salt=SALT,
                algorithm="vpdq",
                value="0a",
                quality=100,
                timestamp=5,
                origin="peer.example.org/lists/adult",
            )
            == f"add2 {SALT_HEX} vpdq 0a 100 5 peer.example.org/lists/adult\n".encode()
        )

    def test_salt_makes_each_add_unguessable(self) -> None:
        """Value and time known, the leaf hash matches no unsalted or zero-salt encoding,
        and the same fields under two salts give two leaves."""
        fields = {"algorithm": "md5", "value": MD5, "quality": None, "timestamp": 1700000000}
        one, two = encode_add(salt=SALT, **fields), encode_add(salt=SALT[::-1], **fields)
        assert leaf_hash(one) != leaf_hash(two)
        guesses = [
            f"add md5 {MD5} - 1700000000\n".encode(),
            encode_add(salt=bytes(32), **fields),
            encode_add(salt=b"\xff" * 32, **fields),
        ]
        assert leaf_hash(one) not in {leaf_hash(g) for g in guesses}
        assert decode_leaf(one).salt == SALT

    @pytest.mark.parametrize("reason", ["withdrawn", "disabled", "expired"])
    def test_remove_examples(self, reason: str) -> None:
        data = encode_remove(index=12, reason=reason, timestamp=1700000001)
        assert data == f"remove 12 {reason} 1700000001\n".encode()
        leaf = decode_leaf(data)
        assert leaf == Leaf(op="remove", removes=12, reason=reason, timestamp=1700000001)
        assert leaf.algorithm is None and leaf.value is None and leaf.origin is None
        assert leaf.salt is None

    def test_decode_add_fields(self) -> None:
        leaf = decode_leaf(f"add2 {SALT_HEX} pdq {PDQ} 7 42 bank.example/lists/minor\n".encode())
        assert leaf.op == "add"
        assert (leaf.algorithm, leaf.value, leaf.quality, leaf.timestamp) == ("pdq", PDQ, 7, 42)
        assert leaf.origin == "bank.example/lists/minor"
        assert leaf.salt == SALT
        assert leaf.removes is None and leaf.reason is None
        assert decode_leaf(f"add2 {SALT_HEX} md5 {MD5} - 0\n".encode()).quality is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"algorithm": "PDQ"},
            {"algorithm": ""},
            {"algorithm": "a" * 17},
            {"algorithm": "pd-q"},
            {"algorithm": "pdq\n"},
            {"value": PDQ.upper()},
            {"value": PDQ[:-1]},
            {"value": PDQ + "0"},
            {"value": " " + PDQ[1:]},
            {"value": "g" * 64},
            {"algorithm": "md5", "value": PDQ},
            {"algorithm": "x", "value": ""},
            {"algorithm": "x", "value": "a" * 513},
            {"algorithm": "x", "value": "\uff10"},  # FULLWIDTH DIGIT ZERO
            {"quality": 101},
            {"quality": -1},
            {"quality": True},
            {"quality": 50.0},
            {"quality": "50"},
            {"timestamp": -1},
            {"timestamp": 2**63},
            {"timestamp": True},
            {"timestamp": 1.5},
            {"origin": ""},
            {"origin": "a b"},
            {"origin": "a+b"},
            {"origin": "a\tb"},
            {"origin": "bank.example\n"},
            {"origin": "bänk.example"},
            {"origin": "a\x7f"},
            {"origin": "a" * 256},
            {"salt": b""},
            {"salt": SALT[:-1]},
            {"salt": SALT + b"\x00"},
            {"salt": SALT_HEX},
            {"salt": bytearray(SALT)},
            {"salt": None},
        ],
    )
    def test_encode_add_rejects(self, kwargs: dict) -> None:
        args = {
            "salt": SALT,
            "algorithm": "pdq",
            "value": PDQ,
            "quality": 90,
            "timestamp": 1,
            **kwargs,
        }
        with pytest.raises(LeafError):
            encode_add(**args)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"index": -1},
            {"index": True},
            {"index": 2**63},
            {"reason": "Withdrawn"},
            {"reason": "deleted"},
            {"reason": ""},
            {"timestamp": -5},
        ],
    )
    def test_encode_remove_rejects(self, kwargs: dict) -> None:
        args = {"index": 1, "reason": "withdrawn", "timestamp": 1, **kwargs}
        with pytest.raises(LeafError):
            encode_remove(**args)

    def test_extreme_values_round_trip(self) -> None:
        for data in [
            f"add2 {SALT_HEX} pdq {PDQ} 0 {2**63 - 1}\n".encode(),
            f"add2 {SALT_HEX} x {'f' * 512} 100 0 {'~' * 255}\n".encode(),
            f"remove {2**63 - 1} expired 0\n".encode(),
            f"add2 {SALT_HEX} abcdefghijklmnop 0 - 0 !\n".encode(),
        ]:
            assert decode_leaf(data).encode() == data

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\n",
            f"add2 {SALT_HEX} pdq {PDQ} 93 1700000000".encode(),  # no newline
            f"add2 {SALT_HEX} pdq {PDQ} 93 1700000000\n\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1700000000\r\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1700000000 \n".encode(),  # trailing space
            f" add2 {SALT_HEX} pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX}  pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX}\tpdq {PDQ} 93 1700000000\n".encode(),
            f"ADD2 {SALT_HEX} pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ.upper()} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ[:-1]} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX} md5 {PDQ} - 1\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 093 1700000000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 00 1700000000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 101 1700000000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} +9 1700000000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} -1 1700000000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 01700000000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 00\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 -1\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 {2**63}\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1_000\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1e3\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1 origin extra\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1 a+b\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1 \n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1 {'a' * 256}\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1 b\xc3\xa4nk\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 1 \x7f\n".encode(),
            f"add2 {SALT_HEX} pdq {PDQ} 93 \u0661\n".encode(),  # ARABIC-INDIC DIGIT ONE
            f"add2 {SALT_HEX} pdq {PDQ} - \n".encode(),
            f"add2 {SALT_HEX} - {PDQ} 1 1\n".encode(),
            f"add2 {SALT_HEX} x  1 1\n".encode(),
            f"add pdq {PDQ} 93 1700000000\n".encode(),  # version 1: no salt, retired
            f"add {SALT_HEX} pdq {PDQ} 93 1700000000\n".encode(),
            f"add3 {SALT_HEX} pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX.upper()} pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX[:-2]} pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX}00 pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 {base64.b64encode(SALT).decode()} pdq {PDQ} 93 1700000000\n".encode(),
            f"add2 {SALT_HEX} {SALT_HEX} pdq {PDQ} 93 1700000000\n".encode(),
            b"remove 01 withdrawn 1\n",
            b"remove -1 withdrawn 1\n",
            b"remove 1 withdrawn 1 origin\n",
            b"remove 1 Withdrawn 1\n",
            b"remove 1 deleted 1\n",
            b"remove 1 withdrawn\n",
            b"remove  1 withdrawn 1\n",
            f"remove {2**63} withdrawn 1\n".encode(),
            b"update 1 withdrawn 1\n",
            b"\xef\xbb\xbfremove 1 withdrawn 1\n",  # BOM
            b"remove 1 withdrawn 1\x00\n",
            b"a" * 2000,
        ],
    )
    def test_decode_rejects(self, data: bytes) -> None:
        with pytest.raises(LeafError):
            decode_leaf(data)

    def test_decode_rejects_non_bytes(self) -> None:
        with pytest.raises(LeafError):
            decode_leaf("remove 1 withdrawn 1\n")  # type: ignore[arg-type]

    def test_leaf_encode_rejects_mixed_fields(self) -> None:
        with pytest.raises(LeafError):
            Leaf(op="add", salt=SALT, algorithm="md5", value=MD5, removes=3).encode()
        with pytest.raises(LeafError):
            Leaf(op="remove", removes=1, reason="expired", value=MD5).encode()
        with pytest.raises(LeafError):
            Leaf(op="remove", removes=1, reason="expired", salt=SALT).encode()
        with pytest.raises(LeafError):
            Leaf(op="other").encode()  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "leaf",
        [
            Leaf(op="add", salt=SALT, value=MD5),
            Leaf(op="add", salt=SALT, algorithm="md5"),
            Leaf(op="add", algorithm="md5", value=MD5),
            Leaf(op="remove", reason="expired"),
            Leaf(op="remove", removes=1),
        ],
    )
    def test_leaf_encode_rejects_missing_fields(self, leaf: Leaf) -> None:
        with pytest.raises(LeafError):
            leaf.encode()


@st.composite
def add_fields(draw: st.DrawFn) -> dict:
    algorithm = draw(
        st.one_of(
            st.sampled_from(["pdq", "md5", "vpdq"]),
            st.from_regex(r"[a-z0-9_]{1,16}", fullmatch=True),
        )
    )
    length = {"pdq": 64, "md5": 32}.get(algorithm)
    hexchars = st.sampled_from("0123456789abcdef")
    if length is None:
        value = draw(st.text(hexchars, min_size=1, max_size=512))
    else:
        value = draw(st.text(hexchars, min_size=length, max_size=length))
    return {
        "salt": draw(st.binary(min_size=32, max_size=32)),
        "algorithm": algorithm,
        "value": value,
        "quality": draw(st.none() | st.integers(0, 100)),
        "timestamp": draw(st.integers(0, 2**63 - 1)),
        "origin": draw(st.none() | st.from_regex(r"[!-*,-~]{1,255}", fullmatch=True)),
    }


remove_fields = st.fixed_dictionaries(
    {
        "index": st.integers(0, 2**63 - 1),
        "reason": st.sampled_from(["withdrawn", "disabled", "expired"]),
        "timestamp": st.integers(0, 2**63 - 1),
    }
)

valid_leaves = st.one_of(
    add_fields().map(lambda f: encode_add(**f)),
    remove_fields.map(lambda f: encode_remove(**f)),
)


@st.composite
def mutated_leaves(draw: st.DrawFn) -> bytes:
    data = draw(valid_leaves)
    i = draw(st.integers(0, len(data)))
    interesting = st.sampled_from(b" \n\r\t0123+-_afAF\x00\x7f\xc3\xff")
    byte = draw(st.one_of(interesting, st.integers(0, 255)))
    kind = draw(st.sampled_from(["insert", "delete", "replace"]))
    if kind == "insert":
        return data[:i] + bytes([byte]) + data[i:]
    i = min(i, len(data) - 1)
    if kind == "delete":
        return data[:i] + data[i + 1 :]
    return data[:i] + bytes([byte]) + data[i + 1 :]


class TestLeafProperties:
    @HYP
    @given(add_fields())
    def test_add_round_trip(self, fields: dict) -> None:
        data = encode_add(**fields)
        leaf = decode_leaf(data)
        assert leaf.encode() == data
        assert (leaf.op, leaf.algorithm, leaf.value, leaf.quality) == (
            "add",
            fields["algorithm"],
            fields["value"],
            fields["quality"],
        )
        assert (leaf.timestamp, leaf.origin) == (fields["timestamp"], fields["origin"])
        assert leaf.salt == fields["salt"]

    @HYP
    @given(remove_fields)
    def test_remove_round_trip(self, fields: dict) -> None:
        data = encode_remove(**fields)
        leaf = decode_leaf(data)
        assert leaf.encode() == data
        assert (leaf.removes, leaf.reason, leaf.timestamp) == (
            fields["index"],
            fields["reason"],
            fields["timestamp"],
        )

    @staticmethod
    def _accepted_is_canonical(data: bytes) -> None:
        try:
            leaf = decode_leaf(data)
        except LeafError:
            return
        assert leaf.encode() == data
        assert decode_leaf(leaf.encode()) == leaf

    @HYP
    @given(mutated_leaves())
    def test_mutations_rejected_or_canonical(self, data: bytes) -> None:
        self._accepted_is_canonical(data)

    @HYP
    @given(st.binary(max_size=120))
    def test_random_bytes_rejected_or_canonical(self, data: bytes) -> None:
        self._accepted_is_canonical(data)

    @HYP
    @given(
        st.from_regex(
            rb"(add|remove) [a-z0-9_ +\-]{0,20} ?[0-9a-fA-F\-]{0,70} ?[0-9\-+]{0,4}"
            rb" ?[0-9]{0,20}( [!-~]{0,5})?\n?",
            fullmatch=True,
        )
    )
    def test_leaf_shaped_rejected_or_canonical(self, data: bytes) -> None:
        self._accepted_is_canonical(data)


# ============================================================================================
# Hashing and published RFC 6962 test vectors
# ============================================================================================
#
# Known-answer vectors for the 8-leaf reference tree, as published in
# google/certificate-transparency cpp/merkletree/merkle_tree_test.cc (kInputs, kSHA256Roots,
# kSHA256Paths, kSHA256Proofs) and transparency-dev/merkle (testonly/constants.go:
# LeafInputs, NodeHashes, RootHashes; proof/verify_test.go: inclusionProofs,
# consistencyProofs, which add the 6 -> 7 consistency proof). Those sources number leaves
# from 1 in their inclusion vectors; the indexes below are converted to 0-based.

VECTOR_LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# Root for each tree size 0..8.
VECTOR_ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# Every perfect-subtree node of the 8-leaf tree: VECTOR_NODES[level][index].
VECTOR_NODES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# (0-based leaf index, tree size, inclusion path)
VECTOR_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old size, new size, consistency proof)
VECTOR_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def vector_nodes_dict() -> dict[tuple[int, int], bytes]:
    return {
        (level, idx): value
        for level, row in enumerate(VECTOR_NODES)
        for idx, value in enumerate(row)
    }


class TestHashing:
    def test_empty_root(self) -> None:
        assert EMPTY_ROOT == hashlib.sha256(b"").digest() == VECTOR_ROOTS[0]
        assert root_from_leaf_hashes([]) == EMPTY_ROOT
        assert RightEdge().root() == EMPTY_ROOT

    def test_leaf_and_node_hash(self) -> None:
        assert leaf_hash(b"") == VECTOR_NODES[0][0]
        assert leaf_hash(b"\x00") == VECTOR_NODES[0][1]
        assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
        assert node_hash(VECTOR_NODES[0][0], VECTOR_NODES[0][1]) == VECTOR_NODES[1][0]
        with pytest.raises(ValueError):
            node_hash(b"short", VECTOR_NODES[0][1])
        with pytest.raises(ValueError):
            node_hash(VECTOR_NODES[0][0], VECTOR_NODES[0][1] + b"x")

    def test_vector_leaf_hashes(self) -> None:
        assert [leaf_hash(d) for d in VECTOR_LEAVES] == VECTOR_NODES[0]

    def test_vector_roots(self) -> None:
        hashes = [leaf_hash(d) for d in VECTOR_LEAVES]
        edge = RightEdge()
        assert edge.root() == VECTOR_ROOTS[0]
        for size in range(1, 9):
            edge.append(hashes[size - 1])
            assert edge.size == size
            assert edge.root() == VECTOR_ROOTS[size]
            assert root_from_leaf_hashes(hashes[:size]) == VECTOR_ROOTS[size]

    def test_vector_nodes_from_append(self) -> None:
        created: dict[tuple[int, int], bytes] = {}
        edge = RightEdge()
        for data in VECTOR_LEAVES:
            for level, idx, value in edge.append(leaf_hash(data)):
                assert (level, idx) not in created
                created[(level, idx)] = value
        assert created == vector_nodes_dict()

    def test_right_edge_shape(self) -> None:
        # transparency-dev/merkle testonly CompactTrees(): the compact range for each size.
        nh = VECTOR_NODES
        expected = [
            [],
            [nh[0][0]],
            [nh[1][0]],
            [nh[1][0], nh[0][2]],
            [nh[2][0]],
            [nh[2][0], nh[0][4]],
            [nh[2][0], nh[1][2]],
            [nh[2][0], nh[1][2], nh[0][6]],
            [nh[3][0]],
        ]
        edge = RightEdge()
        for size in range(9):
            if size:
                edge.append(leaf_hash(VECTOR_LEAVES[size - 1]))
            assert list(edge.hashes) == expected[size]
            ids = right_edge_node_ids(size)
            assert [vector_nodes_dict()[i] for i in ids] == expected[size]
            assert RightEdge.from_nodes(size, vector_nodes_dict()) == edge


def inclusion_corruptions(
    index: int, size: int, proof: list[bytes], root: bytes, lh: bytes
) -> list[dict]:
    """Probes that must all fail (after transparency-dev/merkle proof/verify_test.go)."""
    base = {"leaf_hash": lh, "index": index, "size": size, "proof": proof, "root": root}
    probes = [
        {**base, "index": index - 1},
        {**base, "index": index + 1},
        {**base, "index": index ^ 2},
        {**base, "size": size * 2},
        {**base, "size": size // 2},
        {**base, "leaf_hash": leaf_hash(b"WrongLeaf")},
        {**base, "root": EMPTY_ROOT},
        {**base, "root": SOME_HASH},
        {**base, "proof": [*proof, b""]},
        {**base, "proof": [*proof, root]},
        {**base, "proof": [b"", *proof]},
        {**base, "proof": [root, *proof]},
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = flip(wrong[i], 0, 3)
        probes.append({**base, "proof": wrong})
    if proof:
        probes.append({**base, "proof": proof[:-1]})
    if len(proof) > 1:
        probes.append({**base, "proof": [proof[0], SOME_HASH, *proof[1:]]})
    return probes


def consistency_corruptions(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> list[dict]:
    base = {
        "old_size": old,
        "new_size": new,
        "old_root": old_root,
        "new_root": new_root,
        "proof": proof,
    }
    probes = [
        {**base, "old_size": old - 1},
        {**base, "old_size": old + 1},
        {**base, "old_size": old ^ 2},
        {**base, "new_size": new * 2},
        {**base, "new_size": new // 2},
        {**base, "old_root": b"WrongRoot"},
        {**base, "new_root": b"WrongRoot"},
        {**base, "old_root": SOME_HASH},
        {**base, "new_root": SOME_HASH},
        {**base, "old_root": new_root, "new_root": old_root},
        {**base, "proof": []},
        {**base, "proof": [*proof, b""]},
        {**base, "proof": [*proof, old_root]},
        {**base, "proof": [*proof, new_root]},
        {**base, "proof": [b"", *proof]},
        {**base, "proof": [old_root, *proof]},
        {**base, "proof": [new_root, *proof]},
        {**base, "proof": [proof[0], *proof]},
        {**base, "proof": proof[:-1]},
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = flip(wrong[i], 0, 4)
        probes.append({**base, "proof": wrong})
    return probes


class TestVectorProofs:
    @pytest.mark.parametrize(("index", "size", "expected"), VECTOR_INCLUSION)
    def test_inclusion_vectors(self, index: int, size: int, expected: list[bytes]) -> None:
        assert inclusion_proof(index, size, vector_nodes_dict()) == expected
        lh = leaf_hash(VECTOR_LEAVES[index])
        verify_inclusion(
            leaf_hash=lh, index=index, size=size, proof=expected, root=VECTOR_ROOTS[size]
        )
        for probe in inclusion_corruptions(index, size, expected, VECTOR_ROOTS[size], lh):
            with pytest.raises(ProofError):
                verify_inclusion(**probe)

    @pytest.mark.parametrize(("old", "new", "expected"), VECTOR_CONSISTENCY)
    def test_consistency_vectors(self, old: int, new: int, expected: list[bytes]) -> None:
        assert consistency_proof(old, new, vector_nodes_dict()) == expected
        verify_consistency(
            old_size=old,
            new_size=new,
            old_root=VECTOR_ROOTS[old],
            new_root=VECTOR_ROOTS[new],
            proof=expected,
        )
        if expected:
            for probe in consistency_corruptions(
                old, new, VECTOR_ROOTS[old], VECTOR_ROOTS[new], expected
            ):
                with pytest.raises(ProofError):
                    verify_consistency(**probe)

    def test_single_entry_inclusion(self) -> None:
        lh = leaf_hash(b"data")
        verify_inclusion(leaf_hash=lh, index=0, size=1, proof=[], root=lh)
        for leaf, root in [(lh, EMPTY_ROOT), (EMPTY_ROOT, lh), (b"", b""), (lh, b"")]:
            with pytest.raises(ProofError):
                verify_inclusion(leaf_hash=leaf, index=0, size=1, proof=[], root=root)

    @pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (1, 1), (-1, 1)])
    def test_inclusion_bad_index(self, index: int, size: int) -> None:
        for leaf, root in [(SOME_HASH, EMPTY_ROOT), (EMPTY_ROOT, SOME_HASH)]:
            with pytest.raises(ProofError):
                verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=[], root=root)

    def test_inclusion_rejects_non_int_and_bad_proof_types(self) -> None:
        lh = leaf_hash(b"data")
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash=lh, index=False, size=1, proof=[], root=lh)
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash=lh, index=0, size=1, proof=b"", root=lh)
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash=bytearray(lh), index=0, size=1, proof=[], root=lh)

    def test_consistency_edge_cases(self) -> None:
        r1, r2, e = SOME_HASH, VECTOR_ROOTS[3], EMPTY_ROOT

        def ok(old: int, new: int, a: bytes, b: bytes, proof: list[bytes]) -> None:
            verify_consistency(old_size=old, new_size=new, old_root=a, new_root=b, proof=proof)

        def bad(old: int, new: int, a: bytes, b: bytes, proof: list[bytes]) -> None:
            with pytest.raises(ProofError):
                ok(old, new, a, b, proof)

        # Equal sizes: roots must match and the proof must be empty.
        ok(1, 1, r2, r2, [])
        ok(0, 0, e, e, [])
        bad(1, 1, r1, r2, [])
        bad(1, 1, e, e, [e])
        bad(0, 0, e, r2, [])
        bad(0, 0, r1, r1, [])  # the empty tree has exactly one root
        # Old size 0: consistent with anything, with an empty proof and the genuine empty root.
        ok(0, 1, e, r2, [])
        ok(0, 5, e, VECTOR_ROOTS[5], [])
        bad(0, 1, r1, r2, [])
        bad(0, 1, e, e, [e])
        # Time travel.
        bad(1, 0, r1, r2, [])
        bad(2, 1, r1, r2, [])
        # Empty proof for a real extension.
        bad(1, 2, VECTOR_ROOTS[1], VECTOR_ROOTS[2], [])
        # Malformed arguments.
        bad(-1, 2, r1, r2, [])
        bad(True, 2, r1, r2, [])
        bad(1, 2, b"x", r2, [VECTOR_NODES[0][1]])
        bad(1, 2, VECTOR_ROOTS[1], VECTOR_ROOTS[2], [VECTOR_NODES[0][1][:31]])
        ok(1, 2, VECTOR_ROOTS[1], VECTOR_ROOTS[2], [VECTOR_NODES[0][1]])


# ============================================================================================
# Cross-check against a naive recursive RFC 9162 implementation
# ============================================================================================

N = 70
LEAF_HASHES = [leaf_hash(b"entry %d" % i) for i in range(N)]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def ref_mth(start: int, end: int) -> bytes:
    """MTH(D[start:end]) straight from RFC 9162 §2.1.1."""
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return LEAF_HASHES[start]
    k = _split(n)
    return hashlib.sha256(b"\x01" + ref_mth(start, start + k) + ref_mth(start + k, end)).digest()


def ref_path(m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]) (RFC 9162 §2.1.3.1)."""
    n = end - start
    if n <= 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, start, start + k), ref_mth(start + k, end)]
    return [*ref_path(m - k, start + k, end), ref_mth(start, start + k)]


def ref_subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) (RFC 9162 §2.1.4.1)."""
    n = end - start
    if m == n:
        return [] if b else [ref_mth(start, end)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, start, start + k, b), ref_mth(start + k, end)]
    return [*ref_subproof(m - k, start + k, end, False), ref_mth(start, start + k)]


@pytest.fixture(scope="module")
def all_nodes() -> dict[tuple[int, int], bytes]:
    edge = RightEdge()
    nodes: dict[tuple[int, int], bytes] = {}
    for lh in LEAF_HASHES:
        for level, idx, value in edge.append(lh):
            nodes[(level, idx)] = value
    return nodes


class TestCrossCheck:
    def test_nodes_are_perfect_subtrees(self, all_nodes: dict) -> None:
        for (level, idx), value in all_nodes.items():
            start = idx << level
            assert start + (1 << level) <= N
            assert value == ref_mth(start, start + (1 << level))
        # Every perfect subtree of the final tree was reported exactly once.
        expected = sum(N >> level for level in range(N.bit_length()))
        assert len(all_nodes) == expected

    def test_roots_and_edges(self, all_nodes: dict) -> None:
        edge = RightEdge()
        for size in range(N + 1):
            if size:
                edge.append(LEAF_HASHES[size - 1])
            assert edge.root() == ref_mth(0, size) == root_from_leaf_hashes(LEAF_HASHES[:size])
            assert RightEdge.from_nodes(size, all_nodes) == edge
            assert RightEdge.from_json(edge.to_json()) == edge

    def test_inclusion_all(self, all_nodes: dict) -> None:
        for size in range(1, N + 1):
            root = ref_mth(0, size)
            for index in range(size):
                ids = inclusion_proof_nodes(index, size)
                assert len(set(ids)) == len(ids)
                subset = {i: all_nodes[i] for i in ids}  # exactly the ids listed suffice
                proof = inclusion_proof(index, size, subset)
                assert proof == ref_path(index, 0, size)
                lh = LEAF_HASHES[index]
                verify_inclusion(leaf_hash=lh, index=index, size=size, proof=proof, root=root)
                for i in range(len(proof)):
                    bad = list(proof)
                    bad[i] = flip(bad[i], i % 32, i % 8)
                    with pytest.raises(ProofError):
                        verify_inclusion(leaf_hash=lh, index=index, size=size, proof=bad, root=root)
                for other in {index - 1, index + 1, index ^ 2}:
                    if 0 <= other < size and other != index:
                        with pytest.raises(ProofError):
                            verify_inclusion(
                                leaf_hash=lh, index=other, size=size, proof=proof, root=root
                            )
                with pytest.raises(ProofError):
                    verify_inclusion(
                        leaf_hash=lh, index=index, size=size, proof=[*proof, root], root=root
                    )
                if proof:
                    with pytest.raises(ProofError):
                        verify_inclusion(
                            leaf_hash=lh, index=index, size=size, proof=proof[:-1], root=root
                        )
                if len(proof) > 1:
                    with pytest.raises(ProofError):
                        verify_inclusion(
                            leaf_hash=lh, index=index, size=size, proof=proof[::-1], root=root
                        )

    def test_consistency_all(self, all_nodes: dict) -> None:
        for new in range(1, N + 1):
            new_root = ref_mth(0, new)
            for old in range(0, new + 1):
                old_root = ref_mth(0, old)
                ids = consistency_proof_nodes(old, new)
                assert len(set(ids)) == len(ids)
                proof = consistency_proof(old, new, {i: all_nodes[i] for i in ids})
                expected = [] if old in (0, new) else ref_subproof(old, 0, new, True)
                assert proof == expected
                verify_consistency(
                    old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=proof
                )
                if not proof:
                    continue
                for probe in consistency_corruptions(old, new, old_root, new_root, proof):
                    with pytest.raises(ProofError):
                        verify_consistency(**probe)

    def test_consistency_of_different_histories_fails(self) -> None:
        # A fork: same size, one leaf rewritten; no proof from the honest tree verifies it.
        forked = list(LEAF_HASHES)
        forked[3] = leaf_hash(b"forged")
        fork_root = root_from_leaf_hashes(forked[:20])
        edge = RightEdge()
        nodes = {(lvl, i): v for lh in LEAF_HASHES[:40] for lvl, i, v in edge.append(lh)}
        proof = consistency_proof(20, 40, nodes)
        with pytest.raises(ProofError):
            verify_consistency(
                old_size=20, new_size=40, old_root=fork_root, new_root=edge.root(), proof=proof
            )


class TestProofArguments:
    @pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (6, 5), (-1, 3)])
    def test_inclusion_args(self, index: int, size: int) -> None:
        with pytest.raises(ValueError):
            inclusion_proof_nodes(index, size)
        with pytest.raises(ValueError):
            inclusion_proof(index, size, {})

    @pytest.mark.parametrize(("old", "new"), [(2, 1), (-1, 3), (1, -1)])
    def test_consistency_args(self, old: int, new: int) -> None:
        with pytest.raises(ValueError):
            consistency_proof_nodes(old, new)
        with pytest.raises(ValueError):
            consistency_proof(old, new, {})

    def test_non_int_args(self) -> None:
        with pytest.raises(TypeError):
            inclusion_proof_nodes(True, 2)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            consistency_proof_nodes(1.0, 2)  # type: ignore[arg-type]

    def test_trivial_consistency(self) -> None:
        assert consistency_proof_nodes(0, 10) == [] == consistency_proof(0, 10, {})
        assert consistency_proof_nodes(7, 7) == [] == consistency_proof(7, 7, {})
        assert consistency_proof_nodes(0, 0) == []

    def test_missing_or_bad_node(self) -> None:
        nodes = vector_nodes_dict()
        del nodes[(1, 3)]
        with pytest.raises(ValueError, match=r"missing tree node \(1, 3\)"):
            inclusion_proof(5, 8, nodes)
        nodes[(1, 3)] = b"short"
        with pytest.raises(ValueError):
            consistency_proof(6, 8, nodes)

    def test_node_ids_examples(self) -> None:
        assert inclusion_proof_nodes(5, 8) == [(0, 4), (1, 3), (2, 0)]
        # Size 7: the sibling of leaves 4..5 is leaf 6 alone; of 0..3 is the folded 4..6.
        assert inclusion_proof_nodes(0, 7) == [(0, 1), (1, 1), (1, 2), (0, 6)]
        assert consistency_proof_nodes(6, 7) == [(1, 2), (0, 6), (2, 0)]
        assert consistency_proof_nodes(4, 8) == [(2, 1)]
        assert right_edge_node_ids(0) == []
        assert right_edge_node_ids(13) == [(3, 0), (2, 2), (0, 12)]

    def test_large_tree_node_ids(self) -> None:
        size = 2**40 + 12345
        ids = inclusion_proof_nodes(size - 1, size)
        assert all(((i + 1) << lvl) <= size for lvl, i in ids)
        ids = consistency_proof_nodes(2**39 + 1, size)
        assert all(((i + 1) << lvl) <= size for lvl, i in ids)
        assert len(set(ids)) == len(ids) < 128


# ============================================================================================
# RightEdge
# ============================================================================================

hash_lists = st.lists(st.binary(min_size=32, max_size=32), max_size=150)


class TestRightEdge:
    @HYP
    @given(hash_lists, st.data())
    def test_matches_reference(self, hashes: list[bytes], data: st.DataObject) -> None:
        cut = data.draw(st.integers(0, len(hashes)))
        edge = RightEdge()
        nodes: dict[tuple[int, int], bytes] = {}
        for level, idx, value in edge.extend(hashes[:cut]):
            nodes[(level, idx)] = value
        assert edge.size == cut
        assert edge.root() == root_from_leaf_hashes(hashes[:cut])
        restored = RightEdge.from_json(edge.to_json())
        snapshot = edge.copy()
        for level, idx, value in restored.extend(hashes[cut:]):
            nodes[(level, idx)] = value
        assert snapshot == edge  # copy and original untouched by extending the restored one
        assert restored.size == len(hashes)
        assert restored.root() == root_from_leaf_hashes(hashes)
        assert RightEdge.from_nodes(len(hashes), nodes) == restored
        assert len(nodes) == sum(len(hashes) >> lvl for lvl in range(len(hashes).bit_length()))

    def test_append_reports_nodes(self) -> None:
        edge = RightEdge()
        edge.extend(LEAF_HASHES[:3])
        created = edge.append(LEAF_HASHES[3])
        assert [(lvl, i) for lvl, i, _ in created] == [(0, 3), (1, 1), (2, 0)]
        assert created[-1][2] == edge.root() == ref_mth(0, 4)
        assert [(lvl, i) for lvl, i, _ in edge.append(LEAF_HASHES[4])] == [(0, 4)]

    @pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33, bytearray(32), "x" * 32, None])
    def test_append_rejects(self, bad: object) -> None:
        with pytest.raises(ValueError):
            RightEdge().append(bad)  # type: ignore[arg-type]

    def test_json_shape(self) -> None:
        edge = RightEdge()
        edge.extend(LEAF_HASHES[:5])
        doc = edge.to_json()
        assert doc == {
            "size": 5,
            "hashes": [b64(ref_mth(0, 4)), b64(LEAF_HASHES[4])],
        }

    @pytest.mark.parametrize(
        "doc",
        [
            {},
            {"size": 1},
            {"size": 0, "hashes": [], "root": ""},
            {"size": -1, "hashes": []},
            {"size": True, "hashes": [base64.b64encode(b"x" * 32).decode()]},
            {"size": "1", "hashes": [base64.b64encode(b"x" * 32).decode()]},
            {"size": 1, "hashes": []},
            {"size": 2, "hashes": [base64.b64encode(b"x" * 32).decode()] * 2},
            {"size": 1, "hashes": [base64.b64encode(b"x" * 31).decode()]},
            {"size": 1, "hashes": [base64.b64encode(b"x" * 32).decode().rstrip("=")]},
            {"size": 1, "hashes": [base64.urlsafe_b64encode(b"\xff" * 32).decode()]},
            {"size": 1, "hashes": [noncanonical_b64(b"x" * 32)]},
            {"size": 1, "hashes": [" " + base64.b64encode(b"x" * 32).decode()]},
            {"size": 1, "hashes": "abc"},
            [],
        ],
    )
    def test_from_json_rejects(self, doc: object) -> None:
        with pytest.raises(ValueError):
            RightEdge.from_json(doc)  # type: ignore[arg-type]

    def test_from_nodes_missing(self) -> None:
        with pytest.raises(ValueError, match="missing"):
            RightEdge.from_nodes(3, {(1, 0): SOME_HASH})

    def test_copy_is_independent(self) -> None:
        edge = RightEdge()
        edge.extend(LEAF_HASHES[:3])
        other = edge.copy()
        other.append(LEAF_HASHES[3])
        assert edge.size == 3 and other.size == 4
        assert edge != other


# ============================================================================================
# Checkpoints
# ============================================================================================

ROOT = VECTOR_ROOTS[8]
ROOT_B64 = base64.b64encode(ROOT).decode()


class TestCheckpoint:
    def test_format_and_parse(self) -> None:
        text = format_checkpoint(origin="hashbank.example.org/lists/adult", size=8, root=ROOT)
        assert text == f"hashbank.example.org/lists/adult\n8\n{ROOT_B64}\n"
        assert parse_checkpoint(text) == Checkpoint(
            origin="hashbank.example.org/lists/adult", size=8, root=ROOT, extensions=()
        )
        empty = format_checkpoint(origin="o", size=0, root=EMPTY_ROOT)
        assert empty == "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        assert parse_checkpoint(empty).size == 0

    def test_extensions(self) -> None:
        text = format_checkpoint(origin="o", size=1, root=ROOT, extensions=["ext one", "x"])
        cp = parse_checkpoint(text)
        assert cp.extensions == ("ext one", "x")
        assert (
            format_checkpoint(
                origin=cp.origin, size=cp.size, root=cp.root, extensions=cp.extensions
            )
            == text
        )

    def test_c2sp_example_parses(self) -> None:
        # The note text of the C2SP tlog-checkpoint example.
        cp = parse_checkpoint(
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        )
        assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "o\n8\n",
            f"o\n8\n{ROOT_B64}",  # no final newline
            f"o\n08\n{ROOT_B64}\n",
            f"o\n00\n{ROOT_B64}\n",
            f"o\n+8\n{ROOT_B64}\n",
            f"o\n-8\n{ROOT_B64}\n",
            f"o\n 8\n{ROOT_B64}\n",
            f"o\n8 \n{ROOT_B64}\n",
            f"o\n8.0\n{ROOT_B64}\n",
            f"o\n\u0668\n{ROOT_B64}\n",  # ARABIC-INDIC DIGIT EIGHT
            f"o\n{2**63}\n{ROOT_B64}\n",
            f"o\n\n{ROOT_B64}\n",
            f"\n8\n{ROOT_B64}\n",
            f"o\n8\n{ROOT_B64.rstrip('=')}\n",
            f"o\n8\n{base64.b64encode(ROOT[:31]).decode()}\n",
            f"o\n8\n{base64.b64encode(ROOT + b'x').decode()}\n",
            "o\n8\n" + base64.urlsafe_b64encode(b"\xfb" * 32).decode() + "\n",
            f"o\n8\n{noncanonical_b64(ROOT)}\n",
            f"o\n8\n{ROOT_B64} \n",
            f"o\r\n8\n{ROOT_B64}\n",
            f"o\n8\n{ROOT_B64}\r\n",
            f"o\n8\n{ROOT_B64}\n\n",  # empty extension line
            f"o\n8\n{ROOT_B64}\next\n\n",
            f"o\t1\n8\n{ROOT_B64}\n",
        ],
    )
    def test_parse_rejects(self, text: str) -> None:
        with pytest.raises(CheckpointError):
            parse_checkpoint(text)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"origin": ""},
            {"origin": "a\nb"},
            {"origin": "a\x00"},
            {"size": -1},
            {"size": True},
            {"size": 2**63},
            {"root": ROOT[:31]},
            {"root": ROOT.hex()},
            {"extensions": [""]},
            {"extensions": ["a\nb"]},
        ],
    )
    def test_format_rejects(self, kwargs: dict) -> None:
        with pytest.raises(CheckpointError):
            format_checkpoint(**{"origin": "o", "size": 1, "root": ROOT, **kwargs})

    @HYP
    @given(
        st.from_regex(r"[!-~]{1,80}", fullmatch=True),
        st.integers(0, 2**63 - 1),
        st.binary(min_size=32, max_size=32),
    )
    def test_round_trip(self, origin: str, size: int, root: bytes) -> None:
        text = format_checkpoint(origin=origin, size=size, root=root)
        assert parse_checkpoint(text) == Checkpoint(origin, size, root)


# ============================================================================================
# Keys and signed notes
# ============================================================================================


def signer(name: str, seed: int) -> NoteSigner:
    return NoteSigner(name, private_key_from_text(base64.b64encode(bytes([seed]) * 32).decode()))


ORIGIN = "hashbank.example.org/lists/adult"


@pytest.fixture(scope="module")
def example() -> tuple[str, bytes]:
    """The C2SP signed-note worked example: (vkey, note bytes)."""
    if not C2SP_DIR.is_dir():
        pytest.skip(f"C2SP test data not found at {C2SP_DIR}")
    vkey = (C2SP_DIR / "example.vkey").read_text("utf-8").strip()
    note = (C2SP_DIR / "example.note").read_bytes()
    return vkey, note


class TestC2SPExample:
    def test_opens(self, example: tuple[str, bytes]) -> None:
        vkey, note = example
        verifier = parse_vkey(vkey)
        assert verifier.name == "example.com/foo"
        assert verifier.key_id == h("530d903a")
        assert verifier.vkey == vkey
        assert key_id(verifier.name, verifier.public_key_bytes) == h("530d903a")
        opened = open_note(note, [verifier])
        assert opened.text == "This is an example message.\n"
        assert opened.verified == (("example.com/foo", h("530d903a")),)
        assert opened.names == ("example.com/foo",)
        assert open_note(note.decode("utf-8"), [verifier]) == opened

    def test_any_changed_text_byte_fails(self, example: tuple[str, bytes]) -> None:
        vkey, note = example
        verifier = parse_vkey(vkey)
        text_len = len(b"This is an example message.\n")
        for i in range(text_len):
            for bit in range(8):
                with pytest.raises(NoteError):
                    open_note(flip(note, i, bit), [verifier])
            for value in (0x20, 0x41, 0x7E):
                if note[i] != value:
                    with pytest.raises(NoteError):
                        open_note(note[:i] + bytes([value]) + note[i + 1 :], [verifier])

    def test_changed_signature_fails_as_invalid(self, example: tuple[str, bytes]) -> None:
        vkey, note = example
        verifier = parse_vkey(vkey)
        text, _, sig_line = note.decode().rpartition("\n\n")
        prefix, b64 = sig_line.rstrip("\n").rsplit(" ", 1)
        raw = base64.b64decode(b64)
        for i in range(4, len(raw), 7):
            bad = base64.b64encode(flip(raw, i)).decode()
            with pytest.raises(NoteError) as exc:
                open_note(f"{text}\n\n{prefix} {bad}\n", [verifier])
            assert not isinstance(exc.value, UnknownKeyError)

    def test_unknown_key(self, example: tuple[str, bytes]) -> None:
        _, note = example
        with pytest.raises(UnknownKeyError):
            open_note(note, [signer("example.com/foo", 1).verifier()])
        with pytest.raises(UnknownKeyError):
            open_note(note, [])


class TestSignedNotes:
    def test_sign_and_open_with_rotation(self) -> None:
        old, new = signer(ORIGIN, 1), signer(ORIGIN, 2)
        text = format_checkpoint(origin=ORIGIN, size=8, root=ROOT)
        note = sign_note(text, [old, new])
        head, sigs = note.split("\n\n")
        assert head + "\n" == text
        lines = sigs.splitlines()
        assert [line.split(" ")[1] for line in lines] == [ORIGIN, ORIGIN]
        assert all(line.startswith("\u2014 ") for line in lines)

        only_old = open_note(note, [old.verifier()])
        assert only_old.text == text
        assert only_old.verified == ((ORIGIN, old.key_id),)
        assert only_old.unknown == ((ORIGIN, new.key_id),)
        assert open_note(note, [new.verifier()]).verified == ((ORIGIN, new.key_id),)
        both = open_note(note, [new.verifier(), old.verifier()])
        assert both.verified == ((ORIGIN, old.key_id), (ORIGIN, new.key_id))
        assert both.unknown == ()
        assert parse_checkpoint(both.text) == Checkpoint(ORIGIN, 8, ROOT)
        # A verifier that knows neither key.
        with pytest.raises(UnknownKeyError):
            open_note(note, [signer(ORIGIN, 3).verifier()])
        # Same key under another name is a different key.
        with pytest.raises(UnknownKeyError):
            open_note(note, [signer("other.example/lists/adult", 1).verifier()])

    def test_signature_is_deterministic_and_matches_sign(self) -> None:
        s = signer(ORIGIN, 7)
        text = "hello\n"
        assert sign_note(text, [s]) == text + "\n" + s.sign(text)
        assert s.sign(text) == s.sign(text)

    def test_one_bad_known_signature_rejects_note(self) -> None:
        old, new = signer(ORIGIN, 1), signer(ORIGIN, 2)
        text = format_checkpoint(origin=ORIGIN, size=8, root=ROOT)
        good_old = old.sign(text)
        forged_new = new.sign(format_checkpoint(origin=ORIGIN, size=9, root=ROOT))
        note = text + "\n" + good_old + forged_new
        assert open_note(note, [old.verifier()]).verified == ((ORIGIN, old.key_id),)
        with pytest.raises(NoteError) as exc:
            open_note(note, [old.verifier(), new.verifier()])
        assert not isinstance(exc.value, UnknownKeyError)

    def test_duplicate_known_signature_rejected(self) -> None:
        s = signer(ORIGIN, 1)
        note = sign_note("t\n", [s])
        with pytest.raises(NoteError):
            open_note(note + s.sign("t\n"), [s.verifier()])
        # Duplicate lines by unknown keys are ignored (reported once).
        other = signer(ORIGIN, 2)
        opened = open_note(note + other.sign("t\n") * 2, [s.verifier()])
        assert opened.unknown == ((ORIGIN, other.key_id),)

    def test_text_with_empty_lines(self) -> None:
        # C2SP allows empty lines in the text; the last empty line separates the signatures.
        s = signer("n", 1)
        for text in ["a\n\nb\n", "\n", "a\n\n", "x\n\n\u2014 fake sig\n"]:
            opened = open_note(sign_note(text, [s]), [s.verifier()])
            assert opened.text == text

    def test_unicode_text(self) -> None:
        s = signer("n", 1)
        text = "Ognuno sta solo sul cuor della terra\ned \u00e8 subito sera.\n"
        assert open_note(sign_note(text, [s]).encode("utf-8"), [s.verifier()]).text == text

    @pytest.mark.parametrize(
        "text", ["", "no newline", "tab\there\n", "cr\r\n", "nul\x00\n", "esc\x1b\n", "\ud800\n"]
    )
    def test_sign_rejects_text(self, text: str) -> None:
        with pytest.raises(NoteError):
            sign_note(text, [signer("n", 1)])

    def test_sign_rejects_signers(self) -> None:
        s = signer("n", 1)
        with pytest.raises(NoteError):
            sign_note("t\n", [])
        with pytest.raises(NoteError):
            sign_note("t\n", [s, signer("n", 1)])
        with pytest.raises(NoteError):
            sign_note("x" * (1 << 20) + "\n", [s])

    def _note(self) -> tuple[str, NoteVerifier]:
        s = signer(ORIGIN, 1)
        return sign_note("text\n", [s]), s.verifier()

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda n: n.replace("\n\n", "\n"),  # no blank line
            lambda n: n[:-1],  # no final newline
            lambda n: n + "\n",  # trailing blank line
            lambda n: n.replace("\u2014 ", "-- "),
            lambda n: n.replace("\u2014 ", "\u2014"),
            lambda n: n.replace("\u2014 ", "\u2013 "),  # EN DASH
            lambda n: n.replace(f"{ORIGIN} ", f"{ORIGIN}  "),
            lambda n: n.replace(f"{ORIGIN} ", f"{ORIGIN}\t"),
            lambda n: n.replace(f"{ORIGIN} ", ""),
            lambda n: n.replace(f"\u2014 {ORIGIN}", "\u2014 a+b"),
            lambda n: n.replace(f"\u2014 {ORIGIN}", "\u2014 "),
            lambda n: n.rstrip("\n").rstrip("=") + "\n",  # unpadded base64
            lambda n: n.rstrip("\n") + "==\n",
            lambda n: n.rstrip("\n") + " \n",
            lambda n: n.rsplit(" ", 1)[0] + " AAAA\n",  # 3 bytes: shorter than a key ID
            lambda n: n.rsplit(" ", 1)[0] + " AAAAAA==\n",  # 4 bytes: key ID, no signature
            lambda n: n.rsplit(" ", 1)[0] + " \n",
            lambda n: n.replace("text", "te\rxt"),
            lambda n: n.replace("text", "te\x00xt"),
            lambda n: n.replace("text", "te\txt"),
            lambda n: n + "not a signature\n",
            lambda n: n + n.split("\n\n")[1] * 100,  # 101 signatures
            lambda n: "x" * (1 << 20) + n,
        ],
    )
    def test_malformed(self, mutate) -> None:
        note, verifier = self._note()
        bad = mutate(note)
        assert bad != note
        with pytest.raises(NoteError) as exc:
            open_note(bad, [verifier])
        assert type(exc.value) is NoteError, exc.value

    def test_malformed_bytes(self) -> None:
        note, verifier = self._note()
        with pytest.raises(NoteError):
            open_note(b"\xff" + note.encode(), [verifier])
        with pytest.raises(NoteError):
            open_note(note.encode().replace(b"text", b"t\xc3xt"), [verifier])
        with pytest.raises(NoteError):
            open_note(note.encode("utf-16"), [verifier])
        with pytest.raises(NoteError):
            open_note(None, [verifier])  # type: ignore[arg-type]

    def test_many_unknown_signatures_within_limit(self) -> None:
        s = signer(ORIGIN, 1)
        others = [signer(f"w{i}.example", 10) for i in range(99)]
        note = sign_note("t\n", [s, *others])
        opened = open_note(note, [s.verifier()])
        assert len(opened.unknown) == 99

    def test_ambiguous_verifiers(self) -> None:
        # Two different keys with the same name and key ID (forced collision) are refused.
        note, verifier = self._note()
        twin = NoteVerifier(verifier.name, signer("x", 9).public_key_bytes)
        twin.key_id = verifier.key_id  # simulate a key-ID collision
        with pytest.raises(ValueError):
            open_note(note, [verifier, twin])
        # The same key listed twice is fine.
        assert open_note(note, [verifier, parse_vkey(verifier.vkey)]).names == (ORIGIN,)


class TestKeys:
    def test_vkey_format(self) -> None:
        s = signer(ORIGIN, 1)
        pub = s.public_key_bytes
        kid = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + pub).digest()[:4]
        assert s.key_id == kid == key_id(ORIGIN, pub)
        assert s.vkey == f"{ORIGIN}+{kid.hex()}+" + b64(b"\x01" + pub)
        v = parse_vkey(s.vkey)
        assert (v.name, v.key_id, v.public_key_bytes, v.vkey) == (ORIGIN, kid, pub, s.vkey)
        assert v == s.verifier()

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda name, kid, key: f"{name}+{kid}",
            lambda name, kid, key: f"{name}{kid}{key}",
            lambda name, kid, key: f"+{kid}+{key}",
            lambda name, kid, key: f"{name} x+{kid}+{key}",
            lambda name, kid, key: f"{name}+{kid.upper()}+{key}",
            lambda name, kid, key: f"{name}+{kid[:7]}+{key}",
            lambda name, kid, key: f"{name}+0{kid}+{key}",
            lambda name, kid, key: f"{name}+{'0' * 8}+{key}",
            lambda name, kid, key: f"{name}+{kid}+{key[:-1]}",
            lambda name, kid, key: f"{name}+{kid}+{key}\n",
            lambda name, kid, key: f" {name}+{kid}+{key}",
            lambda name, kid, key: f"{name}+{kid}+",
            lambda name, kid, key: f"{name}+{kid}+{key}+",
            lambda name, kid, key: f"{name}+{kid}+" + b64(b"\x02" + base64.b64decode(key)[1:]),
            lambda name, kid, key: f"{name}+{kid}+" + b64(base64.b64decode(key)[:-1]),
            lambda name, kid, key: f"{name}+{kid}+" + b64(base64.b64decode(key) + b"x"),
            lambda name, kid, key: f"other+{kid}+{key}",
        ],
    )
    def test_parse_vkey_rejects(self, mutate) -> None:
        name, kid, key = signer(ORIGIN, 1).vkey.split("+")
        with pytest.raises(KeyFormatError):
            parse_vkey(mutate(name, kid, key))

    @pytest.mark.parametrize(
        "name", ["", "a b", "a+b", "a\u00a0b", "a\u3000b", "a\u2028b", "a\u0085b", "a\nb", "a\x01b"]
    )
    def test_bad_key_names(self, name: str) -> None:
        with pytest.raises(ValueError):
            NoteSigner(name, generate_private_key())
        with pytest.raises(ValueError):
            key_id(name, b"\x00" * 32)

    def test_unicode_key_name_ok(self) -> None:
        s = NoteSigner("b\u00e4nk.example/\u00e9", generate_private_key())
        assert open_note(sign_note("t\n", [s]), [parse_vkey(s.vkey)]).names == (s.name,)

    def test_key_id_rejects_bad_key(self) -> None:
        with pytest.raises(ValueError):
            key_id("n", b"\x00" * 31)

    def test_private_key_text_round_trip(self) -> None:
        key = generate_private_key()
        text = private_key_to_text(key)
        assert len(base64.b64decode(text)) == 32
        again = private_key_from_text(f"  {text}\n")
        assert again.private_bytes_raw() == key.private_bytes_raw()
        assert NoteSigner("n", again).vkey == NoteSigner("n", key).vkey

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "not base64!",
            base64.b64encode(b"\x01" * 31).decode(),
            base64.b64encode(b"\x01" * 33).decode(),
            base64.b64encode(b"\x01" * 64).decode(),
            base64.b64encode(b"\x01" * 32).decode().rstrip("="),
            base64.urlsafe_b64encode(b"\xff" * 32).decode(),
            noncanonical_b64(b"\x01" * 32),
        ],
    )
    def test_private_key_from_text_rejects(self, text: str) -> None:
        with pytest.raises(KeyFormatError) as exc:
            private_key_from_text(text)
        if len(text) > 8:
            assert text not in str(exc.value)  # never echo key material

    def test_private_key_helpers_type_checks(self) -> None:
        with pytest.raises(TypeError):
            private_key_to_text("key")  # type: ignore[arg-type]
        with pytest.raises(KeyFormatError):
            private_key_from_text(b"AAAA")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            NoteSigner("n", "key")  # type: ignore[arg-type]


class TestLogFormatDocExample:
    """The worked example of docs/LOG_FORMAT.md: golden bytes that pin the wire format."""

    PDQ_VALUE = "f8f8f0cee0f0e8c0c0c0e0c1c3c7cfcf070707070f0f1f1f3f3f7f7fffffefe0"
    # Example salts only (bytes 00..1f, 20..3f, 40..5f); the bank draws fresh random ones.
    SALTS = [bytes(range(0, 32)), bytes(range(32, 64)), bytes(range(64, 96))]
    LEAVES = [
        b"add2 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f pdq "
        + PDQ_VALUE.encode()
        + b" 93 1718000000\n",
        b"add2 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f md5 "
        b"d41d8cd98f00b204e9800998ecf8427e - 1718000060\n",
        b"add2 404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f pdq "
        + PDQ_VALUE.encode()
        + b" 88 1718000120 peer.example.net/lists/adult\n",
        b"remove 0 withdrawn 1718003600\n",
    ]
    LEAF_HASHES = [
        h("b38962d00ff4b52eecfd96c17b0aeeb35fa38a5f43a4454e82d2404207223fe1"),
        h("d9cca2fa9ee828d9f427cb23670586500984178c7ee588f0a4e7943cc99386c2"),
        h("e9272bcd54d4cf45ce82f7a8347bc329488340bbaefc8ce221b0c62cef7e1240"),
        h("81c1b0e6c287fedd4d37876ba31927e67dfe245957f812f0d71eb872e6ba770f"),
    ]
    ROOT = h("b83c053c0096f753c668474911a39359469faff21e07f13859292e41e3cea403")
    KEY_TEXT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    VKEY = "hashbank.example.org/lists/adult+1476c9f3+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
    NOTE = (
        "hashbank.example.org/lists/adult\n4\nuDwFPACW91PGaEdJEaOTWUafr/IeB/E4WSkuQePOpAM=\n\n"
        "\u2014 hashbank.example.org/lists/adult FHbJ88AuJeuM/3V4Pwqlqpf36wGPJmnsf9aH9MsUDVI78KB4"
        "QSs4eG8bZ57SVfKl7T8PBYT/sXZ2G0Dpq+4QDkd48gc=\n"
    )

    def test_leaves(self) -> None:
        salts = self.SALTS
        assert (
            encode_add(
                salt=salts[0],
                algorithm="pdq",
                value=self.PDQ_VALUE,
                quality=93,
                timestamp=1718000000,
            )
            == self.LEAVES[0]
        )
        assert (
            encode_add(
                salt=salts[1], algorithm="md5", value=MD5, quality=None, timestamp=1718000060
            )
            == self.LEAVES[1]
        )
        assert (
            encode_add(
                salt=salts[2],
                algorithm="pdq",
                value=self.PDQ_VALUE,
                quality=88,
                timestamp=1718000120,
                origin="peer.example.net/lists/adult",
            )
            == self.LEAVES[2]
        )
        assert encode_remove(index=0, reason="withdrawn", timestamp=1718003600) == self.LEAVES[3]
        assert [leaf_hash(b) for b in self.LEAVES] == self.LEAF_HASHES

    def test_doc_shows_these_bytes(self) -> None:
        """docs/LOG_FORMAT.md prints exactly these leaves, hashes, root and note."""
        doc = (REPO_ROOT / "docs" / "LOG_FORMAT.md").read_text("utf-8")
        for leaf in self.LEAVES:
            assert leaf.decode("ascii") in doc
        for digest in [*self.LEAF_HASHES, self.ROOT]:
            assert digest.hex() in doc
        assert self.NOTE.split("\n\n")[1].strip() in doc
        assert b64(self.ROOT) in doc
        assert f'"salt": "{b64(self.SALTS[0])}"' in doc  # the entry JSON example of section 5

    def test_tree_and_note(self) -> None:
        edge = RightEdge()
        edge.extend(self.LEAF_HASHES)
        assert edge.root() == self.ROOT
        assert edge.to_json() == {"size": 4, "hashes": [b64(self.ROOT)]}
        assert inclusion_proof_nodes(2, 4) == [(0, 3), (1, 0)]
        signer = NoteSigner(
            "hashbank.example.org/lists/adult", private_key_from_text(self.KEY_TEXT)
        )
        assert signer.vkey == self.VKEY
        text = format_checkpoint(origin=signer.name, size=4, root=self.ROOT)
        assert sign_note(text, [signer]) == self.NOTE
        opened = open_note(self.NOTE, [parse_vkey(self.VKEY)])
        assert parse_checkpoint(opened.text) == Checkpoint(signer.name, 4, self.ROOT)


def test_package_is_pure() -> None:
    """Every module of the package imports only the stdlib, ``cryptography`` and its siblings."""
    allowed = set(sys.stdlib_module_names) | {"__future__", "cryptography"}
    modules = sorted(Path(tlog.__file__).parent.glob("*.py"))
    assert len(modules) > 1
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed or name.startswith("hashbank.tlog"), (
                    path.name,
                    name,
                )


def test_importing_the_package_loads_no_django() -> None:
    # A fresh interpreter: this test process has Django loaded by pytest-django already.
    code = (
        "import importlib, pkgutil, sys\n"
        "import hashbank.tlog\n"
        "for info in pkgutil.iter_modules(hashbank.tlog.__path__):\n"
        "    importlib.import_module('hashbank.tlog.' + info.name)\n"
        "print(hashbank.tlog.__file__)\n"
        "print('django' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    module_file, django_loaded = result.stdout.splitlines()
    assert Path(module_file).is_relative_to(REPO_ROOT)
    assert django_loaded == "False"


def test_push_builds_the_same_tree_as_append() -> None:
    import hashlib as _h

    a, b = tlog.RightEdge(), tlog.RightEdge()
    for i in range(300):
        digest = _h.sha256(str(i).encode()).digest()
        a.append(digest)
        b.push(digest)
        assert (a.size, a.root()) == (b.size, b.root())
    with pytest.raises(ValueError):
        b.push(b"short")


def test_push_all_builds_the_same_tree_as_append() -> None:
    import hashlib as _h

    digests = [_h.sha256(str(i).encode()).digest() for i in range(300)]
    a, b = tlog.RightEdge(), tlog.RightEdge()
    a.extend(digests[:137])
    b.push_all(digests[:137])
    assert (a.size, a.root()) == (b.size, b.root())
    a.extend(digests[137:])
    b.push_all(iter(digests[137:]))
    assert (a.size, a.root()) == (b.size, b.root())
    with pytest.raises(ValueError):
        b.push_all([digests[0], b"short"])
