"""Signing keys: loaded from settings, rotated in two steps, never printed."""

from __future__ import annotations

import json
import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from hashbank import tlog
from hashbank.keyring import KeyringError, parse_keyring

pytestmark = pytest.mark.django_db


def test_generate_writes_an_owner_only_key_file_and_prints_only_public_keys(tmp_path):
    path = tmp_path / "signing.key"
    out = StringIO()
    call_command("signing_key_generate", "--file", str(path), stdout=out)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = parse_keyring(path.read_text())
    assert [k.status for k in keys] == ["active"]
    printed = json.loads(out.getvalue())
    seed = tlog.private_key_to_text(keys[0].private_key)
    assert seed not in out.getvalue()
    assert {v["list"] for v in printed["verifier_keys"]} >= {"adult", "minor"}
    with pytest.raises(CommandError):
        call_command("signing_key_generate", "--file", str(path), stdout=StringIO())


def test_rotation_adds_a_new_active_key_then_drops_the_retiring_one(tmp_path):
    path = tmp_path / "signing.key"
    call_command("signing_key_generate", "--file", str(path), stdout=StringIO())
    old = parse_keyring(path.read_text())[0]
    call_command("signing_key_rotate", "start", "--file", str(path), stdout=StringIO())
    during = parse_keyring(path.read_text())
    assert [k.status for k in during] == ["active", "retiring"]
    assert during[1].public_key_bytes == old.public_key_bytes
    with pytest.raises(CommandError):
        call_command("signing_key_rotate", "start", "--file", str(path), stdout=StringIO())
    call_command("signing_key_rotate", "finish", "--file", str(path), stdout=StringIO())
    after = parse_keyring(path.read_text())
    assert [k.public_key_bytes for k in after] == [during[0].public_key_bytes]
    with pytest.raises(CommandError):
        call_command("signing_key_rotate", "finish", "--file", str(path), stdout=StringIO())


def test_dry_run_changes_no_file(tmp_path):
    path = tmp_path / "signing.key"
    call_command("signing_key_generate", "--file", str(path), stdout=StringIO())
    before = path.read_bytes()
    call_command("signing_key_rotate", "start", "--file", str(path), "--dry-run", stdout=StringIO())
    assert path.read_bytes() == before


def test_during_a_rotation_checkpoints_carry_both_signatures(settings, partner_api, make_case):
    make_case({"algorithm": "md5", "value": "0" * 32})
    old_key, new_key = tlog.generate_private_key(), tlog.generate_private_key()
    settings.HASHBANK_SIGNING_KEYS = parse_keyring(
        f"active {tlog.private_key_to_text(new_key)}\nretiring {tlog.private_key_to_text(old_key)}"
    )
    keys = APIClient().get("/exchange/v1/keys").json()["keys"]
    adult = [k for k in keys if k["list"] == "adult"]
    assert [k["status"] for k in adult] == ["active", "retiring"]
    note = partner_api("adult").get("/exchange/v1/lists/adult/checkpoint").content.decode()
    for vkey in (adult[0]["vkey"], adult[1]["vkey"]):
        # A partner that pinned either key still verifies.
        assert tlog.open_note(note, [tlog.parse_vkey(vkey)]).text.startswith("hashbank.localhost")
    assert note.count("\u2014 ") == 2


@pytest.mark.parametrize(
    "text",
    ["", "retiring AAAA", "active notbase64!", "active a b", "maybe " + "A" * 43 + "="],
)
def test_malformed_key_text_is_refused(text):
    with pytest.raises(KeyringError):
        parse_keyring(text)


def test_two_active_keys_are_refused():
    a, b = (tlog.private_key_to_text(tlog.generate_private_key()) for _ in range(2))
    with pytest.raises(KeyringError, match="exactly one"):
        parse_keyring(f"active {a}; active {b}")
