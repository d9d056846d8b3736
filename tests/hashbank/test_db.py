"""hashbank.db: the prepared-statement insert behaves as Model.save(force_insert=True)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from cases.models import Case
from hashbank import db
from hashbank.models import HashList

pytestmark = pytest.mark.django_db


def test_insert_stores_every_field_with_its_defaults_and_sets_the_primary_key():
    adult = HashList.objects.get(slug="adult")
    case = Case(number_digest="d" * 64, pin_hash="$argon2id$x", hash_list=adult)
    db.insert(case)
    assert case.pk is not None and not case._state.adding
    stored = Case.objects.get(pk=case.pk)
    assert (stored.number_digest, stored.pin_hash, stored.hash_list_id) == (
        "d" * 64,
        "$argon2id$x",
        adult.pk,
    )
    assert stored.state == Case.State.ACTIVE and stored.failed_pin_count == 0
    assert stored.created_at == case.created_at and stored.withdrawn_at is None
    # A saved object updates, as after save().
    case.state = Case.State.WITHDRAWN
    case.save(update_fields=["state"])
    assert Case.objects.get(pk=case.pk).state == Case.State.WITHDRAWN


def test_insert_raises_djangos_integrity_error_and_keeps_the_transaction_usable():
    adult = HashList.objects.get(slug="adult")
    db.insert(Case(number_digest="e" * 64, pin_hash="p", hash_list=adult))
    with pytest.raises(IntegrityError), transaction.atomic():
        db.insert(Case(number_digest="e" * 64, pin_hash="q", hash_list=adult))
    assert Case.objects.filter(number_digest="e" * 64).count() == 1


def test_select_one_finds_by_a_unique_field_or_gives_none():
    adult = HashList.objects.get(slug="adult")
    case = Case(number_digest="f" * 64, pin_hash="p", hash_list=adult)
    db.insert(case)
    found = db.select_one(Case, "number_digest", "f" * 64)
    assert found == case and not found._state.adding
    assert (found.pin_hash, found.hash_list_id) == ("p", adult.pk)
    assert found.created_at == case.created_at
    assert db.select_one(Case, "number_digest", "0" * 64) is None
