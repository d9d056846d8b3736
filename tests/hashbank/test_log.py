"""The append-only log: what every published-state change writes, and its tree."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from cases.services import case_withdraw
from hashbank import tlog
from hashbank.models import Hash, HashList, Holder, HolderKind, LogEntry, TreeNode
from hashbank.services import HashInput, hashes_hold, holds_release
from tests.conftest import md5, pdq

PEER_1 = Holder(HolderKind.PEER, 1)


def leaves(slug: str = "adult") -> list[tlog.Leaf]:
    return [
        tlog.decode_leaf(bytes(e.leaf))
        for e in LogEntry.objects.filter(hash_list__slug=slug).order_by("index")
    ]


def assert_log_consistent(slug: str) -> None:
    """Gap-free indexes, stored head == recomputed tree, and every node stored right."""
    hash_list = HashList.objects.get(slug=slug)
    entries = list(LogEntry.objects.filter(hash_list=hash_list).order_by("index"))
    assert [e.index for e in entries] == list(range(len(entries)))
    assert hash_list.log_size == len(entries)
    digests = [bytes(e.leaf_hash) for e in entries]
    assert digests == [tlog.leaf_hash(bytes(e.leaf)) for e in entries]
    edge = (
        tlog.RightEdge.from_json(hash_list.tree_edge) if hash_list.tree_edge else tlog.RightEdge()
    )
    assert edge.root() == tlog.root_from_leaf_hashes(digests)
    expected_nodes = {}
    rebuilt = tlog.RightEdge()
    for digest in digests:
        for level, idx, value in rebuilt.append(digest):
            if level:
                expected_nodes[(level, idx)] = value
    stored = {(n.level, n.idx): bytes(n.hash) for n in TreeNode.objects.filter(hash_list=hash_list)}
    assert stored == expected_nodes
    timestamps = [e.timestamp for e in entries]
    assert timestamps == sorted(timestamps)
    # Every remove undoes the hash's newest earlier add; adds and removes alternate per hash.
    state: dict[int, int | None] = {}
    for e in entries:
        leaf = tlog.decode_leaf(bytes(e.leaf))
        if leaf.op == "add":
            assert state.get(e.hash_id) is None, f"hash {e.hash_id} added twice in a row"
            state[e.hash_id] = e.index
        else:
            assert leaf.removes == state.get(e.hash_id) == e.removes
            assert LogEntry.objects.get(hash_list=hash_list, index=leaf.removes).redacted
            state[e.hash_id] = None
    for h in Hash.objects.filter(hash_list=hash_list):
        assert h.published == (state.get(h.pk) is not None)


@pytest.mark.django_db
def test_publishing_appends_an_add_entry_per_hash(make_case):
    make_case(pdq("a"), md5("b"))
    ops = leaves()
    assert [(leaf.op, leaf.algorithm, leaf.value) for leaf in ops] == [
        ("add", "pdq", pdq("a")["value"]),
        ("add", "md5", md5("b")["value"]),
    ]
    assert ops[0].quality == 90 and ops[1].quality is None
    assert_log_consistent("adult")


@pytest.mark.django_db
def test_withdrawal_appends_removes_naming_the_add_index_never_the_value(make_case):
    created = make_case(pdq("w"), md5("w"))
    case_withdraw(case=created.case)
    log = list(LogEntry.objects.filter(hash_list__slug="adult").order_by("index"))
    removes = [e for e in log if e.op == "remove"]
    assert [e.removes for e in removes] == [0, 1]
    for e in removes:
        assert pdq("w")["value"].encode() not in bytes(e.leaf)
        assert md5("w")["value"].encode() not in bytes(e.leaf)
        assert tlog.decode_leaf(bytes(e.leaf)).reason == "withdrawn"
    assert [e.redacted for e in log] == [True, True, False, False]
    assert_log_consistent("adult")


@pytest.mark.django_db
def test_a_shared_hash_is_logged_once_and_removed_only_with_its_last_case(make_case):
    first = make_case(pdq("shared"))
    second = make_case(pdq("shared"))
    assert LogEntry.objects.count() == 1
    case_withdraw(case=first.case)
    assert LogEntry.objects.count() == 1
    case_withdraw(case=second.case)
    assert [e.op for e in LogEntry.objects.order_by("index")] == ["add", "remove"]


@pytest.mark.django_db
def test_republication_is_a_new_add(make_case):
    case_withdraw(case=make_case(pdq("again")).case)
    make_case(pdq("again"))
    ops = [(leaf.op, leaf.removes) for leaf in leaves()]
    assert ops == [("add", None), ("remove", 0), ("add", None)]
    assert_log_consistent("adult")


@pytest.mark.django_db
def test_each_list_has_its_own_log(make_case):
    make_case(pdq("x"))
    make_case(pdq("y"), minor=True)
    assert HashList.objects.get(slug="adult").log_size == 1
    assert HashList.objects.get(slug="minor").log_size == 1
    assert_log_consistent("minor")


@pytest.mark.django_db
def test_imports_carry_their_origin_until_a_local_case_holds_them_too(make_case):
    adult = HashList.objects.get(slug="adult")
    item = HashInput("md5", md5("imported")["value"])
    hashes_hold(
        hash_list=adult,
        hashes=[item],
        holder=PEER_1,
        origin="peer.example/lists/adult",
    )
    assert leaves()[-1].origin == "peer.example/lists/adult"
    holds_release(holder=PEER_1)
    make_case(md5("imported"))
    assert leaves()[-1].origin is None


@pytest.mark.django_db
def test_nothing_is_logged_when_a_transaction_rolls_back(make_case):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        make_case(pdq("rollback"))
        raise RuntimeError("abort")
    assert not LogEntry.objects.exists()
    assert HashList.objects.get(slug="adult").log_size == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_submissions_and_withdrawals_keep_the_log_gap_free_and_in_commit_order():
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven against PostgreSQL (set DATABASE_URL)")
    from cases.services import Eligibility, case_create

    eligibility = Eligibility(in_image=True, under_18_at_capture=False, has_media=True,
                              intimate=True)  # fmt: skip
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            mine = []
            for i in range(12):
                # Overlapping hashes across workers, so holds and removals interleave.
                shared = pdq(f"shared-{i % 5}")
                created = case_create(
                    eligibility=eligibility,
                    hashes=[HashInput(shared["algorithm"], shared["value"], shared["quality"]),
                            HashInput("md5", md5(f"own-{n}-{i}")["value"])],
                )  # fmt: skip
                mine.append(created.case)
                if i % 3 == 2:
                    case_withdraw(case=mine.pop(0))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert LogEntry.objects.count() >= 96 + 32 + 5
    assert_log_consistent("adult")
