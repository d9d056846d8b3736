"""A hash is published while at least one active hold keeps it and no reviewer disabled it."""

from __future__ import annotations

import pytest

from cases.services import case_withdraw
from hashbank.models import Hash, HashList, Hold, Holder, HolderKind
from hashbank.services import HashInput, hashes_hold, hashes_refresh_published, holds_release
from tests.conftest import md5, pdq

pytestmark = pytest.mark.django_db

PEER_1 = Holder(HolderKind.PEER, 1)


def test_both_lists_exist_from_the_first_migration():
    lists = {hl.slug: hl for hl in HashList.objects.all()}
    assert set(lists) >= {"adult", "minor"}
    assert lists["minor"].requires_explicit_grant
    assert not lists["adult"].requires_explicit_grant


def test_a_hash_is_one_record_whatever_number_of_cases_hold_it(make_case):
    for _ in range(3):
        make_case(pdq("same"))
    assert Hash.objects.count() == 1
    assert Hold.objects.filter(active=True).count() == 3


def test_it_stays_published_until_the_last_case_is_withdrawn(make_case):
    cases = [make_case(pdq("last")) for _ in range(3)]
    for created in cases[:-1]:
        case_withdraw(case=created.case)
        assert Hash.objects.get().published
    case_withdraw(case=cases[-1].case)
    assert not Hash.objects.get().published


def test_a_new_case_republishes_a_withdrawn_hash(make_case):
    first = make_case(pdq("again"))
    case_withdraw(case=first.case)
    assert not Hash.objects.get().published
    make_case(pdq("again"))
    assert Hash.objects.get().published


def test_a_disabled_hash_is_not_published_even_when_held(make_case):
    make_case(pdq("disabled"))
    h = Hash.objects.get()
    h.disabled = True
    h.save()
    changed = hashes_refresh_published(hash_list=h.hash_list, hash_ids=[h.pk])
    assert [c.pk for c in changed] == [h.pk]
    assert not Hash.objects.get().published


def test_hold_and_release_are_idempotent():
    adult = HashList.objects.get(slug="adult")
    item = HashInput("md5", md5("idem")["value"])
    hashes_hold(hash_list=adult, hashes=[item], holder=PEER_1)
    hashes_hold(hash_list=adult, hashes=[item], holder=PEER_1)
    assert Hold.objects.count() == 1
    assert holds_release(holder=PEER_1) == [Hash.objects.get().pk]
    assert holds_release(holder=PEER_1) == []
    assert not Hash.objects.get().published


def test_the_first_pdq_quality_seen_is_kept(make_case):
    make_case(pdq("q", quality=60))
    make_case(pdq("q", quality=95))
    assert Hash.objects.get().quality == 60
