"""Credentials and grants are cached per process for HASHBANK_AUTH_CACHE_S seconds."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from exchange.models import Credential, ListGrant
from exchange.services import credentials_revoke

pytestmark = pytest.mark.django_db


def test_a_revocation_takes_effect_within_the_cache_time(make_partner, settings):
    settings.HASHBANK_AUTH_CACHE_S = 1
    partner, secrets = make_partner(("adult",))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")
    assert client.get("/exchange/v1/lists/adult/checkpoint").status_code == 200
    credentials_revoke(partner=partner, kinds=[Credential.Kind.BEARER])
    ListGrant.objects.filter(partner=partner).delete()
    # Still cached: at most HASHBANK_AUTH_CACHE_S seconds of grace.
    assert client.get("/exchange/v1/lists/adult/checkpoint").status_code == 200
    time.sleep(1.1)
    assert client.get("/exchange/v1/lists/adult/checkpoint").status_code == 401


def test_failed_lookups_are_never_cached(make_partner, settings):
    settings.HASHBANK_AUTH_CACHE_S = 60
    partner, secrets = make_partner(("adult",))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer hbt_wrong")
    assert client.get("/exchange/v1/lists/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")
    assert client.get("/exchange/v1/lists/minor/checkpoint").status_code == 404
    from exchange.services import partner_grant
    from hashbank.models import HashList

    partner_grant(partner=partner, hash_list=HashList.objects.get(slug="minor"), explicit=True)
    assert client.get("/exchange/v1/lists/minor/checkpoint").status_code == 200


def test_the_checkpoint_is_cached_briefly_and_then_covers_new_entries(
    make_partner, make_case, settings
):
    from tests.conftest import pdq

    settings.HASHBANK_AUTH_CACHE_S = 5
    settings.HASHBANK_CHECKPOINT_CACHE_MS = 300
    _, secrets = make_partner(("adult",))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")
    first = client.get("/exchange/v1/lists/adult/checkpoint").content
    client.get("/exchange/v1/lists/adult/checkpoint")  # warms the cache
    make_case(pdq("cached"))
    assert client.get("/exchange/v1/lists/adult/checkpoint").content == first
    time.sleep(0.35)
    newer = client.get("/exchange/v1/lists/adult/checkpoint").content
    assert newer != first and b"\n1\n" in newer
    # A list the partner may not read is never answered from the cache.
    assert client.get("/exchange/v1/lists/minor/checkpoint").status_code == 404
