"""The history of when each partner could read each list, in log positions (``ListAccess``).

StopNCII's FetchHashes decides from it which withdrawals a partner may learn
(tests/exchange/feeds/test_stopncii.py); here, that every way of gaining or
losing access writes it.
"""

from __future__ import annotations

import pytest

from exchange.models import ListAccess, ListGrant, Partner
from exchange.services import partner_grant
from hashbank.models import HashList
from tests.conftest import pdq

pytestmark = pytest.mark.django_db


def periods(partner: Partner, slug: str = "adult") -> list[tuple[int, int | None]]:
    rows = ListAccess.objects.filter(partner=partner, hash_list__slug=slug).order_by("pk")
    return list(rows.values_list("start", "end"))


def log_size(slug: str = "adult") -> int:
    return HashList.objects.get(slug=slug).log_size


def test_a_grant_opens_access_at_the_current_log_size(make_case, make_partner):
    make_case(pdq("a"), pdq("b"))
    partner, _ = make_partner(("adult",))
    assert periods(partner) == [(2, None)]
    assert ListGrant.objects.get(partner=partner).granted_log_size == 2


def test_deleting_the_grant_closes_access_and_a_new_grant_opens_another(make_case, make_partner):
    partner, _ = make_partner(("adult",))
    make_case(pdq("a"))
    ListGrant.objects.get(partner=partner).delete()  # what the admin inline does
    make_case(pdq("b"), pdq("c"))
    grant = partner_grant(partner=partner, hash_list=HashList.objects.get(slug="adult"))
    assert periods(partner) == [(0, 1), (3, None)]
    grant.save()  # a stale instance: saving it changes nothing
    assert periods(partner) == [(0, 1), (3, None)]
    grant.refresh_from_db()
    assert grant.granted_log_size == 3


def test_a_minor_grant_counts_only_while_explicitly_confirmed(make_case, make_partner):
    partner, _ = make_partner(("adult",))
    minor = HashList.objects.get(slug="minor")
    grant = ListGrant.objects.create(partner=partner, hash_list=minor)
    assert periods(partner, "minor") == []
    assert grant.granted_log_size is None
    make_case(pdq("m1"), minor=True)
    grant.explicit_confirmation = True
    grant.save()
    make_case(pdq("m2"), minor=True)
    grant.explicit_confirmation = False
    grant.save()
    assert periods(partner, "minor") == [(1, 2)]
    grant.refresh_from_db()
    assert grant.granted_log_size is None
    assert periods(partner) == [(0, None)]  # the adult list is unaffected


def test_a_list_that_comes_to_need_an_explicit_grant_closes_unconfirmed_access(
    make_case, make_partner
):
    confirmed, _ = make_partner(("adult",))
    unconfirmed, _ = make_partner(("adult",))
    ListGrant.objects.filter(partner=unconfirmed).update(explicit_confirmation=False)
    make_case(pdq("a"))
    adult = HashList.objects.get(slug="adult")
    adult.requires_explicit_grant = True
    adult.save()
    assert periods(unconfirmed) == [(0, 1)]
    assert periods(confirmed) == [(0, None)]
    make_case(pdq("b"))  # an append saves the list row too, and changes nothing here
    assert periods(unconfirmed) == [(0, 1)]


def test_deactivating_a_partner_in_admin_closes_its_access(
    make_case, make_partner, client, django_user_model
):
    partner, _ = make_partner(("adult", "minor"))
    make_case(pdq("a"))
    admin = django_user_model.objects.create_superuser("op", "op@example.org", "long-password-123")
    client.force_login(admin)
    response = client.post(
        "/admin/exchange/partner/", {"action": "deactivate", "_selected_action": [partner.pk]}
    )
    assert response.status_code == 302
    assert periods(partner) == [(0, 1)] and periods(partner, "minor") == [(0, 0)]
    make_case(pdq("b"))
    partner.refresh_from_db()
    partner.active = True
    partner.save()
    assert periods(partner) == [(0, 1), (2, None)]


def test_a_partner_can_still_be_deleted(make_partner):
    partner, _ = make_partner(("adult",))
    partner.delete()
    assert not ListAccess.objects.exists()
