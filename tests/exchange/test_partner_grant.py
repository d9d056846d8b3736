"""partner_grant checks a grant before it saves it: a refused grant leaves nothing behind."""

from __future__ import annotations

import pytest

from exchange.models import ListGrant, Partner
from exchange.services import partner_grant
from hashbank.models import HashList
from webapi.errors import InvalidInput

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner() -> Partner:
    return Partner.objects.create(name="Platform")


def test_a_grant_of_the_minor_list_without_explicit_confirmation_saves_nothing(partner):
    minor = HashList.objects.get(slug="minor")

    with pytest.raises(InvalidInput) as refused:
        partner_grant(partner=partner, hash_list=minor, explicit=False)

    assert refused.value.field == "explicit_confirmation"
    assert "explicit grant" in refused.value.message
    assert not ListGrant.objects.exists()


def test_an_explicit_grant_is_not_downgraded_by_a_refused_change(partner):
    minor = HashList.objects.get(slug="minor")
    partner_grant(partner=partner, hash_list=minor, explicit=True)

    with pytest.raises(InvalidInput):
        partner_grant(partner=partner, hash_list=minor, explicit=False)

    assert ListGrant.objects.get().explicit_confirmation is True


def test_a_valid_grant_is_saved_and_granting_again_updates_it(partner, django_user_model):
    adult = HashList.objects.get(slug="adult")
    operator = django_user_model.objects.create_user("op")

    partner_grant(partner=partner, hash_list=adult)
    grant = partner_grant(partner=partner, hash_list=adult, explicit=True, granted_by=operator)

    assert ListGrant.objects.get() == grant
    assert grant.explicit_confirmation and grant.granted_by == operator and grant.effective
