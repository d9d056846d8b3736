"""Rotating HASHBANK_ENCRYPTION_KEY: old keys open during the rotation, the command re-seals all."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from exchange import secret_box
from exchange.federation.services import peer_token_set
from exchange.models import Partner, Peer
from exchange.push.services import partner_webhook_set, webhook_secrets
from exchange.services import SEALED_FIELDS, partner_create
from hashbank.models import HashList

pytestmark = pytest.mark.django_db

OLD = "old-encryption-key-" + "o" * 32
NEW = "new-encryption-key-" + "n" * 32
OLDER = "older-encryption-key-" + "p" * 32
PEER_TOKEN = "hbt_peer-token-for-this-bank"


def partner_with_two_webhook_secrets(name: str) -> tuple[Partner, list[str]]:
    partner, _ = partner_create(name=name, lists=["adult"])
    first = partner_webhook_set(partner=partner, url=f"https://{name}.example/hook")
    second = partner_webhook_set(partner=partner, url=f"https://{name}.example/hook")
    return Partner.objects.get(pk=partner.pk), [second, first]  # current, then previous


def peer_with_token() -> Peer:
    peer = Peer.objects.create(
        name="peer",
        base_url="https://peer.example",
        remote_list="adult",
        vkeys="",
        local_list=HashList.objects.get(slug="minor"),
    )
    peer_token_set(peer=peer, token=PEER_TOKEN)
    return Peer.objects.get(pk=peer.pk)


def stored() -> list[tuple[Any, ...]]:
    return [
        *Partner.objects.order_by("pk").values_list(
            "webhook_secret_sealed", "webhook_previous_sealed"
        ),
        *Peer.objects.order_by("pk").values_list("token_sealed"),
    ]


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("encryption_key_rotate", *args, stdout=out)
    return out.getvalue()


def secrets_readable(partner: Partner, expected: list[str]) -> None:
    assert webhook_secrets(Partner.objects.get(pk=partner.pk)) == expected
    peer = Peer.objects.get()
    assert secret_box.unseal(peer.token_sealed, purpose=f"peer:{peer.pk}") == PEER_TOKEN


def test_a_rotation_keeps_every_secret_readable_and_afterwards_needs_no_old_key(settings):
    settings.HASHBANK_ENCRYPTION_KEY = OLD
    partner, secrets = partner_with_two_webhook_secrets("rot")
    peer_with_token()

    # The new key is current; the old one still opens what it sealed.
    settings.HASHBANK_ENCRYPTION_KEY, settings.HASHBANK_ENCRYPTION_KEYS_OLD = NEW, [OLD]
    secrets_readable(partner, secrets)
    before = stored()

    assert "would re-seal 3 secrets" in rotate("--dry-run") and "3 were under an old key" in (
        rotate("--dry-run")
    )
    assert stored() == before

    assert "re-sealed 3 secrets" in rotate()
    assert all(new != old for new, old in zip(stored(), before, strict=True))

    settings.HASHBANK_ENCRYPTION_KEYS_OLD = []
    secrets_readable(partner, secrets)
    assert "0 were under an old key" in rotate("--dry-run")


def test_without_the_old_key_nothing_opens_and_nothing_is_rewritten(settings):
    settings.HASHBANK_ENCRYPTION_KEY = OLDER
    partner_with_two_webhook_secrets("older")
    settings.HASHBANK_ENCRYPTION_KEY = OLD
    partner_with_two_webhook_secrets("old")
    peer_with_token()
    # OLDER was forgotten: its partner's secrets can't be re-sealed, so none are.
    settings.HASHBANK_ENCRYPTION_KEY, settings.HASHBANK_ENCRYPTION_KEYS_OLD = NEW, [OLD]
    before = stored()

    for args in ([], ["--dry-run"]):
        with pytest.raises(CommandError, match=r"does not open.*Nothing was changed"):
            rotate(*args)
        assert stored() == before

    settings.HASHBANK_ENCRYPTION_KEYS_OLD = [OLD, OLDER]
    assert "re-sealed 5 secrets" in rotate()


def test_new_secrets_are_sealed_under_the_current_key_only(settings):
    settings.HASHBANK_ENCRYPTION_KEY, settings.HASHBANK_ENCRYPTION_KEYS_OLD = NEW, [OLD]
    token = secret_box.seal("s", purpose="p")

    settings.HASHBANK_ENCRYPTION_KEY, settings.HASHBANK_ENCRYPTION_KEYS_OLD = OLD, []
    with pytest.raises(ValueError, match="does not open"):
        secret_box.unseal(token, purpose="p")


def test_every_sealed_field_is_re_sealed_by_the_rotation():
    sealed = {
        (model, field.name)
        for model in apps.get_app_config("exchange").get_models()
        for field in model._meta.get_fields()
        if field.name.endswith("_sealed")
    }
    assert sealed == {(model, field) for model, field, _ in SEALED_FIELDS}
