"""Reviewer work in Django admin: the queue, a dispute's page, decisions by button, flagging
and the allowlist (one entry, a file, or the allowlist_load command)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from hashbank.models import Hash
from reviewers.models import AllowlistEntry, Decision, Dispute
from tests.conftest import md5, pdq
from tests.reviewers.conftest import flip

pytestmark = pytest.mark.django_db

QUEUE = "/admin/reviewers/dispute/"


@pytest.fixture
def disputes(make_case, report) -> list[Dispute]:
    make_case(pdq("old"), pdq("new"))
    near = {"algorithm": "pdq", "value": flip(pdq("old")["value"], 7), "quality": 80}
    make_case(near)
    for value in ("old", "new"):
        report(pdq(value), "not_blocked", tags=("not nudity",))
        report(pdq(value), "not_blocked")
    report(pdq("old"), "blocked")
    old, new = Dispute.objects.order_by("pk")
    Dispute.objects.filter(pk=old.pk).update(opened_at=timezone.now() - timedelta(days=10))
    return [old, new]


def test_the_queue_is_oldest_first_and_filters(client, reviewer_a, disputes):
    old, new = disputes
    client.force_login(reviewer_a)
    page = client.get(QUEUE).content.decode()
    assert page.index(f"/{old.pk}/change/") < page.index(f"/{new.pk}/change/")
    assert f"/{new.pk}/change/" not in client.get(QUEUE + "?age=7d").content.decode()
    assert f"/{old.pk}/change/" in client.get(QUEUE + "?reason__exact=feedback").content.decode()
    assert f"/{old.pk}/change/" not in client.get(QUEUE + "?reason__exact=flag").content.decode()
    # Take the old one (a list action); then "assigned to me" shows only it.
    client.post(QUEUE, {"action": "take", "_selected_action": [old.pk]})
    mine = client.get(QUEUE + "?assignee=me").content.decode()
    assert f"/{old.pk}/change/" in mine and f"/{new.pk}/change/" not in mine
    unassigned = client.get(QUEUE + "?assignee=none").content.decode()
    assert f"/{new.pk}/change/" in unassigned and f"/{old.pk}/change/" not in unassigned
    listed = client.get(QUEUE + "?hash__hash_list__id__exact=1").status_code
    assert listed == 200


def test_the_dispute_page_shows_the_signals(client, reviewer_a, disputes):
    old, _ = disputes
    client.force_login(reviewer_a)
    page = client.get(f"{QUEUE}{old.pk}/change/").content.decode()
    assert pdq("old")["value"] in page
    assert 'id="holders">1<' in page  # a count, never who
    assert "case" not in page.split('id="review"')[1].lower().replace("case-", "")
    for name in old.detail["not_blocked_by"]:
        assert name in page  # partners are named for reviewers
    assert "not nudity" in page  # their tags
    assert "blocked: 1" in page and "not_blocked: 2" in page
    near = flip(pdq("old")["value"], 7)
    section = page.split('id="near-duplicates"')[1]
    assert near in section and ">7<" in section
    history = page.split('id="history"')[1]
    assert "#0 add" in history and "opened: feedback" in history


def test_auditors_see_the_dispute_but_no_hash_value(client, auditor, operator, disputes):
    """A value lets whoever holds a file confirm it was submitted: auditors check decisions,
    not files, so they lack hashbank.view_hash_value; operators and reviewers have it."""
    old, _ = disputes
    near = flip(pdq("old")["value"], 7)
    client.force_login(auditor)
    page = client.get(f"{QUEUE}{old.pk}/change/").content.decode()
    assert 'id="holders">1<' in page  # the rest of the signals
    assert pdq("old")["value"] not in page and near not in page
    assert pdq("old")["value"][:16] not in client.get(QUEUE).content.decode()
    client.force_login(operator)
    assert pdq("old")["value"] in client.get(f"{QUEUE}{old.pk}/change/").content.decode()


def test_decisions_by_button_with_four_eyes(client, reviewer_a, reviewer_b, disputes):
    old, _ = disputes
    url = f"{QUEUE}{old.pk}/decide/"
    client.force_login(reviewer_a)
    client.post(url, {"action": "take"})
    client.post(url, {"action": "disable", "reason": "a cat picture"})
    page = client.get(f"{QUEUE}{old.pk}/change/").content.decode()
    assert 'value="confirm_disable"' not in page  # not for the proposer
    client.post(url, {"action": "confirm_disable", "reason": "me again"})
    assert not Hash.objects.get(value=pdq("old")["value"]).disabled
    client.force_login(reviewer_b)
    page = client.get(f"{QUEUE}{old.pk}/change/").content.decode()
    assert 'value="confirm_disable"' in page
    response = client.post(url, {"action": "confirm_disable", "reason": "agreed"}, follow=True)
    assert b"Disabled" in response.content
    assert Hash.objects.get(value=pdq("old")["value"]).disabled
    assert list(Decision.objects.values_list("action", "username")) == [
        ("take", "alice"),
        ("disable", "alice"),
        ("confirm_disable", "bob"),
    ]
    # A missing reason is refused with a message; nothing is journaled.
    response = client.post(url, {"action": "reenable", "reason": ""}, follow=True)
    assert b"Give a reason" in response.content
    assert Decision.objects.count() == 3


def test_an_escalated_dispute_shows_its_buttons_to_operators_only(
    client, reviewer_a, operator, disputes
):
    old, _ = disputes
    url = f"{QUEUE}{old.pk}/decide/"
    client.force_login(reviewer_a)
    client.post(url, {"action": "escalate", "reason": "not sure"})
    page = client.get(f"{QUEUE}{old.pk}/change/").content.decode()
    assert 'id="decide"' not in page  # neither take nor decide
    client.force_login(operator)
    page = client.get(f"{QUEUE}{old.pk}/change/").content.decode()
    assert 'value="take"' in page and 'value="keep"' in page and 'value="disable"' in page
    response = client.post(url, {"action": "keep", "reason": "operator: fine"}, follow=True)
    assert b"Kept" in response.content
    old.refresh_from_db()
    assert old.state == "closed" and old.outcome == "kept"


def test_an_operator_flags_a_hash_in_admin(client, operator, make_case):
    make_case(md5("clip"))
    client.force_login(operator)
    assert client.get(QUEUE + "add/").status_code == 200
    response = client.post(
        QUEUE + "add/",
        {"hash_list": 1, "algorithm": "md5", "value": md5("nope")["value"], "reason": "r"},
    )
    assert b"No such hash in this list" in response.content
    response = client.post(
        QUEUE + "add/",
        {"hash_list": 1, "algorithm": "md5", "value": md5("clip")["value"], "reason": "odd"},
    )
    dispute = Dispute.objects.get()
    assert response.status_code == 302 and dispute.reason == "flag"


def test_operators_add_allowlist_entries_in_admin(client, operator):
    client.force_login(operator)
    value = pdq("a painting")["value"]
    response = client.post(
        "/admin/reviewers/allowlistentry/add/",
        {"algorithm": "pdq", "value": value.upper(), "description": "painting"},
    )
    assert response.status_code == 302
    entry = AllowlistEntry.objects.get()
    assert entry.value == value and entry.added_by == operator
    response = client.post(
        "/admin/reviewers/allowlistentry/add/", {"algorithm": "pdq", "value": "abc"}
    )
    assert b"exactly 64 hexadecimal" in response.content
    upload = SimpleUploadedFile(
        "allow.txt",
        f"# known images\n{pdq('b')['value']} a meme\nmd5 {md5('c')['value']}\n".encode(),
    )
    response = client.post("/admin/reviewers/allowlistentry/load/", {"file": upload}, follow=True)
    assert b"Added 2 entries" in response.content
    assert AllowlistEntry.objects.count() == 3


def test_the_command_loads_a_file_all_or_nothing(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(
        f"# widely shared\n\n{pdq('x')['value']} the moon landing\npdq {pdq('y')['value']}\n"
        f"{md5('z')['value']}\n"
    )
    out = io.StringIO()
    call_command("allowlist_load", str(good), "--dry-run", stdout=out)
    assert "would add 3" in out.getvalue() and not AllowlistEntry.objects.exists()
    call_command("allowlist_load", str(good), stdout=out)
    assert AllowlistEntry.objects.count() == 3
    assert AllowlistEntry.objects.get(value=pdq("x")["value"]).description == "the moon landing"
    call_command("allowlist_load", str(good), stdout=(out := io.StringIO()))
    assert "added 0; 3 already" in out.getvalue()
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{pdq('w')['value']}\nnot-a-hash\n")
    with pytest.raises(CommandError, match="line 2"):
        call_command("allowlist_load", str(bad))
    assert AllowlistEntry.objects.count() == 3
    with pytest.raises(CommandError, match="missing"):
        call_command("allowlist_load", str(tmp_path / "missing.txt"))
