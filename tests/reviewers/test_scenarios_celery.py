"""Issue 14's done-when scenarios, end to end on PostgreSQL with a real Celery worker, beat,
a private Redis and partners' webhook receivers.

1. Abuse: a benign photo's hash is submitted through the case API; two partners report
   it not blocked; reviewer A disables it and reviewer B confirms; the partners receive
   the removal by push and by pull; a partner that joins later never sees the value;
   the victim's status shows it.
2. Allowlist: near-duplicates of an allowlisted photo are held (nothing reaches the log
   or the partners), then one is released (published and pushed) and one disabled.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from exchange.models import Delivery
from exchange.push.services import partner_webhook_set
from exchange.services import partner_create
from hashbank.models import HashList
from reviewers.models import AllowlistEntry, Dispute
from reviewers.roles import REVIEWERS
from tests.celery_worker import LIVE_WORKER_MARKS, Beat, RedisServer, Worker, database_url, wait_for
from tests.conftest import ADULT
from tests.exchange.push.receiver import Receiver, serve
from tests.exchange.push.test_push_celery import publish_to, redis_server  # noqa: F401

pytestmark = LIVE_WORKER_MARKS

TESTDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata"
DEADLINE_S = 30


def photo(name: str) -> dict[str, Any]:
    """The PDQ hash of a test photo (a bridge), as hashbank-hash computed it on a device."""
    with (TESTDATA / "expected.csv").open() as f:
        for row in csv.DictReader(f):
            if row["path"] == f"pdq/bridge-mods/{name}":
                return {
                    "algorithm": "pdq",
                    "value": row["pdq_hex"],
                    "quality": int(row["pdq_quality"]),
                }
    raise LookupError(name)


class Partner:
    """A partner platform: pulls with its bearer token, receives pushes at its endpoint."""

    def __init__(self, name: str, servers: ExitStack) -> None:
        self.receiver = Receiver()
        url = servers.enter_context(serve(self.receiver))
        self.model, secrets = partner_create(name=name, lists=["adult"])
        self.receiver.secret = partner_webhook_set(partner=self.model, url=url)
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")

    def pull(self) -> tuple[bytes, list[dict[str, Any]]]:
        response: Any = self.api.get("/exchange/v1/lists/adult/entries?start=0&limit=1000")
        assert response.status_code == 200
        raw = (
            b"".join(response.streaming_content)
            if getattr(response, "streaming", False)
            else response.content
        )
        return raw, json.loads(raw)["entries"]

    def report(self, value: str, outcome: str) -> None:
        item = {"list": "adult", "algorithm": "pdq", "value": value, "outcome": outcome}
        response = self.api.post("/exchange/v1/feedback", {"items": [item]}, format="json")
        assert response.json()["results"] == [{"index": 0, "status": "ok"}], response.content

    def caught_up(self) -> bool:
        size = HashList.objects.get(slug="adult").log_size
        delivery = Delivery.objects.filter(partner=self.model).first()
        return (
            self.receiver.indexes == list(range(size))
            and delivery is not None
            and delivery.acked_position == size
        )


class Live:
    def __init__(self, worker: Worker, beat: Beat) -> None:
        self.worker, self.beat = worker, beat
        self.servers = ExitStack()
        self.partners: list[Partner] = []

    def partner(self, name: str) -> Partner:
        p = Partner(name, self.servers)
        self.partners.append(p)
        return p

    def wait_caught_up(self) -> None:
        wait_for(
            "every partner to receive every entry",
            lambda: all(p.caught_up() for p in self.partners),
            DEADLINE_S,
            lambda: "\n".join(
                [f"{p.model.name}: {p.receiver.indexes}" for p in self.partners]
                + [self.worker.tail()]
            ),
        )


@pytest.fixture
def live(redis_server: RedisServer, publish_to: None, tmp_path: Path) -> Iterator[Live]:  # noqa: F811
    env = dict(os.environ)
    env.update(
        DEBUG="1",
        HASHBANK_WEBHOOK_ALLOW_PRIVATE="1",  # the receivers listen on 127.0.0.1
        DATABASE_URL=database_url(connection.settings_dict),
        CELERY_BROKER_URL=redis_server.url,
        HASHBANK_VAR_DIR=str(django_settings.VAR_DIR),
        HASHBANK_WEBHOOK_ALLOW_HTTP="1",
        HASHBANK_WEBHOOK_BACKOFF_BASE_S="1",
        HASHBANK_WEBHOOK_BACKOFF_CAP_S="2",
        HASHBANK_SWEEP_INTERVAL_S="1",
        PYTHONUNBUFFERED="1",
    )
    worker = Worker(tmp_path / "worker.log", env)
    beat = Beat(tmp_path / "beat.log", env, tmp_path / "beat-schedule")
    system = Live(worker, beat)
    try:
        worker.start()
        beat.start()
        worker.wait_ready()
        yield system
    finally:
        worker.stop()
        beat.stop()
        system.servers.close()


def reviewer(name: str) -> Client:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=REVIEWERS))
    client = Client()
    client.force_login(user)
    return client


def decide(client: Client, dispute: Dispute, action: str, reason: str) -> None:
    response = client.post(
        f"/admin/reviewers/dispute/{dispute.pk}/decide/",
        {"action": action, "reason": reason},
        follow=True,
    )
    assert response.status_code == 200
    assert b"errornote" not in response.content and b'class="error"' not in response.content


def submit(api: APIClient, *hashes: dict[str, Any]) -> dict[str, Any]:
    response = api.post(
        "/api/v1/cases", {"eligibility": ADULT, "hashes": list(hashes)}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def status(api: APIClient, created: dict[str, Any]) -> dict[str, Any]:
    response = api.post(
        "/api/v1/cases/status",
        {"case_number": created["case_number"], "pin": created["pin"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["hashes"][0]


def test_the_abuse_scenario(live: Live) -> None:
    a, b = live.partner("Platform A"), live.partner("Platform B")
    victim = APIClient()
    benign = photo("aaa-orig.jpg")

    # 1. A benign photo's hash, submitted through the case API, reaches both partners.
    created = submit(victim, benign)
    live.wait_caught_up()
    assert [e["value"] for e in a.receiver.entries] == [benign["value"]]

    # 2. Both report that it is not what the list is for: a dispute opens; still published.
    a.report(benign["value"], "not_blocked")
    b.report(benign["value"], "not_blocked")
    dispute = Dispute.objects.get()
    assert dispute.reason == "feedback"
    assert status(victim, created)["status"] == "under_review"

    # 3. Reviewer A proposes disabling it; reviewer B confirms.
    alice, bob = reviewer("alice"), reviewer("bob")
    decide(alice, dispute, "take", "")
    decide(alice, dispute, "disable", "a bridge: no person in it")
    assert HashList.objects.get(slug="adult").log_size == 1, "a proposal publishes nothing"
    decide(bob, dispute, "confirm_disable", "agreed")

    # 4. The removal reaches both by push and by pull; the add is redacted.
    live.wait_caught_up()
    for partner in (a, b):
        pushed = partner.receiver.entries[1]
        assert (pushed["op"], pushed["removes"], pushed["reason"]) == ("remove", 0, "disabled")
        _, pulled = partner.pull()
        assert pulled[0] == {
            "index": 0,
            "op": "add",
            "redacted": True,
            "leaf_hash": pulled[0]["leaf_hash"],
        }
        assert (pulled[1]["op"], pulled[1]["reason"]) == ("remove", "disabled")
    #    A partner that joins now never sees the value, by push or by pull.
    late = live.partner("Platform Late")
    live.wait_caught_up()
    raw, _ = late.pull()
    assert benign["value"].encode() not in raw
    assert benign["value"] not in json.dumps(late.receiver.bodies)

    # 5. The victim's status shows it, with a kind explanation.
    shown = status(victim, created)
    assert shown["status"] == "disabled"
    assert "no longer shared" in shown["explanation"]


def test_the_allowlist_scenario(live: Live) -> None:
    a = live.partner("Platform A")
    operator = User.objects.create_superuser("olga")
    AllowlistEntry.objects.create(
        algorithm="pdq",
        value=photo("aaa-orig.jpg")["value"],
        description="a well-known bridge photo",
        added_by=operator,
    )
    victim = APIClient()
    other = submit(victim, photo("high-contrast.jpg"))  # near-duplicates: held
    own = submit(victim, photo("blur-a-lot.jpg"))
    assert own["hashes"][0]["status"] == "under_review"
    assert HashList.objects.get(slug="adult").log_size == 0
    held = {d.hash.value: d for d in Dispute.objects.select_related("hash")}
    assert {d.reason for d in held.values()} == {"allowlist"}

    alice, bob = reviewer("alice"), reviewer("bob")
    # Released: the victim's own photo after all. Published, and pushed.
    decide(alice, held[photo("blur-a-lot.jpg")["value"]], "keep", "the victim's own photo")
    live.wait_caught_up()
    assert [e["value"] for e in a.receiver.entries] == [photo("blur-a-lot.jpg")["value"]]
    assert status(victim, own)["status"] == "active"

    # Disabled: never published, so nothing reaches the log or the partner.
    dispute = held[photo("high-contrast.jpg")["value"]]
    decide(alice, dispute, "disable", "the allowlisted bridge")
    decide(bob, dispute, "confirm_disable", "agreed")
    assert HashList.objects.get(slug="adult").log_size == 1
    raw, _ = a.pull()
    assert photo("high-contrast.jpg")["value"].encode() not in raw
    assert status(victim, other)["status"] == "disabled"
