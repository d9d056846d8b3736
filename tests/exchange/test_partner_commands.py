"""Operators' commands: create partners, rotate and revoke their credentials."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from exchange.models import Credential, ListGrant, Partner
from exchange.selectors import partner_lists
from exchange.services import credential_digest
from hashbank.models import HashList
from tests.admin_forms import post_change_form, submit_change_form

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


def test_admin_pages_for_partners_render(operator):
    create("Admin Visible", "--lists", "adult")
    partner = Partner.objects.get()
    assert operator.get("/admin/exchange/partner/").status_code == 200
    page = operator.get(f"/admin/exchange/partner/{partner.pk}/change/")
    assert page.status_code == 200
    response = operator.post(
        "/admin/exchange/partner/",
        {"action": "rotate_credentials", "_selected_action": [partner.pk]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert b"shown once" in response.content


def test_a_list_granted_in_the_partner_page_records_the_operator_who_granted_it(
    operator, make_partner
):
    partner, _ = make_partner(("adult",))
    minor = HashList.objects.get(slug="minor")
    submit_change_form(
        operator,
        f"/admin/exchange/partner/{partner.pk}/change/",
        **{
            "grants-TOTAL_FORMS": "2",
            "grants-1-hash_list": str(minor.pk),
            "grants-1-explicit_confirmation": "on",
        },
    )
    grant = ListGrant.objects.get(partner=partner, hash_list=minor)
    assert grant.effective and grant.granted_by is not None
    assert grant.granted_by.username == "operator"
    assert sorted(hl.slug for hl in partner_lists(partner=partner)) == ["adult", "minor"]


def test_the_partner_page_refuses_a_webhook_url_the_webhook_command_refuses(
    operator, make_partner, settings
):
    settings.HASHBANK_WEBHOOK_ALLOW_HTTP = False
    partner, _ = make_partner(("adult",))
    url = f"/admin/exchange/partner/{partner.pk}/change/"
    refused = post_change_form(operator, url, webhook_url="http://p.example/hook")
    assert refused.status_code == 200 and "must use https" in refused.content.decode()
    partner.refresh_from_db()
    assert partner.webhook_url == ""
    submit_change_form(operator, url, webhook_url="https://p.example/hook")
    partner.refresh_from_db()
    assert partner.webhook_url == "https://p.example/hook"
