"""The journal: every decision stored, never changed or deleted (ORM or admin), exported
as JSON Lines."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models.deletion import ProtectedError

from reviewers import services
from reviewers.models import Decision, Dispute, JournalImmutable
from tests.conftest import pdq

pytestmark = pytest.mark.django_db


@pytest.fixture
def decision(make_case, reviewer_a, operator) -> Decision:
    from hashbank.models import Hash

    make_case(pdq("journal"))
    dispute = services.hash_flag(user=operator, hash=Hash.objects.get(), reason="looks odd")
    services.dispute_keep(user=reviewer_a, dispute=dispute, reason="it is fine")
    return Decision.objects.get(action="keep")


def test_a_stored_decision_cannot_be_saved_again(decision):
    decision.reason = "rewritten"
    with pytest.raises(JournalImmutable):
        decision.save()
    decision.refresh_from_db()
    assert decision.reason == "it is fine"


def test_a_decision_cannot_be_deleted(decision):
    with pytest.raises(JournalImmutable):
        decision.delete()
    with pytest.raises(JournalImmutable):
        Decision.objects.filter(pk=decision.pk).delete()
    with pytest.raises(JournalImmutable):
        Decision.objects.all().delete()
    assert Decision.objects.count() == 2


def test_the_queryset_refuses_updates(decision):
    with pytest.raises(JournalImmutable):
        Decision.objects.filter(pk=decision.pk).update(reason="rewritten")
    decision.reason = "rewritten"
    # bulk_update runs in an atomic block without a savepoint: give it one.
    with pytest.raises(JournalImmutable), transaction.atomic():
        Decision.objects.bulk_update([decision], ["reason"])
    assert Decision.objects.get(pk=decision.pk).reason == "it is fine"


def test_what_a_decision_names_cannot_be_deleted_under_it(decision):
    with pytest.raises(ProtectedError), transaction.atomic():
        Dispute.objects.filter(pk=decision.dispute_id).delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        decision.user.delete()


def test_admin_cannot_change_or_delete_a_decision(client, decision, staff):
    client.force_login(staff("root", None))
    url = f"/admin/reviewers/decision/{decision.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(url, {"reason": "rewritten"}).status_code == 403
    delete = f"/admin/reviewers/decision/{decision.pk}/delete/"
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get("/admin/reviewers/decision/add/").status_code == 403
    assert Decision.objects.get(pk=decision.pk).reason == "it is fine"


def test_the_command_exports_json_lines(decision, tmp_path):
    out = io.StringIO()
    call_command("journal_export", stdout=out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["action"], r["user"]) for r in records] == [("flag", "olga"), ("keep", "alice")]
    assert records[1]["reason"] == "it is fine"
    assert records[1]["signals"]["hash"]["value"] == pdq("journal")["value"]
    target = tmp_path / "journal.jsonl"
    call_command("journal_export", "--output", str(target), stderr=io.StringIO())
    assert target.read_text() == out.getvalue()


def test_admin_exports_the_selected_decisions(client, decision, auditor):
    client.force_login(auditor)
    response = client.post(
        "/admin/reviewers/decision/",
        {"action": "export_jsonl", "_selected_action": [decision.pk]},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    (line,) = response.content.decode().splitlines()
    assert json.loads(line)["action"] == "keep"
