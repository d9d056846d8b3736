"""Operators' commands: create partners, rotate and revoke their credentials."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from exchange.models import Credential, Partner
from exchange.services import credential_digest

pytestmark = pytest.mark.django_db


def create(*args: str) -> dict:
    out = StringIO()
    call_command("partner_create", *args, stdout=out)
    return json.loads(out.getvalue())


def test_partner_create_prints_every_credential_once_and_stores_only_hashes():
    printed = create(
        "Example Platform", "--lists", "adult,minor", "--webhook", "https://p.example/hook"
    )
    secrets = printed["credentials"]
    assert set(secrets) == {
        "bearer",
        "subscription_key",
        "fetch_function_key",
        "feedback_function_key",
        "webhook_secret",
    }
    assert secrets["webhook_secret"].startswith("whsec_")
    partner = Partner.objects.get(name="Example Platform")
    assert partner.webhook_url == "https://p.example/hook"
    assert sorted(g.hash_list.slug for g in partner.grants.all() if g.effective) == [
        "adult",
        "minor",
    ]
    stored = " ".join(str(v) for row in Credential.objects.values() for v in row.values())
    stored += " ".join(str(v) for v in Partner.objects.values().get().values())
    for kind, secret in secrets.items():
        assert secret not in stored
        if kind != "webhook_secret":  # sealed, not hashed: the bank signs with it
            assert Credential.objects.filter(digest=credential_digest(secret)).exists()
    assert printed["verifier_keys"]["adult"][0]["vkey"].startswith(
        "hashbank.localhost/lists/adult+"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")
    assert client.get("/exchange/v1/lists/minor/checkpoint").status_code == 200


def test_partner_create_refuses_unknown_lists_and_duplicate_names():
    with pytest.raises(CommandError, match="unknown list"):
        create("P", "--lists", "adult,teen")
    create("P", "--lists", "adult")
    with pytest.raises(CommandError, match="exists"):
        create("P", "--lists", "adult")
    assert Partner.objects.count() == 1


def test_partner_create_dry_run_creates_nothing():
    printed = create("Dry", "--lists", "adult", "--dry-run")
    assert printed["credentials"] == {}
    assert not Partner.objects.exists() and not Credential.objects.exists()


def test_rotate_revokes_old_credentials_and_prints_new_ones():
    old = create("Rot", "--lists", "adult")["credentials"]
    out = StringIO()
    call_command("partner_credentials", "rotate", "Rot", "--kinds", "bearer", stdout=out)
    new = json.loads(out.getvalue())["credentials"]["bearer"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {old['bearer']}")
    assert client.get("/exchange/v1/lists/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new}")
    assert client.get("/exchange/v1/lists/").status_code == 200


def test_revoke_stops_every_credential():
    secrets = create("Rev", "--lists", "adult")["credentials"]
    call_command("partner_credentials", "revoke", "Rev", stdout=StringIO())
    assert not Credential.objects.filter(revoked_at__isnull=True).exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")
    assert client.get("/exchange/v1/lists/").status_code == 401


def test_credentials_command_refuses_unknown_partner_and_kind():
    create("Known", "--lists", "adult")
    with pytest.raises(CommandError):
        call_command("partner_credentials", "rotate", "Unknown", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command(
            "partner_credentials", "rotate", "Known", "--kinds", "password", stdout=StringIO()
        )


def test_admin_pages_for_partners_render(client, django_user_model):
    create("Admin Visible", "--lists", "adult")
    admin = django_user_model.objects.create_superuser("op", "op@example.org", "long-password-123")
    client.force_login(admin)
    partner = Partner.objects.get()
    assert client.get(reverse("admin:exchange_partner_changelist")).status_code == 200
    page = client.get(reverse("admin:exchange_partner_change", args=[partner.pk]))
    assert page.status_code == 200
    response = client.post(
        reverse("admin:exchange_partner_changelist"),
        {"action": "rotate_credentials", "_selected_action": [partner.pk]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert b"shown once" in response.content
