"""Push delivery, run in-process: signing, order, batching, failures and resumption.

The failure modes that need a live worker and broker are in test_push_celery.py.
"""

from __future__ import annotations

import base64
import itertools
import signal
import time

import pytest
from django.utils import timezone

from cases.services import case_withdraw
from exchange import webhook_signing
from exchange.models import Delivery, ListGrant, Partner
from exchange.push.services import (
    REPLY_READ_MAX,
    DeadlineExceeded,
    backoff_seconds,
    deliveries_to_kick,
    delivery_redeliver_from,
    delivery_run,
    http_post_within,
    partner_webhook_set,
    webhook_secret_issue,
)
from exchange.push.tasks import deliveries_sweep
from exchange.selectors import delivery_entitled, partner_lists
from exchange.services import partner_grant
from hashbank import tlog
from hashbank.models import HashList
from tests.admin_forms import submit_action
from tests.conftest import md5, pdq
from tests.exchange.push.receiver import BadPartner, Receiver, serve
from webapi.errors import InvalidInput

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def in_process_tasks(settings):
    """Tasks run inline here, whatever broker CI configures."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def make_case(make_case, django_capture_on_commit_callbacks):
    """Create cases and run what their commit triggers (the delivery kick)."""

    def make(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return make_case(*args, **kwargs)

    return make


@pytest.fixture
def receiver():
    r = Receiver()
    with serve(r) as url:
        r.url = url
        yield r


@pytest.fixture
def hooked(make_partner, receiver, settings):
    settings.HASHBANK_WEBHOOK_BATCH = 3
    partner, secrets = make_partner(("adult",), webhook_url=receiver.url)
    receiver.secret = secrets["webhook_secret"]
    return partner


def test_new_entries_are_pushed_signed_in_order_and_verifiable(hooked, receiver, make_case):
    make_case(pdq("a"), md5("b"))
    make_case(pdq("c"), pdq("d"), pdq("e"))
    assert receiver.indexes == [0, 1, 2, 3, 4]
    assert receiver.bad_signatures == 0
    # Each batch holds at most 3 entries and carries a checkpoint covering exactly it.
    assert all(len(b["entries"]) <= 3 for b in receiver.bodies)
    body = receiver.bodies[-1]
    assert body["type"] == "entries" and body["list"] == "adult"
    from hashbank.log import list_verifiers

    verifier = tlog.parse_vkey(list_verifiers("adult")[0][0])
    cp = tlog.parse_checkpoint(tlog.open_note(body["checkpoint"], [verifier]).text)
    assert cp.size == body["entries"][-1]["index"] + 1
    leaves = [tlog.leaf_hash(base64.b64decode(e["leaf"])) for e in receiver.entries]
    assert tlog.root_from_leaf_hashes(leaves[: cp.size]) == cp.root
    delivery = Delivery.objects.get()
    assert delivery.acked_position == 5 and delivery.last_success_at is not None


def test_withdrawals_are_pushed_as_removes(
    hooked, receiver, make_case, django_capture_on_commit_callbacks
):
    created = make_case(pdq("w"))
    with django_capture_on_commit_callbacks(execute=True):
        case_withdraw(case=created.case)
    assert [e["op"] for e in receiver.entries] == ["add", "remove"]
    assert receiver.entries[1]["removes"] == 0
    # The add was pushed with its salt, which reproduces its leaf.
    add = receiver.entries[0]
    leaf = tlog.decode_leaf(base64.b64decode(add["leaf"]))
    assert leaf.salt == base64.b64decode(add["salt"]) and len(leaf.salt) == tlog.SALT_SIZE


def test_a_partner_hooked_after_a_withdrawal_is_pushed_only_its_leaf_hash(
    make_partner, receiver, make_case, django_capture_on_commit_callbacks
):
    created = make_case(pdq("gone"))
    with django_capture_on_commit_callbacks(execute=True):
        case_withdraw(case=created.case)
    _, secrets = make_partner(("adult",), webhook_url=receiver.url)
    receiver.secret = secrets["webhook_secret"]
    make_case(pdq("next"))  # wakes the delivery up
    redacted = receiver.entries[0]
    assert set(redacted) == {"index", "op", "redacted", "leaf_hash"}
    assert pdq("gone")["value"] not in str(receiver.bodies)


def test_a_failing_endpoint_is_retried_with_backoff_then_marked_degraded(
    hooked, receiver, make_case, settings
):
    settings.HASHBANK_WEBHOOK_DEGRADED_AFTER = 2
    receiver.fail_next = 3
    make_case(pdq("f"))
    delivery = Delivery.objects.get()
    assert delivery.consecutive_failures == 1 and "HTTP 500" in delivery.last_error
    assert delivery.next_attempt_at > timezone.now()
    first_id = delivery.webhook_id
    # Not due yet: the run does nothing.
    assert delivery_run(delivery_id=delivery.pk) == "busy"
    for expected_failures in (2, 3):
        Delivery.objects.update(next_attempt_at=timezone.now())
        assert delivery_run(delivery_id=delivery.pk) == "failed"
        delivery.refresh_from_db()
        assert delivery.consecutive_failures == expected_failures
        assert delivery.degraded
        assert delivery.webhook_id == first_id  # same message, same id
    Delivery.objects.update(next_attempt_at=timezone.now())
    assert delivery_run(delivery_id=delivery.pk) == "done"
    delivery.refresh_from_db()
    assert not delivery.degraded and delivery.consecutive_failures == 0
    assert receiver.indexes == [0]


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap(settings):
    settings.HASHBANK_WEBHOOK_BACKOFF_BASE_S = 2
    settings.HASHBANK_WEBHOOK_BACKOFF_CAP_S = 60
    for failures, ceiling in [(1, 2), (2, 4), (3, 8), (6, 60), (30, 60)]:
        waits = [backoff_seconds(failures) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len({round(w, 6) for w in waits}) > 100  # jittered


def test_a_delivery_held_by_another_worker_is_not_sent_twice(hooked, receiver, make_case, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    receiver.fail_next = 1
    make_case(pdq("lease"))
    delivery = Delivery.objects.get()
    Delivery.objects.update(
        next_attempt_at=None, lease_until=timezone.now() + timezone.timedelta(seconds=60)
    )
    assert delivery_run(delivery_id=delivery.pk) == "busy"
    assert receiver.requests == 1


def test_the_sweep_finds_partners_that_are_behind(hooked, receiver, make_case, monkeypatch):
    from exchange.push import tasks

    monkeypatch.setattr(tasks.deliver, "delay", lambda *a: None)  # lose every kick
    make_case(pdq("lost"))
    assert receiver.indexes == []
    monkeypatch.undo()
    assert deliveries_sweep() == 1
    assert receiver.indexes == [0]


def test_redeliver_from_an_index_sends_those_entries_again(hooked, receiver, make_case):
    make_case(pdq("r1"), pdq("r2"))
    delivery = Delivery.objects.get()
    delivery_redeliver_from(delivery=delivery, index=1)
    receiver.seen_ids.clear()
    assert delivery_run(delivery_id=delivery.pk) == "done"
    assert receiver.indexes == [0, 1, 1]
    with pytest.raises(ValueError):
        delivery_redeliver_from(delivery=delivery, index=99)


def test_a_partner_that_may_not_read_minor_gets_no_minor_entries(hooked, receiver, make_case):
    make_case(pdq("m"), minor=True)
    assert receiver.indexes == []
    assert not Delivery.objects.filter(hash_list__slug="minor").exists()


def test_during_secret_rotation_both_secrets_sign(hooked, receiver, make_case):
    old = receiver.secret
    new = webhook_secret_issue(partner=hooked)
    make_case(pdq("rot"))
    assert receiver.bad_signatures == 0  # verified with the old secret
    receiver.secret = new
    make_case(pdq("rot2"))
    assert receiver.bad_signatures == 0  # and with the new one
    assert old != new


def test_webhook_urls_must_be_https_in_production(make_partner, settings):
    settings.HASHBANK_WEBHOOK_ALLOW_HTTP = False
    partner, _ = make_partner(("adult",))
    with pytest.raises(InvalidInput):
        partner_webhook_set(partner=partner, url="http://partner.example/hook")
    with pytest.raises(InvalidInput):
        partner_webhook_set(partner=partner, url="ftp://partner.example/hook")
    assert partner_webhook_set(partner=partner, url="https://partner.example/hook").startswith(
        "whsec_"
    )


def test_signatures_match_the_standard_webhooks_package():
    from standardwebhooks.webhooks import Webhook

    secret = webhook_signing.new_secret()
    import time

    headers = webhook_signing.sign_headers([secret], "msg_1", int(time.time()), b'{"a":1}')
    assert Webhook(secret).verify(b'{"a":1}', headers) == {"a": 1}
    webhook_signing.verify(secret, headers, b'{"a":1}', now=int(time.time()))
    with pytest.raises(webhook_signing.WebhookSignatureError):
        webhook_signing.verify(secret, headers, b'{"a":2}', now=int(time.time()))
    with pytest.raises(webhook_signing.WebhookSignatureError):
        webhook_signing.verify(secret, headers, b'{"a":1}', now=int(time.time()) + 3600)


def test_the_webhook_secret_is_stored_sealed(hooked, receiver):
    hooked.refresh_from_db()
    assert receiver.secret not in hooked.webhook_secret_sealed
    assert receiver.secret.removeprefix("whsec_") not in hooked.webhook_secret_sealed


def test_admin_shows_lag_and_errors_and_redelivers_from_an_index(
    hooked, receiver, make_case, operator, django_capture_on_commit_callbacks
):
    receiver.fail_next = 1
    make_case(pdq("adm1"), pdq("adm2"))
    page = operator.get(f"/admin/exchange/partner/{hooked.pk}/change/").content.decode()
    assert "2 entries" in page and "HTTP 500" in page
    listing = operator.get("/admin/exchange/delivery/").content.decode()
    assert "HTTP 500" in listing
    delivery = Delivery.objects.get()
    Delivery.objects.update(next_attempt_at=None, consecutive_failures=0)
    delivery_run(delivery_id=delivery.pk)
    assert Delivery.objects.get().acked_position == 2
    form = operator.post(
        "/admin/exchange/delivery/",
        {"action": "redeliver_from_index", "_selected_action": [delivery.pk]},
    )
    assert form.status_code == 200 and b"Redeliver" in form.content
    receiver.seen_ids.clear()
    with django_capture_on_commit_callbacks() as queued:
        done = submit_action(
            operator, "/admin/exchange/delivery/", "redeliver_from_index", [delivery],
            apply="1", index="1",
        )  # fmt: skip
    assert "1 deliveries will resend from the given index." in done
    assert Delivery.objects.get().acked_position == 1
    # The redelivery is queued once the reset commits, not left to the next sweep.
    for callback in queued:
        callback()
    assert Delivery.objects.get().acked_position == 2
    assert receiver.indexes[-1] == 1


@pytest.mark.perf
def test_a_list_without_push_partners_costs_no_query(make_case, django_assert_num_queries):
    from exchange.push.tasks import deliveries_kick

    adult_id = make_case(pdq("first")).case.hash_list_id  # no partner yet: remembered
    with django_assert_num_queries(0):
        deliveries_kick(hash_list_id=adult_id)


def test_a_webhook_registered_in_this_process_is_pushed_to_at_once(
    make_case, make_partner, receiver
):
    make_case(pdq("first"))  # no partner yet: the list is remembered as having none
    # Registering a webhook (in this process) forgets that at once.
    _, secrets = make_partner(("adult",), webhook_url=receiver.url)
    receiver.secret = secrets["webhook_secret"]
    make_case(pdq("second"))
    assert receiver.indexes == [0, 1]
    assert receiver.bad_signatures == 0


def test_a_delivery_made_elsewhere_is_kicked_within_one_sweep_interval(
    make_case, make_partner, settings
):
    # Another process (a web worker, the sweep) creates the delivery; this one is not
    # told, and goes by what it remembered for at most one sweep interval.
    settings.HASHBANK_SWEEP_INTERVAL_S = 2
    partner, _ = make_partner(("adult",))  # no webhook yet: no delivery
    adult_id = make_case(pdq("x")).case.hash_list_id
    remembered_by = time.monotonic()
    delivery = Delivery.objects.create(partner=partner, hash_list_id=adult_id)
    assert deliveries_to_kick(hash_list_id=adult_id) == []
    time.sleep(max(0.0, remembered_by + 2 - time.monotonic()))
    assert deliveries_to_kick(hash_list_id=adult_id) == [delivery.pk]


@pytest.mark.perf
def test_a_caught_up_delivery_is_left_unleased_by_a_stale_task(
    hooked, receiver, make_case, django_assert_max_num_queries
):
    # Tasks outlive their reason: a publish, the sweep or a broker redelivery can
    # queue one for a delivery another worker has already brought up to date.
    make_case(pdq("stale"))
    delivery = Delivery.objects.get()
    assert delivery.acked_position == 1 and delivery.lease_until is None
    # Taking the lease and giving it back would be at least three statements (claim,
    # read, release); a claim that matches no row and one read to tell why are two.
    with django_assert_max_num_queries(2):
        assert delivery_run(delivery_id=delivery.pk) == "done"
    delivery.refresh_from_db()
    assert delivery.lease_until is None and receiver.requests == 1


def test_a_deactivated_partner_is_sent_nothing_more(hooked, receiver, make_case):
    make_case(pdq("before"))
    Partner.objects.filter(pk=hooked.pk).update(active=False)
    make_case(pdq("after"))
    delivery = Delivery.objects.get()
    finished = run_with_deadline(lambda: delivery_run(delivery_id=delivery.pk))
    assert finished == "done"
    assert receiver.indexes == [0]
    delivery.refresh_from_db()
    assert delivery.acked_position == 1 and delivery.lease_until is None


@pytest.mark.parametrize("revoke", ["grant deleted", "explicit confirmation withdrawn"])
def test_a_partner_whose_grant_is_revoked_is_pushed_nothing_more_from_that_list(
    make_partner, receiver, make_case, revoke
):
    partner, secrets = make_partner(("adult", "minor"), webhook_url=receiver.url)
    receiver.secret = secrets["webhook_secret"]
    make_case(pdq("granted"), minor=True)
    minor_delivery = Delivery.objects.get(hash_list__slug="minor")
    assert minor_delivery.acked_position == 1 and receiver.indexes == [0]
    grant = ListGrant.objects.filter(partner=partner, hash_list__slug="minor")
    if revoke == "grant deleted":
        grant.delete()
    else:
        grant.update(explicit_confirmation=False)
    make_case(pdq("revoked"), minor=True)
    assert run_with_deadline(lambda: delivery_run(delivery_id=minor_delivery.pk)) == "done"
    assert deliveries_sweep() == 0
    assert receiver.indexes == [0]
    # The adult list, still granted, is pushed as before.
    make_case(pdq("adult after revocation"))
    assert receiver.indexes == [0, 0]
    assert Delivery.objects.get(hash_list__slug="adult").acked_position == 1
    # Granted again, the minor list resumes where it stopped (the sweep finds it behind).
    partner_grant(partner=partner, hash_list=minor_delivery.hash_list, explicit=True)
    assert deliveries_sweep() == 1
    assert receiver.indexes == [0, 0, 1]


def run_with_deadline(action, seconds: int = 10):
    """Run ``action``; fail (rather than hang the suite) if it has not returned in time.

    An alarm, not a thread: the action must see this test's open transaction.
    """

    def expired(signum, frame):
        raise AssertionError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        return action()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_push_entitlement_is_the_rule_partner_lists_applies(make_partner, receiver):
    # delivery_entitled applies partner_lists' rule from a Delivery row (and requires an
    # active partner): every combination of the four facts gives the same answer both ways.
    partner, _ = make_partner(("adult", "minor"), webhook_url=receiver.url)
    deliveries = {d.hash_list.slug: d for d in Delivery.objects.select_related("hash_list")}
    assert set(deliveries) == {"adult", "minor"}
    seen = set()
    for active, granted, explicit, requires_explicit in itertools.product([True, False], repeat=4):
        Partner.objects.filter(pk=partner.pk).update(active=active)
        for slug, delivery in deliveries.items():
            HashList.objects.filter(pk=delivery.hash_list_id).update(
                requires_explicit_grant=requires_explicit
            )
            ListGrant.objects.filter(partner=partner, hash_list_id=delivery.hash_list_id).delete()
            if granted:
                ListGrant.objects.create(
                    partner=partner, hash_list_id=delivery.hash_list_id,
                    explicit_confirmation=explicit,
                )  # fmt: skip
            partner.refresh_from_db()
            expected = active and partner_lists(partner=partner).filter(slug=slug).exists()
            got = Delivery.objects.filter(delivery_entitled(), pk=delivery.pk).exists()
            assert got == expected, (slug, active, granted, explicit, requires_explicit)
            seen.add(expected)
    assert seen == {True, False}


def test_a_post_ends_by_its_deadline_however_slowly_the_partner_answers():
    trickling = BadPartner("trickle", byte_every=0.1)
    with trickling.serve() as url:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            http_post_within(url, b"{}", {}, deadline_s=1, allow_private=True)
        assert time.monotonic() - started < 1.5
        # It kept sending bytes: a per-read timeout alone would never have fired.
        time.sleep(0.5)
    assert trickling.connections and trickling.connections[0][1] >= 5


def test_only_the_first_kibibytes_of_a_reply_are_read():
    flooding = BadPartner("flood", fail_next=1)
    with flooding.serve() as url:
        status, reply = http_post_within(url, b"{}", {}, deadline_s=5, allow_private=True)
        assert status == 500 and len(reply) == REPLY_READ_MAX
        status, reply = http_post_within(url, b"{}", {}, deadline_s=5, allow_private=True)
        assert (status, reply) == (200, b"")
        deadline = time.monotonic() + 5
        while len(flooding.connections) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    # All it managed to send is what the sockets' buffers hold.
    assert len(flooding.connections) == 2
    assert all(sent < 16 << 20 for _, sent in flooding.connections), flooding.connections
