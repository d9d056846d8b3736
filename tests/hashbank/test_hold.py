"""hashbank.services.hashes_hold and the holds it keeps, on whichever database runs.

CI runs these on PostgreSQL and again on SQLite: the publish path is one
implementation, and both databases must give the same answers.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from hashbank import tlog
from hashbank.models import Hash, HashList, Hold, Holder, HolderKind, LogEntry, TreeNode
from hashbank.selectors import holder_hashes
from hashbank.services import HashInput, hashes_hold, holds_release
from tests.conftest import md5, pdq

pytestmark = pytest.mark.django_db

CASE_1 = Holder(HolderKind.CASE, 1)
CASE_7 = Holder(HolderKind.CASE, 7)
PEER_2 = Holder(HolderKind.PEER, 2)


@pytest.fixture
def adult() -> HashList:
    return HashList.objects.get(slug="adult")


def inputs(*hashes):
    return [HashInput(h["algorithm"], h["value"], h.get("quality")) for h in hashes]


def test_holding_inserts_what_is_missing_and_keeps_an_existing_hash_s_first_quality(adult):
    old = Hash.objects.create(
        hash_list=adult, algorithm="pdq", value=pdq("old")["value"], quality=60
    )
    items = inputs(pdq("old", quality=99), pdq("new"), md5("video"))
    rows = hashes_hold(hash_list=adult, hashes=items, holder=CASE_1)
    assert [r.value for r in rows] == [h.value for h in items]  # input order
    by_value = {r.value: r for r in rows}
    assert by_value[old.value].pk == old.pk and by_value[old.value].quality == 60
    assert by_value[pdq("new")["value"]].quality == 90
    assert by_value[md5("video")["value"]].quality is None
    assert all(Hash.objects.get(pk=r.pk).published for r in rows)
    assert set(
        Hold.objects.filter(holder_kind="case", holder_id=1, active=True).values_list(
            "hash_id", flat=True
        )
    ) == {r.pk for r in rows}


def test_a_hash_given_twice_is_one_row_returned_twice(adult):
    rows = hashes_hold(hash_list=adult, hashes=inputs(pdq("a"), pdq("a")), holder=CASE_1)
    assert len(rows) == 2 and rows[0].pk == rows[1].pk
    assert Hash.objects.count() == 1 and LogEntry.objects.count() == 1


def test_a_value_is_one_row_per_list(adult):
    minor = HashList.objects.get(slug="minor")
    first = hashes_hold(hash_list=adult, hashes=inputs(pdq("both")), holder=CASE_1)
    second = hashes_hold(hash_list=minor, hashes=inputs(pdq("both")), holder=CASE_7)
    assert first[0].pk != second[0].pk
    assert Hash.objects.filter(value=pdq("both")["value"]).count() == 2


def test_holding_again_reactivates_a_released_hold(adult):
    hashes_hold(hash_list=adult, hashes=inputs(pdq("h")), holder=CASE_1)
    hashes_hold(hash_list=adult, hashes=inputs(pdq("h")), holder=PEER_2, origin="b.example")
    holds_release(holder=CASE_1)
    assert not Hold.objects.get(holder_kind="case").active
    hashes_hold(hash_list=adult, hashes=inputs(pdq("h")), holder=CASE_1)
    hold = Hold.objects.get(holder_kind="case", holder_id=1)
    assert hold.active and hold.released_at is None and hold.holder == CASE_1
    assert Hold.objects.filter(active=True).count() == 2


def test_an_append_writes_entries_nodes_and_the_head_together(adult):
    hashes_hold(hash_list=adult, hashes=inputs(*(pdq(f"n{i}") for i in range(5))), holder=CASE_1)
    adult.refresh_from_db()
    assert adult.log_size == 5 == LogEntry.objects.filter(hash_list=adult).count()
    leaves = [
        bytes(d) for d in LogEntry.objects.order_by("index").values_list("leaf_hash", flat=True)
    ]
    edge = tlog.RightEdge.from_json(adult.tree_edge)
    assert edge.size == 5 and edge.root() == tlog.root_from_leaf_hashes(leaves)


def test_a_large_append_is_the_same_log_as_small_ones(adult):
    """An import's thousand entries and a case's one make one log (COPY on PostgreSQL)."""
    big = inputs(*(md5(f"big{i}") for i in range(1000)))
    hashes_hold(hash_list=adult, hashes=big, holder=PEER_2, origin="b.example")
    hashes_hold(hash_list=adult, hashes=inputs(pdq("small")), holder=CASE_1)
    adult.refresh_from_db()
    assert adult.log_size == len(big) + 1 == LogEntry.objects.count()
    entries = list(LogEntry.objects.order_by("index"))
    for entry in entries:
        assert bytes(entry.leaf_hash) == tlog.leaf_hash(bytes(entry.leaf))
        assert entry.timestamp > 0 and not entry.redacted
    assert tlog.decode_leaf(bytes(entries[0].leaf)).origin == "b.example"
    edge = tlog.RightEdge.from_json(adult.tree_edge)
    assert edge.root() == tlog.root_from_leaf_hashes([bytes(e.leaf_hash) for e in entries])
    # Every stored inner node is the hash of its two children.
    nodes = {(n.level, n.idx): bytes(n.hash) for n in TreeNode.objects.filter(hash_list=adult)}
    leaf_hashes = {(0, e.index): bytes(e.leaf_hash) for e in entries}
    for (level, idx), digest in nodes.items():
        below = nodes if level > 1 else leaf_hashes
        left, right = below[(level - 1, 2 * idx)], below[(level - 1, 2 * idx + 1)]
        assert digest == tlog.node_hash(left, right)


def test_holder_hashes_in_the_order_held_released_ones_too(adult):
    hashes_hold(hash_list=adult, hashes=inputs(pdq("z"), md5("y")), holder=CASE_7)
    hashes_hold(hash_list=adult, hashes=inputs(pdq("a")), holder=CASE_7)
    hashes_hold(hash_list=adult, hashes=inputs(pdq("other")), holder=Holder(HolderKind.CASE, 8))
    holds_release(holder=CASE_7)
    found = holder_hashes(holder=CASE_7)
    assert [h.value for h in found] == [pdq("z")["value"], md5("y")["value"], pdq("a")["value"]]
    assert not any(h.published for h in found)
    assert holder_hashes(holder=Holder(HolderKind.CASE, 999)) == []
    # A peer with the same id is another holder.
    assert holder_hashes(holder=Holder(HolderKind.PEER, 7)) == []


def test_the_database_refuses_rows_that_point_nowhere(adult):
    """The foreign keys are constraints again: a hold of a missing hash can't be stored."""
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.create(hash_id=999_999, holder_kind="case", holder_id=1)
        connection.check_constraints()  # deferred until commit otherwise


def test_the_hashes_a_hold_inserts_are_returned_as_stored(adult):
    """What hashes_hold returns for new hashes (built from the INSERT's returned ids on
    PostgreSQL) is what a fresh read of the table gives, field for field."""
    items = inputs(pdq("fresh-1"), md5("fresh-2"), pdq("fresh-3", quality=77))
    rows = hashes_hold(hash_list=adult, hashes=items, holder=PEER_2, origin="b.example")
    stored = {h.pk: h for h in Hash.objects.filter(pk__in=[r.pk for r in rows])}
    fields = [f.attname for f in Hash._meta.concrete_fields]
    for row in rows:
        assert [getattr(row, f) for f in fields] == [getattr(stored[row.pk], f) for f in fields]
    assert rows[2].quality == 77 and rows[0].origin == "b.example" and rows[0].published


def test_a_row_inserted_without_every_column_is_refused():
    from hashbank import sql

    if connection.vendor != "postgresql":
        pytest.skip("elsewhere bulk_create fills the defaults")
    with pytest.raises(ValueError, match="every column"):
        sql.insert_rows_returning(Hold, ("hash_id", "holder_kind"), [(1, "case")])
