"""Federation: importing a peer bank's list, verified exactly as a partner verifies it.

Two kinds of peer: the test server itself (``live_server``, the same database playing both
banks on different lists: ``adult`` is "bank A", ``minor`` is "bank B"), and ``FakeBank``
from the partner client's tests, a signed log served over HTTP with knobs to misbehave
(forks, bad signatures, tampered entries).
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from cases.services import case_withdraw
from exchange import secret_box
from exchange.federation import services as federation
from exchange.federation.services import peer_add, peer_resume, peer_sync
from exchange.models import Peer, PeerEntry
from exchange.services import partner_create
from hashbank import tlog
from hashbank.log import list_origin, list_verifiers
from hashbank.models import Hash, HashList, Holder, HolderKind, LogEntry
from hashbank.services import HashInput, hashes_hold, holds_release
from tests.admin_forms import submit_action, submit_change_form
from tests.conftest import pdq
from tests.exchange.client.fake_bank import (
    TOKEN,
    FakeBank,
    FakeLog,
    fill,
    flip_signature,
    random_pdq,
    served_bank,
    signer,
)
from webapi.errors import Conflict, InvalidInput

FAKE_ORIGIN = "bank.test/lists/adult"
PEER_999 = Holder(HolderKind.PEER, 999)


@pytest.fixture(autouse=True)
def _peer_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.HASHBANK_PEER_ALLOW_HTTP = True
    monkeypatch.setattr(federation, "CLIENT_BACKOFF", 0.0)
    # Local test servers are reached directly, whatever the environment says.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def leaves(slug: str) -> list[tlog.Leaf]:
    return [
        tlog.decode_leaf(bytes(leaf))
        for leaf in LogEntry.objects.filter(hash_list__slug=slug)
        .order_by("index")
        .values_list("leaf", flat=True)
    ]


def published(slug: str) -> dict[str, str]:
    """Published values of a list, with their provenance (Hash.origin)."""
    return dict(
        Hash.objects.filter(hash_list__slug=slug, published=True).values_list("value", "origin")
    )


def log_size(slug: str) -> int:
    return HashList.objects.get(slug=slug).log_size


# ------------------------------------------------------------------ the live server as peer


@pytest.fixture
def subscribe(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str, str], Peer]:
    """``subscribe(name, remote, local)``: the local list imports ``remote`` from live_server.

    One database plays both banks, so ``adult`` and ``minor`` are each other's peer lists:
    peer_add's refusal of this bank's own keys is lifted while subscribing (only then).
    """
    # Sharing SQLite's in-memory connection with the server thread: no download thread.
    monkeypatch.setattr(federation, "PREFETCH_PAGES", 0)

    def make(name: str, remote: str, local: str) -> Peer:
        _, secrets = partner_create(name=f"reader-{name}", lists=[remote])
        with monkeypatch.context() as m:
            m.setattr(federation, "own_origins", lambda: frozenset())
            return peer_add(
                name=name,
                base_url=live_server.url,
                remote_list=remote,
                token=secrets["bearer"],
                vkeys=[vkey for vkey, _ in list_verifiers(remote)],
                local_list=local,
            )

    return make


live = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@live
def test_a_case_on_the_peer_is_imported_with_its_origin_and_its_withdrawal_removes_it(
    subscribe, make_case
):
    peer = subscribe("bank-a", "adult", "minor")
    created = make_case(pdq("victim"))
    value = pdq("victim")["value"]

    result = peer_sync(peer_id=peer.pk)

    assert (result.status, result.imported, result.size) == ("ok", 1, 1)
    assert published("minor") == {value: list_origin("adult")}
    assert leaves("minor")[-1].origin == list_origin("adult")  # partners see the provenance
    peer.refresh_from_db()
    assert peer.size == 1 and not peer.stopped and peer.last_success_at
    assert PeerEntry.objects.get(peer=peer).remote_index == 0

    case_withdraw(case=created.case)
    result = peer_sync(peer_id=peer.pk)

    assert (result.status, result.removed) == ("ok", 1)
    assert published("minor") == {}
    assert leaves("minor")[-1].op == "remove"
    assert not PeerEntry.objects.filter(peer=peer).exists()
    assert peer_sync(peer_id=peer.pk).status == "up_to_date"


@live
def test_a_hash_a_local_case_also_holds_stays_published_when_the_peer_removes_it(
    subscribe, make_case
):
    peer = subscribe("bank-a", "adult", "minor")
    theirs = make_case(pdq("both"))
    peer_sync(peer_id=peer.pk)
    make_case(pdq("both"), minor=True)  # a local case for the same image
    assert leaves("minor")[-1].origin == list_origin("adult")  # still the peer's add

    case_withdraw(case=theirs.case)
    peer_sync(peer_id=peer.pk)

    # Published still, now as this bank's own hash: re-published without an origin.
    assert published("minor") == {pdq("both")["value"]: ""}
    ops = [(leaf.op, leaf.origin) for leaf in leaves("minor")]
    assert ops == [("add", list_origin("adult")), ("remove", None), ("add", None)]


@live
def test_an_entry_naming_our_own_origin_is_verified_but_not_imported(subscribe):
    peer = subscribe("bank-a", "adult", "minor")
    adult = HashList.objects.get(slug="adult")
    ours = HashInput("md5", "0a21c8f85a55a9e276ffc2c53f6887c4")
    # Bank A imported this from us (bank B = minor) and publishes it with our origin.
    hashes_hold(
        hash_list=adult,
        hashes=[ours],
        holder=PEER_999,
        origin=list_origin("minor"),
    )

    result = peer_sync(peer_id=peer.pk)

    assert (result.status, result.imported, result.skipped) == ("ok", 0, 1)
    assert published("minor") == {}
    assert log_size("minor") == 0
    holds_release(holder=PEER_999)  # ...and its later remove is ignored too
    assert peer_sync(peer_id=peer.pk).status == "ok"
    assert log_size("minor") == 0
    assert not PeerEntry.objects.exists()


@live
def test_two_banks_importing_each_other_never_echo_and_let_go_together(subscribe, make_case):
    a_from_b = subscribe("bank-b", "minor", "adult")
    b_from_a = subscribe("bank-a", "adult", "minor")

    def sync_both(rounds: int = 2) -> None:
        for _ in range(rounds):
            for peer in (a_from_b, b_from_a):
                assert peer_sync(peer_id=peer.pk).status in ("ok", "up_to_date")

    only_a = make_case(pdq("only on A"))
    case_a = make_case(pdq("on both"))
    case_b = make_case(pdq("on both"), minor=True)  # the same image, submitted to both banks
    sync_both()
    sizes = (log_size("adult"), log_size("minor"))
    sync_both()
    assert (log_size("adult"), log_size("minor")) == sizes  # nothing bounces back and forth
    assert set(published("minor")) == {pdq("only on A")["value"], pdq("on both")["value"]}
    assert not [leaf for leaf in leaves("adult") if leaf.origin == list_origin("adult")]
    assert not [leaf for leaf in leaves("minor") if leaf.origin == list_origin("minor")]

    case_withdraw(case=only_a.case)
    case_withdraw(case=case_a.case)
    sync_both()
    # B's own case keeps the shared hash: A now publishes it as B's, and B still has it.
    assert published("adult") == {pdq("on both")["value"]: list_origin("minor")}
    assert published("minor") == {pdq("on both")["value"]: ""}

    case_withdraw(case=case_b.case)
    sync_both()
    assert published("adult") == {} and published("minor") == {}
    sizes = (log_size("adult"), log_size("minor"))
    sync_both()
    assert (log_size("adult"), log_size("minor")) == sizes


# ------------------------------------------------------------------ a misbehaving peer


@pytest.fixture
def bank() -> Iterator[FakeBank]:
    with served_bank() as fake:
        yield fake


def fake_peer(bank: FakeBank, local: str = "minor", **kw: Any) -> Peer:
    args = {
        "name": "fake",
        "base_url": bank.url,
        "remote_list": "adult",
        "token": TOKEN,
        "vkeys": [bank.vkey],
        "local_list": local,
    }
    return peer_add(**{**args, **kw})


def add_values(bank: FakeBank, n: int, seed: str) -> list[str]:
    rng = random.Random(seed)
    values = [random_pdq(rng) for _ in range(n)]
    for value in values:
        bank.log.add(value)
    return values


def assert_stopped(peer: Peer, kind: str) -> Peer:
    peer.refresh_from_db()
    assert peer.stopped
    assert f"STOPPED ({kind})" in peer.alert
    return peer


@pytest.mark.django_db
def test_the_whole_log_is_imported_batch_by_batch_as_the_partner_client_sees_it(bank, settings):
    settings.HASHBANK_PEER_IMPORT_BATCH = 7
    fill(bank.log, random.Random(5), 400, remove_every=4)
    peer = fake_peer(bank)
    for size in (1, 60, 61, 250, 400):
        bank.checkpoint_size = size
        result = peer_sync(peer_id=peer.pk)
        assert (result.status, result.size) == ("ok", size), result.message
        # Exactly the adds live at that size (those served redacted never had a value here).
        want = {
            value: origin or FAKE_ORIGIN
            for _algorithm, value, _q, _ts, origin in bank.log.expected_rows(size).values()
        }
        assert published("minor") == want
    assert peer_sync(peer_id=peer.pk).status == "up_to_date"
    assert leaves("minor")[0].origin  # imports carry their provenance


@pytest.mark.django_db
def test_an_import_is_published_under_this_banks_own_leaves_with_fresh_salts(bank):
    values = add_values(bank, 3, "salts")
    peer = fake_peer(bank)
    assert peer_sync(peer_id=peer.pk).status == "ok"
    theirs = [tlog.decode_leaf(leaf) for leaf in bank.log.leaves]
    ours = leaves("minor")
    assert [leaf.value for leaf in ours] == values
    assert all(leaf.origin == FAKE_ORIGIN for leaf in ours)
    # Never the peer's salt: a value the peer later redacts can't be matched here either.
    assert {leaf.salt for leaf in ours}.isdisjoint({leaf.salt for leaf in theirs})
    assert len({leaf.salt for leaf in ours}) == 3


@pytest.mark.django_db
def test_a_redacted_add_whose_remove_comes_later_is_tracked_until_then(bank):
    bank.log.add(random_pdq(random.Random(1)))
    bank.log.remove(0)
    bank.checkpoint_size = 1  # the add is served redacted, its remove is past the checkpoint
    peer = fake_peer(bank)
    assert peer_sync(peer_id=peer.pk).status == "ok"
    assert PeerEntry.objects.get(peer=peer).hash is None
    bank.checkpoint_size = None
    assert peer_sync(peer_id=peer.pk).status == "ok"
    assert not PeerEntry.objects.exists()
    assert log_size("minor") == 0


@pytest.mark.django_db
def test_the_same_hash_under_two_live_adds_stays_until_both_are_removed(bank):
    value = random_pdq(random.Random(2))
    bank.log.add(value)
    bank.log.add(value)
    peer = fake_peer(bank)
    peer_sync(peer_id=peer.pk)
    bank.log.remove(0)
    peer_sync(peer_id=peer.pk)
    assert value in published("minor")
    bank.log.remove(1, reason="disabled")
    peer_sync(peer_id=peer.pk)
    assert published("minor") == {}
    assert leaves("minor")[-1].reason == "disabled"  # the peer's reason is passed on


def _wrong_key(bank: FakeBank, peer: Peer) -> None:
    Peer.objects.filter(pk=peer.pk).update(vkeys=signer(FAKE_ORIGIN).vkey)


def _bad_signature(bank: FakeBank, peer: Peer) -> None:
    bank.checkpoint_body = flip_signature(bank.log.note())


def _rollback(bank: FakeBank, peer: Peer) -> None:
    bank.checkpoint_size = 2


def _fork(bank: FakeBank, peer: Peer) -> None:
    other = FakeLog(bank.log.signers)
    add_values(FakeBank(other), 6, "another history")
    bank.log = other


def _wrong_redacted_leaf_hash(bank: FakeBank, peer: Peer) -> None:
    bank.log.remove(4)  # entry 4 (new) is served redacted, with a wrong leaf hash
    bank.field_override[4] = {"leaf_hash": base64.b64encode(b"\x07" * 32).decode()}


def _tampered_leaf(bank: FakeBank, peer: Peer) -> None:
    bank.leaf_override[4] = b"add pdq 00 90 1\n"


def _remove_of_a_remove(bank: FakeBank, peer: Peer) -> None:
    bank.log.remove(3)  # entry 6: fine
    bank.log.remove(6)  # entry 6 is a remove, not an add


def _corrupt_stored_state(bank: FakeBank, peer: Peer) -> None:
    Peer.objects.filter(pk=peer.pk).update(root=base64.b64encode(b"\x01" * 32).decode())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("misbehave", "kind"),
    [
        (_wrong_key, "UnknownKey"),
        (_bad_signature, "BadSignature"),
        (_rollback, "Rollback"),
        (_fork, "Fork"),
        (_wrong_redacted_leaf_hash, "RootMismatch"),
        (_tampered_leaf, "TamperedEntry"),
        (_remove_of_a_remove, "BadRemove"),
        (_corrupt_stored_state, "CorruptState"),
    ],
)
def test_a_refused_sync_stops_the_peer_keeps_earlier_imports_and_imports_nothing_new(
    bank, misbehave, kind
):
    first = add_values(bank, 4, "first")
    peer = fake_peer(bank)
    assert peer_sync(peer_id=peer.pk).status == "ok"
    later = add_values(bank, 2, "later")
    before = (log_size("minor"), list(PeerEntry.objects.values_list("remote_index", "hash_id")))
    misbehave(bank, peer)

    result = peer_sync(peer_id=peer.pk)

    assert result.status == "refused" and result.failed
    peer = assert_stopped(peer, kind)
    assert peer.size == 4  # the last verified state is kept
    assert set(published("minor")) == set(first)  # earlier imports kept, nothing of `later`
    assert not set(later) & set(published("minor"))
    after = (log_size("minor"), list(PeerEntry.objects.values_list("remote_index", "hash_id")))
    assert after == before
    # A stopped peer is left alone until an operator resumes it.
    requests_before = len(bank.requests)
    assert peer_sync(peer_id=peer.pk).status == "stopped"
    assert len(bank.requests) == requests_before
    assert federation.peers_due() == []


@pytest.mark.django_db
def test_resuming_after_the_cause_is_fixed_imports_again(bank):
    add_values(bank, 2, "x")
    peer = fake_peer(bank)
    peer_sync(peer_id=peer.pk)
    later = add_values(bank, 1, "y")
    _wrong_key(bank, peer)
    assert peer_sync(peer_id=peer.pk).status == "refused"
    assert peer_sync(peer_id=peer.pk, resume=True).status == "refused"  # not fixed yet
    Peer.objects.filter(pk=peer.pk).update(vkeys=bank.vkey)  # operator pins the right key

    result = peer_sync(peer_id=peer.pk, resume=True)

    assert (result.status, result.imported) == ("ok", 1)
    assert later[0] in published("minor")
    peer.refresh_from_db()
    assert not peer.stopped and peer.alert == ""
    assert not peer_resume(peer_id=peer.pk)  # not stopped: nothing to resume


@pytest.mark.django_db
def test_network_and_http_errors_are_recorded_and_retried_without_stopping(bank, settings):
    add_values(bank, 2, "net")
    peer = fake_peer(bank)
    bank.fail_next = [503] * 10

    result = peer_sync(peer_id=peer.pk)

    assert result.status == "error" and "503" in result.message
    peer.refresh_from_db()
    assert not peer.stopped and "503" in peer.last_error and peer.last_success_at is None
    bank.fail_next = []
    bank.token = "revoked"
    assert "401" in peer_sync(peer_id=peer.pk).message
    bank.token = TOKEN
    assert peer_sync(peer_id=peer.pk).status == "ok"
    peer.refresh_from_db()
    assert peer.last_error == "" and peer.size == 2


@pytest.mark.django_db
def test_a_peer_another_worker_is_syncing_is_skipped(bank):
    add_values(bank, 1, "lease")
    peer = fake_peer(bank)
    Peer.objects.filter(pk=peer.pk).update(lease_until=timezone.now() + timedelta(minutes=5))
    assert peer_sync(peer_id=peer.pk).status == "busy"
    assert bank.requests == []
    assert federation.peers_due() == []
    Peer.objects.filter(pk=peer.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert peer_sync(peer_id=peer.pk).status == "ok"  # an expired lease is taken over
    assert Peer.objects.get(pk=peer.pk).lease_until is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_never_import_the_same_peer_at_once(bank):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven against PostgreSQL (set DATABASE_URL)")
    add_values(bank, 50, "race")
    peer = fake_peer(bank)
    bank.delay_next = [0.5]  # the first checkpoint request is slow
    results: list[str] = []

    def run() -> None:
        try:
            results.append(peer_sync(peer_id=peer.pk).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["busy", "busy", "busy", "ok"]
    assert PeerEntry.objects.filter(peer=peer).count() == 50
    assert log_size("minor") == 50


@pytest.mark.django_db
def test_inactive_peers_are_not_synced(bank):
    peer = fake_peer(bank)
    Peer.objects.filter(pk=peer.pk).update(active=False)
    assert peer_sync(peer_id=peer.pk).status == "inactive"
    assert bank.requests == []


@pytest.mark.django_db
def test_unsubscribing_unpublishes_what_only_the_peer_kept(bank, make_case):
    values = add_values(bank, 3, "unsubscribe")
    peer = fake_peer(bank, local="adult")
    peer_sync(peer_id=peer.pk)
    make_case({"algorithm": "pdq", "value": values[0], "quality": 90})  # a local case too

    assert federation.peer_unsubscribe(peer_id=peer.pk) == 3

    assert published("adult") == {values[0]: ""}  # the local case keeps its hash
    peer.refresh_from_db()
    assert (peer.active, peer.size, peer.checkpoint) == (False, 0, "")
    assert not PeerEntry.objects.exists()
    assert peer_sync(peer_id=peer.pk).status == "inactive"
    Peer.objects.filter(pk=peer.pk).update(active=True)  # subscribing again: a full import
    assert peer_sync(peer_id=peer.pk).imported == 3


# ------------------------------------------------------------------ subscribing


@pytest.mark.django_db
def test_the_token_is_stored_sealed(bank):
    peer = fake_peer(bank)
    assert TOKEN not in json.dumps(list(Peer.objects.values().get().values()), default=str)
    assert secret_box.unseal(peer.token_sealed, purpose=f"peer:{peer.pk}") == TOKEN


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": " "}, "name"),
        ({"base_url": "ftp://bank.test"}, "base_url"),
        ({"base_url": "https://bank.test/?x=1"}, "base_url"),
        ({"remote_list": "no such/list"}, "remote_list"),
        ({"vkeys": []}, "vkeys"),
        ({"vkeys": ["bank.test/lists/adult+00000000+AQ=="]}, "vkeys"),
        ({"vkeys": [signer("bank.test/lists/minor").vkey]}, "vkeys"),
        ({"vkeys": [signer(FAKE_ORIGIN).vkey, signer("bank.test/lists/x").vkey]}, "vkeys"),
        ({"vkeys": [signer("bank.test/adult").vkey]}, "vkeys"),
        ({"token": "  "}, "token"),
        ({"local_list": "nope"}, "local_list"),
    ],
)
def test_peer_add_refuses_bad_input(bank, change, field):
    with pytest.raises(InvalidInput) as info:
        fake_peer(bank, **change)
    assert info.value.field == field
    assert not Peer.objects.exists()


@pytest.mark.django_db
def test_peer_add_refuses_plain_http_in_production(bank, settings):
    settings.HASHBANK_PEER_ALLOW_HTTP = False
    with pytest.raises(InvalidInput, match="https"):
        fake_peer(bank)


@pytest.mark.django_db
def test_peer_add_refuses_our_own_lists_and_duplicates(bank):
    with pytest.raises(InvalidInput, match="own lists"):
        fake_peer(bank, vkeys=[list_verifiers("adult")[0][0]])
    fake_peer(bank)
    with pytest.raises(Conflict, match="exists already"):
        fake_peer(bank)
    with pytest.raises(Conflict, match="imported already"):
        fake_peer(bank, name="again")


def run(command: str, *args: str) -> dict[str, Any]:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_peer_add_command_prints_the_peer_never_the_token(bank, tmp_path, capsys):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    args = ["fake", "--base-url", bank.url, "--list", "adult", "--vkey", bank.vkey,
            "--local-list", "minor", "--token-file", str(token_file)]  # fmt: skip

    dry = run("peer_add", *args, "--dry-run")
    assert dry["dry_run"] and dry["id"] is None and not Peer.objects.exists()

    printed = run("peer_add", *args)
    assert printed["origin"] == FAKE_ORIGIN and printed["local_list"] == "minor"
    assert printed["vkeys"] == [bank.vkey]
    assert TOKEN not in json.dumps(printed) and TOKEN not in capsys.readouterr().out
    assert Peer.objects.get().pk == printed["id"]


@pytest.mark.django_db
def test_peer_add_command_reads_the_token_from_the_environment(bank, monkeypatch):
    args = ["fake", "--base-url", bank.url, "--list", "adult", "--vkey", bank.vkey,
            "--local-list", "minor"]  # fmt: skip
    with pytest.raises(CommandError, match="No token"):
        run("peer_add", *args)
    monkeypatch.setenv("HASHBANK_PEER_TOKEN", TOKEN)
    assert run("peer_add", *args)["peer"] == "fake"
    with pytest.raises(CommandError, match="exists already"):
        run("peer_add", *args)


@pytest.mark.django_db
def test_peer_sync_command_prints_results_and_fails_on_a_refusal(bank):
    add_values(bank, 3, "cmd")
    peer = fake_peer(bank)
    out = run("peer_sync", "--peer", "fake")
    assert out["results"][0]["status"] == "ok" and out["results"][0]["imported"] == 3

    _wrong_key(bank, peer)
    add_values(bank, 1, "cmd2")
    stdout = StringIO()
    with pytest.raises(CommandError, match="fake"):
        call_command("peer_sync", stdout=stdout)
    assert json.loads(stdout.getvalue())["results"][0]["status"] == "refused"
    assert run("peer_sync")["results"][0]["status"] == "stopped"
    with pytest.raises(CommandError, match="--peer"):
        run("peer_sync", "--resume")
    with pytest.raises(CommandError, match="No peer"):
        run("peer_sync", "--peer", "nobody")
    Peer.objects.filter(pk=peer.pk).update(vkeys=bank.vkey)
    assert run("peer_sync", "--peer", "fake", "--resume")["results"][0]["imported"] == 1


@pytest.mark.django_db
def test_the_beat_task_syncs_due_peers_and_skips_stopped_ones(bank, settings, in_process_tasks):
    from exchange.federation.tasks import peers_sync

    schedule = settings.CELERY_BEAT_SCHEDULE["sync-peers"]
    assert schedule["task"] == "exchange.tasks.peers_sync"
    add_values(bank, 2, "beat")
    peer = fake_peer(bank)
    assert peers_sync.apply().get() == 1  # tasks run in-process in tests
    assert Peer.objects.get(pk=peer.pk).size == 2
    Peer.objects.filter(pk=peer.pk).update(stopped=True)
    assert peers_sync.apply().get() == 0


# ------------------------------------------------------------------ admin


@pytest.mark.django_db
def test_admin_shows_a_stopped_peer_as_an_alert(operator, bank):
    add_values(bank, 2, "admin")
    peer = fake_peer(bank)
    peer_sync(peer_id=peer.pk)
    _fork(bank, peer)
    peer_sync(peer_id=peer.pk)

    listing = operator.get(reverse("admin:exchange_peer_changelist")).content.decode()
    page = operator.get(reverse("admin:exchange_peer_change", args=[peer.pk])).content.decode()

    assert "STOPPED" in listing and "Fork" in listing  # status column and alert message
    assert "STOPPED (Fork)" in page and TOKEN not in page
    assert operator.get(reverse("admin:exchange_peer_add")).status_code == 200


@pytest.mark.django_db
def test_admin_adds_a_peer_and_its_actions_sync_and_resume(operator, bank, in_process_tasks):
    add_values(bank, 2, "admin-add")
    submit_change_form(
        operator, "/admin/exchange/peer/add/",
        name="fake", base_url=bank.url, remote_list="adult", vkeys=bank.vkey,
        local_list=HashList.objects.get(slug="minor").pk, token=TOKEN, active="on",
    )  # fmt: skip
    peer = Peer.objects.get()
    assert secret_box.unseal(peer.token_sealed, purpose=f"peer:{peer.pk}") == TOKEN

    def action(name: str) -> str:
        return "\n".join(submit_action(operator, "/admin/exchange/peer/", name, [peer]))

    assert "ok, size 2, 2 imported" in action("sync_now")
    Peer.objects.filter(pk=peer.pk).update(stopped=True, alert="test alert")
    assert "Resumed: fake" in action("resume")
    assert not Peer.objects.get(pk=peer.pk).stopped
    assert "2 hashes released" in action("unsubscribe")
    assert published("minor") == {}


@pytest.mark.django_db
def test_admin_refuses_bad_keys_and_a_missing_token(operator, bank):
    response = operator.post(
        reverse("admin:exchange_peer_add"),
        {"name": "fake", "base_url": bank.url, "remote_list": "adult", "vkeys": "nonsense",
         "local_list": HashList.objects.get(slug="minor").pk, "active": "on"},
    )  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 200
    assert "Invalid verifier key" in page and "token is needed" in page
    assert not Peer.objects.exists()
