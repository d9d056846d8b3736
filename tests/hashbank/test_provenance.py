"""Provenance of published hashes: which origin an ``add`` names, and when it changes.

An add names a federated import's origin only while no local holder keeps the hash, and
always a provenance that still holds it: otherwise the hash is re-published (a remove and a
new add). This is what stops two banks that import each other from keeping a hash alive for
one another (see tests/exchange/federation/test_federation.py for the two-bank flows).
"""

from __future__ import annotations

import pytest

from hashbank import tlog
from hashbank.models import Hash, HashList, Hold, Holder, HolderKind, LogEntry
from hashbank.services import HashInput, hashes_hold, hashes_release, holds_release
from tests.conftest import md5

pytestmark = pytest.mark.django_db

CASE_1 = Holder(HolderKind.CASE, 1)
CASE_2 = Holder(HolderKind.CASE, 2)
PEER_1 = Holder(HolderKind.PEER, 1)
PEER_2 = Holder(HolderKind.PEER, 2)

X = "bank-x.test/lists/adult"
Y = "bank-y.test/lists/adult"


def leaves() -> list[tuple[str, int | None, str | None, str | None]]:
    """(op, removes, reason, origin) of the adult log, in order."""
    out = []
    for leaf in LogEntry.objects.filter(hash_list__slug="adult").order_by("index"):
        d = tlog.decode_leaf(bytes(leaf.leaf))
        out.append((d.op, d.removes, d.reason, d.origin))
    return out


@pytest.fixture
def adult() -> HashList:
    return HashList.objects.get(slug="adult")


@pytest.fixture
def item() -> HashInput:
    return HashInput("md5", md5("provenance")["value"])


def test_a_local_holder_wins_and_the_peer_keeps_it_after_the_local_holder_lets_go(adult, item):
    hashes_hold(hash_list=adult, hashes=[item], holder=CASE_1)
    hashes_hold(hash_list=adult, hashes=[item], holder=PEER_1, origin=X)
    assert leaves() == [("add", None, None, None)]

    holds_release(holder=CASE_1)

    assert leaves()[1:] == [("remove", 0, "withdrawn", None), ("add", None, None, X)]
    assert Hash.objects.get().origin == X and Hash.objects.get().published
    holds_release(holder=PEER_1)
    assert leaves()[-1] == ("remove", 2, "withdrawn", None)
    assert not Hash.objects.get().published


def test_an_import_keeps_its_add_while_its_peer_holds_it_then_becomes_local(adult, item):
    hashes_hold(hash_list=adult, hashes=[item], holder=PEER_1, origin=X)
    hashes_hold(hash_list=adult, hashes=[item], holder=CASE_1)
    assert leaves() == [("add", None, None, X)]  # no churn while the peer still holds it

    hashes_release(holder=PEER_1, hash_ids=[Hash.objects.get().pk], reason="disabled")

    assert leaves()[1:] == [("remove", 0, "disabled", None), ("add", None, None, None)]
    assert Hash.objects.get().origin == ""


def test_when_one_peer_lets_go_another_peers_origin_takes_over(adult, item):
    hashes_hold(hash_list=adult, hashes=[item], holder=PEER_1, origin=X)
    hashes_hold(hash_list=adult, hashes=[item], holder=PEER_2, origin=Y)
    holds_release(holder=PEER_1)
    assert leaves() == [("add", None, None, X), ("remove", 0, "withdrawn", None),
                        ("add", None, None, Y)]  # fmt: skip
    holds_release(holder=PEER_2)
    assert leaves()[-1] == ("remove", 2, "withdrawn", None)


def test_a_peer_that_holds_again_with_another_origin_updates_its_hold(adult, item):
    hashes_hold(hash_list=adult, hashes=[item], holder=PEER_1, origin=X)
    hashes_hold(hash_list=adult, hashes=[item], holder=PEER_1, origin=Y)
    assert Hold.objects.get().origin == Y
    assert leaves()[-1] == ("add", None, None, Y)


def test_hashes_release_releases_only_those_hashes_and_is_idempotent(adult):
    one, two = HashInput("md5", md5("one")["value"]), HashInput("md5", md5("two")["value"])
    held = hashes_hold(hash_list=adult, hashes=[one, two], holder=PEER_1, origin=X)

    assert hashes_release(holder=PEER_1, hash_ids=[held[0].pk]) == [held[0].pk]
    assert hashes_release(holder=PEER_1, hash_ids=[held[0].pk]) == []
    assert hashes_release(holder=PEER_1, hash_ids=[]) == []
    assert hashes_release(holder=PEER_2, hash_ids=[held[1].pk]) == []

    assert dict(Hash.objects.values_list("value", "published")) == {
        one.value: False,
        two.value: True,
    }


@pytest.mark.perf
def test_local_cases_cost_no_extra_queries_for_provenance(adult, django_assert_max_num_queries):
    items = [HashInput("md5", md5(f"q{i}")["value"]) for i in range(5)]
    hashes_hold(hash_list=adult, hashes=items, holder=CASE_1)
    # Holding hashes that are published already: lock, upsert, holds, refresh; no log.
    with django_assert_max_num_queries(6):
        hashes_hold(hash_list=adult, hashes=items, holder=CASE_2)
    assert len(leaves()) == 5
