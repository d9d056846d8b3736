"""Every way a served log can fail to verify: the sync is refused and nothing local changes."""

from __future__ import annotations

import base64
import random
from pathlib import Path
from typing import Any

import pytest

from exchange.client.errors import (
    BadRemove,
    BadSignature,
    Fork,
    MalformedResponse,
    MissingOrReorderedEntries,
    OriginMismatch,
    Rollback,
    RootMismatch,
    TamperedEntry,
    UnknownKey,
)
from exchange.client.sync import sync
from hashbank import tlog
from tests.exchange.client.fake_bank import T0, FakeBank, FakeLog, fill, flip_signature, signer
from tests.exchange.client.partner import config, refused, store_rows


@pytest.fixture
def synced(bank: FakeBank, state_dir: Path, rng: random.Random) -> FakeBank:
    """A partner synced to 40 entries; the server then has 25 more (adds and removes)."""
    fill(bank.log, rng, 40, remove_every=8)
    sync(config(bank, state_dir))
    fill(bank.log, rng, 20)
    for i in sorted(store_rows(state_dir))[:5]:
        bank.log.remove(i)
    return bank


def replace_value(leaf: bytes) -> bytes:
    parts = leaf.split(b" ")  # add2 <salt> <algorithm> <value> ...
    parts[3] = parts[3][:-1] + (b"0" if parts[3][-1:] != b"0" else b"1")
    return b" ".join(parts)


def first_plain_add(bank: FakeBank, start: int) -> int:
    return next(
        i
        for i in range(start, bank.log.size)
        if bank.log.json[i]["op"] == "add" and "leaf" in bank.log.json[i]
    )


def test_refuses_a_tampered_leaf_byte(synced: FakeBank, state_dir: Path) -> None:
    i = first_plain_add(synced, 45)
    synced.leaf_override[i] = replace_value(synced.log.leaves[i])
    exc = refused(TamperedEntry, synced, state_dir)
    assert exc.index == i and f"entry {i}" in str(exc) and "'value'" in str(exc)


def test_refuses_a_tampered_leaf_with_matching_json(synced: FakeBank, state_dir: Path) -> None:
    # The server changes the leaf and the JSON consistently: only the root catches it.
    i = first_plain_add(synced, 45)
    leaf = replace_value(synced.log.leaves[i])
    synced.leaf_override[i] = leaf
    synced.field_override[i] = {"value": tlog.decode_leaf(leaf).value}
    exc = refused(RootMismatch, synced, state_dir)
    assert "40..64" in str(exc)


def test_refuses_a_non_canonical_leaf(synced: FakeBank, state_dir: Path) -> None:
    i = first_plain_add(synced, 41)
    synced.leaf_override[i] = synced.log.leaves[i].replace(b"\n", b" \n")
    exc = refused(TamperedEntry, synced, state_dir)
    assert "not a canonical leaf" in str(exc)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("value", "0" * 64),
        ("quality", 12),
        ("timestamp", 5),
        ("origin", "evil.example/lists/adult"),
        ("algorithm", "md5"),
        ("op", "remove"),
        ("quality", None),
        ("salt", base64.b64encode(bytes(32)).decode()),
        ("salt", None),
        ("salt", ""),
    ],
)
def test_refuses_json_fields_that_disagree_with_the_leaf(
    synced: FakeBank, state_dir: Path, field: str, bad: Any
) -> None:
    i = next(
        j
        for j in range(41, synced.log.size)
        if synced.log.json[j].get("algorithm") == "pdq" and synced.log.json[j].get("quality")
    )
    synced.field_override[i] = {field: bad}
    exc = refused(TamperedEntry, synced, state_dir)
    assert exc.index == i and field in str(exc)


def test_refuses_a_salt_that_does_not_reproduce_the_leaf(synced: FakeBank, state_dir: Path) -> None:
    # Right bytes, but the hex salt of the leaf served as base64 of another 32 bytes.
    i = first_plain_add(synced, 41)
    salt = tlog.decode_leaf(synced.log.leaves[i]).salt
    assert salt is not None
    synced.field_override[i] = {"salt": base64.b64encode(salt[::-1]).decode()}
    exc = refused(TamperedEntry, synced, state_dir)
    assert exc.index == i and "'salt'" in str(exc)


@pytest.mark.parametrize("field", ["salt", "value", "leaf"])
def test_refuses_a_redacted_entry_that_carries_more_than_its_hash(
    synced: FakeBank, state_dir: Path, field: str
) -> None:
    i = synced.log.add("ab" * 32)
    synced.log.remove(i)  # served redacted from now on
    synced.field_override[i] = {field: "AAAA"}
    exc = refused(TamperedEntry, synced, state_dir)
    assert exc.index == i and field in str(exc)


def test_refuses_a_missing_json_field(synced: FakeBank, state_dir: Path) -> None:
    i = first_plain_add(synced, 41)
    synced.page_hook = lambda start, es: [
        {k: v for k, v in e.items() if not (e["index"] == i and k == "timestamp")} for e in es
    ]
    assert "missing" in str(refused(TamperedEntry, synced, state_dir))


def test_refuses_a_reordered_page(synced: FakeBank, state_dir: Path) -> None:
    def swap(start: int, es: list[dict[str, Any]]) -> list[dict[str, Any]]:
        es = list(es)
        es[3], es[4] = es[4], es[3]
        return es

    synced.page_hook = swap
    exc = refused(MissingOrReorderedEntries, synced, state_dir, page_size=10)
    assert "expected entry 43" in str(exc)


def test_refuses_a_missing_entry(synced: FakeBank, state_dir: Path) -> None:
    synced.page_hook = lambda start, es: [e for e in es if e["index"] != 47]
    synced.next_hook = lambda start, nxt: nxt if nxt is None else nxt - 1
    exc = refused(MissingOrReorderedEntries, synced, state_dir, page_size=10)
    assert "entry 47 is missing" in str(exc) and exc.index == 47


def test_refuses_a_page_whose_next_does_not_follow(synced: FakeBank, state_dir: Path) -> None:
    synced.page_hook = lambda start, es: [e for e in es if e["index"] != 47]
    exc = refused(MalformedResponse, synced, state_dir, page_size=10)
    assert "next" in str(exc)


def test_refuses_a_duplicated_entry(synced: FakeBank, state_dir: Path) -> None:
    synced.page_hook = lambda start, es: (es[:3] + es[2:])[: len(es)]
    exc = refused(MissingOrReorderedEntries, synced, state_dir, page_size=10)
    assert "duplicated" in str(exc) and exc.index == 43


def test_refuses_an_empty_page(synced: FakeBank, state_dir: Path) -> None:
    synced.page_hook = lambda start, es: [] if start >= 50 else es
    synced.next_hook = lambda start, nxt: None if start >= 50 else nxt
    refused(MissingOrReorderedEntries, synced, state_dir, page_size=10)


def test_refuses_an_unknown_key(synced: FakeBank, state_dir: Path) -> None:
    synced.log.signers = [signer()]
    exc = refused(UnknownKey, synced, state_dir, vkeys=())  # the key pinned in the state
    assert "--accept-new-vkey" in str(exc)


def test_refuses_an_unknown_key_at_the_first_sync(bank: FakeBank, state_dir: Path) -> None:
    refused(UnknownKey, bank, state_dir, vkeys=(signer().vkey,))
    assert not state_dir.exists()


def test_refuses_a_bad_signature(synced: FakeBank, state_dir: Path) -> None:
    synced.checkpoint_body = flip_signature(synced.log.note())
    exc = refused(BadSignature, synced, state_dir)
    assert "invalid signature" in str(exc)


def test_refuses_a_bad_signature_at_the_first_sync(
    bank: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    fill(bank.log, rng, 10)
    bank.checkpoint_body = flip_signature(bank.log.note())
    refused(BadSignature, bank, state_dir)
    assert not state_dir.exists()


def test_refuses_a_badly_signed_page_checkpoint(synced: FakeBank, state_dir: Path) -> None:
    synced.page_note = lambda size: flip_signature(synced.log.note(size))
    refused(BadSignature, synced, state_dir)


def test_refuses_a_checkpoint_of_another_origin(synced: FakeBank, state_dir: Path) -> None:
    # Signed by the pinned key, but for another log.
    text = tlog.format_checkpoint(
        origin="bank.test/lists/minor", size=synced.log.size, root=synced.log.roots[-1]
    )
    synced.checkpoint_body = tlog.sign_note(text, synced.log.signers)
    refused(OriginMismatch, synced, state_dir)


def test_refuses_a_rollback(synced: FakeBank, state_dir: Path) -> None:
    synced.checkpoint_size = 30  # a genuine, older signed checkpoint
    exc = refused(Rollback, synced, state_dir)
    assert "30" in str(exc) and "40" in str(exc)


def test_refuses_a_fork_of_the_same_size(
    synced: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    forked = FakeLog(synced.log.signers)
    fill(forked, rng, 40)
    synced.log = forked
    refused(Fork, synced, state_dir)


def test_refuses_a_fork_of_a_larger_size(
    synced: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    # History rewritten: entry 6 of the first 40 changed, then more entries.
    forked = FakeLog(synced.log.signers)
    for i, leaf in enumerate(synced.log.leaves[:40]):
        forked.append(replace_value(leaf) if i == 6 else leaf)  # entry 6 is an add
    fill(forked, rng, 10)
    synced.log = forked
    synced.requests.clear()
    exc = refused(Fork, synced, state_dir)
    assert "not an extension" in str(exc)
    assert not [p for p, _ in synced.requests if p.endswith("/entries")]  # refused before


def test_refuses_a_forged_consistency_proof(synced: FakeBank, state_dir: Path) -> None:
    synced.proof_hook = lambda proof: [base64.b64encode(b"\x00" * 32).decode(), *proof[1:]]
    refused(Fork, synced, state_dir)


def test_refuses_a_page_checkpoint_of_the_same_size_with_another_root(
    synced: FakeBank, state_dir: Path, rng: random.Random
) -> None:
    forked = FakeLog(synced.log.signers)
    fill(forked, rng, synced.log.size)
    synced.page_note = lambda size: forked.note(size)
    refused(Fork, synced, state_dir)


def test_refuses_a_wrong_redacted_leaf_hash(
    synced: FakeBank, state_dir: Path, tmp_path: Path
) -> None:
    # A fresh partner receives the removed adds redacted; one leaf_hash is wrong.
    bad = base64.b64encode(b"\x01" * 32).decode()
    i = next(j for j, e in enumerate(synced.log.json) if e.get("redacted"))
    synced.field_override[i] = {"leaf_hash": bad}
    refused(RootMismatch, synced, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    # The partner synced to 40 receives a new add redacted (removed at once): wrong hash.
    j = synced.log.add("ab" * 32)
    synced.log.remove(j)
    synced.field_override[j] = {"leaf_hash": bad}
    refused(RootMismatch, synced, state_dir)


def test_refuses_a_redacted_entry_that_is_not_an_add(synced: FakeBank, state_dir: Path) -> None:
    i = next(j for j in range(40, synced.log.size) if synced.log.json[j]["op"] == "remove")
    lh = base64.b64encode(tlog.leaf_hash(synced.log.leaves[i])).decode()
    synced.page_hook = lambda start, es: [
        {"index": i, "op": "remove", "redacted": True, "leaf_hash": lh} if e["index"] == i else e
        for e in es
    ]
    refused(TamperedEntry, synced, state_dir)


@pytest.mark.parametrize(
    "case", ["names a remove", "names itself", "names a later entry", "removes twice"]
)
def test_refuses_a_remove_that_names_no_published_add(
    bank: FakeBank, state_dir: Path, rng: random.Random, case: str
) -> None:
    fill(bank.log, rng, 10)
    bank.log.remove(2)  # index 10
    sync(config(bank, state_dir))
    fill(bank.log, rng, 3)  # 11..13
    i = bank.log.size
    target = {
        "names a remove": 10,
        "names itself": i,
        "names a later entry": i + 5,
        "removes twice": 2,
    }[case]
    bank.log.append(tlog.encode_remove(index=target, reason="withdrawn", timestamp=T0))
    exc = refused(BadRemove, bank, state_dir)
    assert exc.index == i and f"entry {i} removes entry {target}" in str(exc)
    assert isinstance(exc, TamperedEntry)


def test_refuses_malformed_answers(synced: FakeBank, state_dir: Path) -> None:
    synced.raw_entries_body = b"<html>proxy error</html>"
    assert "not JSON" in str(refused(MalformedResponse, synced, state_dir))
    synced.raw_entries_body = b'{"entries": "nope", "checkpoint": "x", "next": null}'
    refused(MalformedResponse, synced, state_dir)
    synced.raw_entries_body = None
    synced.checkpoint_body = "not a signed note\n"
    refused(BadSignature, synced, state_dir)
    synced.checkpoint_body = None
    synced.page_hook = lambda start, es: [{**e, "leaf": "%%%"} for e in es]
    refused(MalformedResponse, synced, state_dir)
    synced.page_hook = lambda start, es: [{**e, "index": str(e["index"])} for e in es]
    refused(MissingOrReorderedEntries, synced, state_dir)
