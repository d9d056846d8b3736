"""hashbank.services.hashes_hold_new_owner: a new case and its holds, in one statement on
PostgreSQL when the rule's answer is known, else through the general path.

Both paths must leave the bank exactly as the general rule would. Each test
runs on SQLite too, where only the general path exists; the counts of
statements and the deferrals are checked on PostgreSQL.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from cases.models import Case
from cases.services import Eligibility, case_create, case_withdraw
from hashbank import store, tlog
from hashbank.models import Hash, HashList, Hold, LogEntry
from hashbank.services import (
    HashInput,
    hashes_hold,
    hashes_hold_new_owner,
    hashes_refresh_published,
)
from tests.conftest import ADULT, as_inputs, md5, pdq
from tests.hashbank.test_log import assert_log_consistent

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def adult() -> HashList:
    return HashList.objects.get(slug="adult")


def new_case(adult: HashList, *hashes: dict[str, Any]) -> tuple[Case, list[store.HashRow]]:
    case = Case(number_digest=secrets.token_hex(32), pin_hash="x")
    case.hash_list = adult
    rows = hashes_hold_new_owner(
        hash_list=adult, hashes=as_inputs(*hashes), owner=case, holder_prefix=Case.HOLDER_PREFIX
    )
    return case, rows


def statements_of(func: Any) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        result = func()
    return result, [q["sql"] for q in queries.captured_queries]


def bank_statements(sql: list[str]) -> list[str]:
    """The statements that are not push delivery's (those query exchange_delivery)."""
    return [s for s in sql if '"exchange_delivery"' not in s]


def test_a_case_of_new_hashes_is_one_statement_that_publishes_and_logs_them(adult):
    hashes = [pdq("a"), md5("b"), pdq("c", quality=51)]
    (case, rows), sql = statements_of(lambda: new_case(adult, *hashes))
    if on_postgres():
        # Any other statement is push delivery's, after the commit.
        assert bank_statements(sql) == sql[:1]
        assert "hashbank_hold_new" in sql[0]
    assert case.pk is not None and Case.objects.filter(pk=case.pk).exists()
    assert [(r.algorithm, r.value, r.quality) for r in rows] == [
        (h["algorithm"], h["value"], h.get("quality")) for h in hashes
    ]
    assert all(r.published and not r.disabled and not r.under_review for r in rows)
    assert {r.pk for r in rows} == set(
        Hash.objects.filter(published=True).values_list("pk", flat=True)
    )
    holds = Hold.objects.filter(holder=case.holder, active=True).order_by("pk")
    assert [h.hash_id for h in holds] == [r.pk for r in rows]
    entries = list(LogEntry.objects.order_by("index"))
    assert [e.hash_id for e in entries] == [r.pk for r in rows]
    assert [tlog.decode_leaf(bytes(e.leaf)).value for e in entries] == [h["value"] for h in hashes]
    assert_log_consistent("adult")


def test_the_tree_it_builds_is_the_tree_hashbank_tlog_builds_at_every_size(adult):
    # Cases of 1 to 20 hashes, so appends start and end at every kind of size.
    n = 0
    for size in [1, 2, 3, 1, 4, 5, 7, 8, 1, 16, 20, 9, 13, 2, 17, 20, 20, 6]:
        new_case(adult, *[md5(f"tree-{n + k}") for k in range(size)])
        n += size
    assert HashList.objects.get(pk=adult.pk).log_size == n
    assert_log_consistent("adult")


def test_a_hash_already_published_is_held_without_a_log_entry(adult):
    _first, _ = new_case(adult, pdq("shared"))
    Hash.objects.filter(value=pdq("shared")["value"]).update(under_review=True)
    (_second, rows), sql = statements_of(lambda: new_case(adult, md5("own"), pdq("shared", 99)))
    if on_postgres():
        assert bank_statements(sql) == sql[:1]
    shared = Hash.objects.get(value=pdq("shared")["value"])
    assert rows[1].pk == shared.pk and rows[1].quality == 90  # the first quality seen stays
    assert rows[1].published and rows[1].under_review
    assert Hold.objects.filter(hash=shared, active=True).count() == 2
    assert [e.hash_id for e in LogEntry.objects.order_by("index")] == [shared.pk, rows[0].pk]
    assert_log_consistent("adult")


@pytest.mark.parametrize("state", ["withdrawn", "disabled"])
def test_a_hash_the_general_rule_must_decide_takes_the_general_path(adult, state):
    first, _ = new_case(adult, pdq("known"))
    if state == "withdrawn":
        case_withdraw(case=first)
    else:
        Hash.objects.update(disabled=True)
        hashes_refresh_published(hash_list=adult, hash_ids=[Hash.objects.get().pk])
    before = LogEntry.objects.count()
    (case, rows), sql = statements_of(lambda: new_case(adult, md5("fresh"), pdq("known")))
    known = Hash.objects.get(value=pdq("known")["value"])
    if state == "withdrawn":
        # Re-published: a new add, as the general rule gives.
        assert rows[1].published and known.published
        assert LogEntry.objects.count() == before + 2
    else:
        assert not rows[1].published and not known.published and rows[1].disabled
        assert LogEntry.objects.count() == before + 1
    assert Hold.objects.filter(holder=case.holder, active=True).count() == 2
    assert Case.objects.count() == 2
    if on_postgres():
        assert "hashbank_hold_new" in sql[0] and len(sql) > 1  # tried, deferred, then general
    assert_log_consistent("adult")


def test_log_times_never_go_back_when_the_list_is_ahead_of_this_clock(adult):
    ahead = 4_000_000_000
    HashList.objects.filter(pk=adult.pk).update(log_last_timestamp=ahead)
    new_case(adult, pdq("later"))
    assert [e.timestamp for e in LogEntry.objects.all()] == [ahead]
    assert tlog.decode_leaf(bytes(LogEntry.objects.get().leaf)).timestamp == ahead
    assert_log_consistent("adult")


def test_a_deferral_inside_a_transaction_leaves_it_usable(adult):
    first, _ = new_case(adult, pdq("again"))
    case_withdraw(case=first)
    with transaction.atomic():
        _case, rows = new_case(adult, pdq("again"))
        assert Hash.objects.get().published  # the transaction goes on after the deferral
    assert rows[0].published
    assert_log_consistent("adult")


@pytest.mark.parametrize("outer_transaction", [False, True])
def test_a_failure_saves_nothing(adult, outer_transaction):
    first, _ = new_case(adult, pdq("first"))
    duplicate = Case(number_digest=first.number_digest, pin_hash="x", hash_list=adult)

    def attempt() -> None:
        hashes_hold_new_owner(
            hash_list=adult,
            hashes=as_inputs(pdq("never"), md5("never")),
            owner=duplicate,
            holder_prefix=Case.HOLDER_PREFIX,
        )

    with pytest.raises(IntegrityError):
        if outer_transaction:
            with transaction.atomic():
                attempt()
        else:
            attempt()
    assert Case.objects.count() == 1
    assert not Hash.objects.filter(value=pdq("never")["value"]).exists()
    assert Hold.objects.count() == 1 and LogEntry.objects.count() == 1
    assert HashList.objects.get(pk=adult.pk).log_size == 1
    assert_log_consistent("adult")


def bank_state(slug: str) -> dict[str, Any]:
    """What partners and victims can see of a list, without ids and times."""
    hash_list = HashList.objects.get(slug=slug)
    value_of = dict(Hash.objects.filter(hash_list=hash_list).values_list("pk", "value"))
    entries = []
    for e in LogEntry.objects.filter(hash_list=hash_list).order_by("index"):
        leaf = tlog.decode_leaf(bytes(e.leaf))
        entries.append((leaf.op, value_of.get(e.hash_id), leaf.removes, e.redacted))
    hashes = sorted(
        Hash.objects.filter(hash_list=hash_list).values_list(
            "value", "quality", "published", "disabled", "under_review", "origin"
        )
    )
    holds = sorted(
        Hold.objects.filter(hash__hash_list=hash_list).values_list("hash__value", "active")
    )
    return {"entries": entries, "hashes": hashes, "holds": holds}


def scenario() -> list[Any]:
    """Cases with overlapping hashes, withdrawals, a disabled and a re-held hash."""
    eligibility = Eligibility(**ADULT)
    made = []

    def make(*hashes: dict[str, Any]) -> None:
        made.append(case_create(eligibility=eligibility, hashes=as_inputs(*hashes)).case)

    make(pdq("s1"), md5("v1"))
    make(pdq("s1"), pdq("s2"))
    case_withdraw(case=made[0])
    make(md5("v1"), pdq("s3", 70))  # v1 was withdrawn: re-published
    Hash.objects.filter(value=pdq("s3")["value"]).update(disabled=True)
    make(pdq("s3"), md5("v2"))  # s3 disabled: held, stays unpublished
    hashes_hold(hash_list=HashList.objects.get(slug="adult"),
                hashes=[HashInput("md5", md5("peer")["value"])],
                holder="peer:1", origin="peer.example/lists/adult")  # fmt: skip
    make(md5("peer"), pdq("s2", 99))  # held by a peer: stays under its provenance
    case_withdraw(case=made[1])
    make(pdq("s1"))
    return made


def test_both_paths_leave_the_bank_in_the_same_state(monkeypatch):
    scenario()
    fast = bank_state("adult")
    assert_log_consistent("adult")
    # The same again on a clean bank, every case through the general path.
    LogEntry.objects.all().delete()
    Hold.objects.all().delete()
    Case.objects.all().delete()
    Hash.objects.all().delete()
    HashList.objects.filter(slug="adult").update(log_size=0, tree_edge={}, log_last_timestamp=0)
    from hashbank.models import TreeNode

    TreeNode.objects.all().delete()
    # As if the one-statement path deferred every time.
    monkeypatch.setattr(store, "hashes_hold_new_owner", lambda **kwargs: None)
    scenario()
    assert bank_state("adult") == fast
    assert_log_consistent("adult")
