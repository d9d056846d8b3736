"""Federation doesn't block the bank: batched imports, capped syncs, and a stopped peer's
pending removals (``exchange/federation/services.py``)."""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from cases.services import Eligibility, case_create
from exchange.federation import services as federation
from exchange.federation.services import peer_add, peer_sync
from exchange.models import Peer, PeerEntry
from hashbank.models import Hash, LogEntry
from hashbank.services import HashInput
from tests.admin_forms import submit_action
from tests.conftest import ADULT
from tests.exchange.client.fake_bank import (
    TOKEN,
    FakeBank,
    fill,
    random_pdq,
    served_bank,
)

FAKE_ORIGIN = "bank.test/lists/adult"


@pytest.fixture(autouse=True)
def _peer_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.HASHBANK_PEER_ALLOW_HTTP = True
    monkeypatch.setattr(federation, "CLIENT_BACKOFF", 0.0)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def bank() -> Iterator[FakeBank]:
    with served_bank() as fake:
        yield fake


def fake_peer(bank: FakeBank, local: str = "minor") -> Peer:
    return peer_add(
        name="fake",
        base_url=bank.url,
        remote_list="adult",
        token=TOKEN,
        vkeys=[bank.vkey],
        local_list=local,
    )


def published(slug: str) -> dict[str, str]:
    return dict(
        Hash.objects.filter(hash_list__slug=slug, published=True).values_list("value", "origin")
    )


def expected(bank: FakeBank, size: int) -> dict[str, str]:
    return {
        value: origin or FAKE_ORIGIN
        for _algorithm, value, _q, _ts, origin in bank.log.expected_rows(size).values()
    }


# --- Caps -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sync_takes_at_most_the_entry_cap_and_the_next_continues(bank, settings):
    settings.HASHBANK_PEER_SYNC_MAX_ENTRIES = 90
    settings.HASHBANK_PEER_IMPORT_BATCH = 20
    fill(bank.log, random.Random(11), 250, remove_every=5)
    peer = fake_peer(bank)
    for size in (90, 180, 250):
        result = peer_sync(peer_id=peer.pk)
        assert result.size == size, result.message
        assert result.status == ("ok" if size == 250 else "partial")
        assert published("minor") == expected(bank, size)
        peer.refresh_from_db()
        assert peer.size == peer.applied_size == size
    assert peer_sync(peer_id=peer.pk).status == "up_to_date"


@pytest.mark.django_db
def test_a_capped_sync_still_refuses_an_entry_the_signed_tree_does_not_hold(bank, settings):
    settings.HASHBANK_PEER_SYNC_MAX_ENTRIES = 10
    for _ in range(30):
        bank.log.add(random_pdq(random.Random(len(bank.log.leaves))))
    # A redacted entry's leaf hash is served, not recomputed: altered, only the root (here:
    # the consistency proof from the capped tree to the checkpoint) can tell.
    bank.log.remove(4)
    bank.field_override[4] = {"leaf_hash": base64.b64encode(b"\x07" * 32).decode()}
    peer = fake_peer(bank)
    result = peer_sync(peer_id=peer.pk)
    assert result.status == "refused"
    assert "RootMismatch" in result.message and "not a prefix" in result.message
    peer.refresh_from_db()
    assert peer.size == 0 and published("minor") == {}


@pytest.mark.django_db
def test_a_sync_out_of_time_stops_between_batches_and_the_next_skips_what_it_applied(
    bank, settings, monkeypatch
):
    settings.HASHBANK_PEER_IMPORT_BATCH = 10
    settings.HASHBANK_PEER_SYNC_MAX_S = 1
    fill(bank.log, random.Random(12), 120, remove_every=4)
    peer = fake_peer(bank)
    # Each batch of this import takes a third of a second.
    apply = federation._PeerImport.apply

    def slow_apply(self: Any, *args: Any, **kwargs: Any) -> int:
        time.sleep(0.34)
        return apply(self, *args, **kwargs)

    monkeypatch.setattr(federation._PeerImport, "apply", slow_apply)
    result = peer_sync(peer_id=peer.pk)
    peer.refresh_from_db()
    assert result.status == "partial" and result.size == 0
    assert peer.size == 0 and 0 < peer.applied_size < 120
    monkeypatch.setattr(federation._PeerImport, "apply", apply)
    result = peer_sync(peer_id=peer.pk)
    assert (result.status, result.size) == ("ok", 120), result.message
    assert published("minor") == expected(bank, 120)
    # Nothing was applied twice: one live PeerEntry per live add.
    assert PeerEntry.objects.filter(peer=peer).count() == len(bank.log.expected_rows(120))


# --- A case on the list waits at most about one batch -----------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_case_creation_on_the_list_waits_at_most_about_one_batch_of_a_large_import(bank, settings):
    settings.HASHBANK_PEER_IMPORT_BATCH = 200
    rng = random.Random(13)
    for _ in range(8000):
        bank.log.add(random_pdq(rng))
    peer = fake_peer(bank, local="adult")
    outcome: list[Any] = []

    def sync() -> None:
        try:
            outcome.append(peer_sync(peer_id=peer.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=sync)
    thread.start()
    waits: list[float] = []  # case creations started once the peer's entries were served
    import_started = import_ended = 0.0
    n = 0
    try:
        while thread.is_alive():
            served = any(path.endswith("/entries") for path, _ in list(bank.requests))
            began = time.monotonic()
            case_create(
                eligibility=Eligibility(**ADULT),
                hashes=[HashInput("md5", f"{n:032x}", None)],
            )
            took = time.monotonic() - began
            n += 1
            if served and not import_started:
                import_started = began
            if import_started:
                waits.append(took)
                import_ended = time.monotonic()
    finally:
        thread.join()
    (result,) = outcome
    assert result.status == "ok", result.message
    importing = import_ended - import_started  # verifying the entries, then importing them
    batches = 8000 / 200
    # Without batches, a case waited for the whole import, in one transaction.
    assert waits and max(waits) < max(0.5, 4 * importing / batches), (importing, waits)
    assert len(waits) >= 5, (waits, importing)
    # The cases landed between the import's batches in the list's log, not after them.
    ops = list(
        LogEntry.objects.filter(hash_list__slug="adult", op="add")
        .order_by("index")
        .values_list("hash__algorithm", flat=True)
    )
    last_import = max(i for i, algorithm in enumerate(ops) if algorithm == "pdq")
    assert any(algorithm == "md5" for algorithm in ops[:last_import])


# --- A stopped peer with removals pending at its origin ---------------------------------


@pytest.mark.django_db
def test_a_stopped_peer_with_pending_removals_alerts_and_its_imports_can_be_unpublished(
    bank, operator, make_case
):
    rng = random.Random(14)
    values = [random_pdq(rng) for _ in range(5)]
    for value in values:
        bank.log.add(value)
    peer = fake_peer(bank, local="adult")
    assert peer_sync(peer_id=peer.pk).status == "ok"
    local = make_case({"algorithm": "pdq", "value": values[0], "quality": 90})
    assert set(published("adult")) == set(values)
    # The peer withdraws two hashes, then serves an entry that does not verify.
    bank.log.remove(1)
    bank.log.remove(2)
    bank.log.add(random_pdq(rng))
    bank.leaf_override[7] = b"add pdq 00 90 1\n"
    result = peer_sync(peer_id=peer.pk)
    assert result.status == "refused"
    peer.refresh_from_db()
    assert peer.stopped and "REMOVALS PENDING" in peer.alert and " 2 removal(s)" in peer.alert
    page = operator.get("/admin/exchange/peer/").content.decode()
    assert "REMOVALS PENDING" in page and "5 hashes it imported stay published" in page

    confirm = operator.post(
        "/admin/exchange/peer/",
        {"action": "unpublish_imports", "_selected_action": [str(peer.pk)]},
    )
    assert confirm.status_code == 200 and "5 imported hashes" in confirm.content.decode()
    assert set(published("adult")) == set(values)  # nothing happens before the confirmation
    messages = submit_action(
        operator, "/admin/exchange/peer/", "unpublish_imports", [peer], confirm="yes"
    )
    assert any("hashes unpublished" in m for m in messages)
    # The local case's hash stays; what only the peer held is gone; the peer stays stopped.
    assert set(published("adult")) == {values[0]}
    peer.refresh_from_db()
    assert peer.stopped and peer.size == 0 and not PeerEntry.objects.filter(peer=peer).exists()
    assert local.case.pk
