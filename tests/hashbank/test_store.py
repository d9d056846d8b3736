"""hashbank.store: the publish path's bulk reads and writes, on whichever database runs.

CI runs these on PostgreSQL (the hand-written SQL); without DATABASE_URL they
run on SQLite (the ORM steps). Both must give the same answers.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from hashbank import store
from hashbank.db import server_cursor
from hashbank.models import Hash, HashList, Hold, LogEntry
from hashbank.services import HashInput, hash_list_lock, hashes_hold, holds_release
from tests.conftest import md5, pdq

pytestmark = pytest.mark.django_db


@pytest.fixture
def adult() -> HashList:
    return HashList.objects.get(slug="adult")


def inputs(*hashes):
    return [HashInput(h["algorithm"], h["value"], h.get("quality")) for h in hashes]


def test_upsert_inserts_what_is_missing_and_returns_what_exists_untouched(adult):
    old = Hash.objects.create(
        hash_list=adult, algorithm="pdq", value=pdq("old")["value"], quality=60, published=False
    )
    items = inputs(pdq("old", quality=99), pdq("new"), md5("video"))
    now = timezone.now()
    with transaction.atomic():
        hash_list_lock(hash_list_id=adult.pk)
        rows, inserted = store.hashes_hold(
            list_id=adult.pk,
            items=items,
            holder="case:1",
            origin="",
            now=now,
            published_if_new=True,
        )
    assert [r.pk for r in rows] == sorted(r.pk for r in rows)
    by_value = {r.value: r for r in rows}
    assert set(by_value) == {h.value for h in items}
    assert inserted == {r.pk for r in rows if r.pk != old.pk}
    # The existing row keeps its first quality and its state; new rows take the given state.
    assert by_value[old.value].quality == 60 and not by_value[old.value].published
    assert by_value[pdq("new")["value"]].published and by_value[pdq("new")["value"]].quality == 90
    assert by_value[md5("video")["value"]].quality is None
    stored = Hash.objects.get(value=pdq("new")["value"])
    assert stored.published and stored.first_seen == now and stored.hash_list_id == adult.pk
    # Every one is held, the old one too.
    assert set(
        Hold.objects.filter(holder="case:1", active=True).values_list("hash_id", flat=True)
    ) == {r.pk for r in rows}
    assert by_value[old.value].origin == old.origin and by_value[old.value].hash_list_id == adult.pk


def test_upsert_is_per_list(adult):
    minor = HashList.objects.get(slug="minor")
    items = inputs(pdq("both"))
    now = timezone.now()
    with transaction.atomic():
        _, first = store.hashes_hold(
            list_id=adult.pk, items=items, holder="c", origin="", now=now, published_if_new=True
        )
        _, second = store.hashes_hold(
            list_id=minor.pk, items=items, holder="c", origin="", now=now, published_if_new=True
        )
    assert len(first) == len(second) == 1 and first != second
    assert Hash.objects.filter(value=pdq("both")["value"]).count() == 2


def test_holding_again_reactivates_a_released_hold_and_holds_active_lists_them_in_order(adult):
    hashes_hold(hash_list=adult, hashes=inputs(pdq("h")), holder="case:1")
    hashes_hold(hash_list=adult, hashes=inputs(pdq("h")), holder="peer:2", origin="b.example")
    holds_release(holder="case:1")
    h = Hash.objects.get()
    assert store.holds_active([h.pk]) == {h.pk: [("peer:2", "b.example")]}
    with transaction.atomic():
        hash_list_lock(hash_list_id=adult.pk)
        store.hashes_hold(
            list_id=adult.pk,
            items=inputs(pdq("h")),
            holder="case:1",
            origin="",
            now=timezone.now(),
            published_if_new=True,
        )
    hold = Hold.objects.get(holder="case:1")
    assert hold.active and hold.released_at is None
    assert store.holds_active([h.pk]) == {h.pk: [("case:1", ""), ("peer:2", "b.example")]}
    assert store.holds_active([]) == {}


def test_an_append_writes_entries_nodes_and_the_head_together(adult):
    items = inputs(*(pdq(f"n{i}") for i in range(5)))
    hashes_hold(hash_list=adult, hashes=items, holder="case:1")
    adult.refresh_from_db()
    assert adult.log_size == 5
    assert LogEntry.objects.filter(hash_list=adult).count() == 5
    # The stored edge is the tree of the stored leaves.
    from hashbank import tlog

    leaves = [
        bytes(d) for d in LogEntry.objects.order_by("index").values_list("leaf_hash", flat=True)
    ]
    edge = tlog.RightEdge.from_json(adult.tree_edge)
    assert edge.size == 5 and edge.root() == tlog.root_from_leaf_hashes(leaves)


def test_a_large_append_goes_through_copy_and_is_the_same_log(adult):
    items = inputs(*(md5(f"big{i}") for i in range(store.COPY_THRESHOLD + 50)))
    hashes_hold(hash_list=adult, hashes=items, holder="peer:1", origin="b.example")
    adult.refresh_from_db()
    assert adult.log_size == len(items) == LogEntry.objects.count()
    assert adult.log_last_timestamp > 0


def test_the_lock_returns_the_head_as_stored(adult):
    hashes_hold(hash_list=adult, hashes=inputs(pdq("a"), pdq("b")), holder="case:1")
    with transaction.atomic():
        locked = store.list_lock(adult.pk)
    adult.refresh_from_db()
    assert (locked.pk, locked.slug, locked.log_size) == (adult.pk, "adult", 2)
    assert locked.tree_edge == adult.tree_edge
    assert locked.log_last_timestamp == adult.log_last_timestamp
    with pytest.raises(HashList.DoesNotExist), transaction.atomic():
        store.list_lock(999_999)


@pytest.mark.postgres
def test_the_upsert_probes_the_unique_index_even_with_a_generic_plan(adult):
    """A prepared statement keeps its plan: it must not depend on up-to-date statistics.

    A plain join here once hashed every row of the list (and a lookup by list
    alone took the published index), making each case cost O(list size).
    """
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL plans")
    hashes_hold(
        hash_list=adult, hashes=inputs(*(md5(f"s{i}") for i in range(300))), holder="case:1"
    )
    params = {
        "items": '[{"a": "md5", "v": "00", "q": null}]',
        "list": adult.pk,
        "now": timezone.now(),
        "published": True,
        "origin": "",
        "holder": "case:1",
    }
    with transaction.atomic(), server_cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("EXPLAIN " + store._HASH_UPSERT, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    lookup = plan[plan.index("Nested Loop") :]
    assert "Index Scan using hash_unique_per_list" in lookup, plan
    assert "Hash Join" not in plan and "Seq Scan" not in plan, plan


def test_hashes_of_holder_in_the_order_held_released_ones_too(adult):
    hashes_hold(hash_list=adult, hashes=inputs(pdq("z"), md5("y")), holder="case:7")
    hashes_hold(hash_list=adult, hashes=inputs(pdq("a")), holder="case:7")
    hashes_hold(hash_list=adult, hashes=inputs(pdq("other")), holder="case:8")
    holds_release(holder="case:7")
    found = store.hashes_of_holder("case:7")
    assert [h.value for h in found] == [pdq("z")["value"], md5("y")["value"], pdq("a")["value"]]
    assert not any(h.published for h in found)
    assert store.hashes_of_holder("case:none") == []
