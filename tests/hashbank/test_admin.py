"""Operators' admin pages work and never show what could identify a case."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from tests.admin_forms import submit_change_form

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("admin:hashbank_hashlist_changelist", ""),
        ("admin:hashbank_hash_changelist", ""),
        ("admin:cases_case_changelist", ""),
        ("admin:hashbank_hash_changelist", "?published__exact=1&hash_list__id__exact=1"),
        ("admin:cases_case_changelist", "?state__exact=withdrawn"),
    ],
)
def test_admin_lists_render(operator, make_case, name, query):
    make_case({"algorithm": "md5", "value": "0a21c8f85a55a9e276ffc2c53f6887c4"})
    assert operator.get(reverse(name) + query).status_code == 200


def test_the_case_page_shows_no_number_digest_or_pin_hash(operator, make_case):
    created = make_case({"algorithm": "md5", "value": "0a21c8f85a55a9e276ffc2c53f6887c4"})
    page = operator.get(reverse("admin:cases_case_change", args=[created.case.pk])).content.decode()
    assert created.case.number_digest not in page
    assert created.case.pin_hash not in page
    assert "argon2" not in page


def test_hash_values_are_read_only(operator, make_case):
    make_case({"algorithm": "md5", "value": "0a21c8f85a55a9e276ffc2c53f6887c4"})
    from hashbank.models import Hash

    h = Hash.objects.get()
    url = reverse("admin:hashbank_hash_change", args=[h.pk])
    page = operator.get(url).content.decode()
    assert "Case " in page  # its holds, by holder kind and id
    submit_change_form(operator, url, value="f" * 32)
    h.refresh_from_db()
    assert h.value == "0a21c8f85a55a9e276ffc2c53f6887c4"


def test_a_list_slug_is_read_only_once_made_and_can_be_chosen_for_a_new_list(operator):
    from hashbank.models import HashList

    adult = HashList.objects.get(slug="adult")
    url = reverse("admin:hashbank_hashlist_change", args=[adult.pk])
    page = operator.get(url).content.decode()
    assert 'name="slug"' not in page and 'name="name"' in page
    submit_change_form(operator, url, slug="renamed", name="Adults")
    adult.refresh_from_db()
    assert adult.slug == "adult" and adult.name == "Adults"
    add_page = operator.get(reverse("admin:hashbank_hashlist_add")).content.decode()
    assert 'name="slug"' in add_page


# --- Hash values only for roles that need them (issue 13, finding 9) ---

VALUE = "0a21c8f85a55a9e276ffc2c53f6887c4"


def staff_client(client, *codenames: str):
    user = User.objects.create_user(
        "staff", "s@example.org", "a-long-staff-password", is_staff=True
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_hash", *codenames]))
    client.force_login(user)
    return client


def hash_pages(client):
    from hashbank.models import Hash

    h = Hash.objects.get(value=VALUE)
    urls = [
        reverse("admin:hashbank_hash_changelist"),
        reverse("admin:hashbank_hash_change", args=[h.pk]),
        reverse("admin:hashbank_hash_history", args=[h.pk]),
    ]
    pages = [client.get(url) for url in urls]
    assert all(page.status_code == 200 for page in pages), [p.status_code for p in pages]
    return "\n".join(page.content.decode() for page in pages)


def test_staff_without_the_permission_see_no_part_of_a_hash_value(client, make_case):
    make_case({"algorithm": "md5", "value": VALUE})

    pages = hash_pages(staff_client(client))

    assert VALUE[:6] not in pages
    assert "hidden" in pages
    assert 'name="q"' not in pages  # no search by value: it would confirm a guessed file


def test_staff_with_view_hash_value_and_superusers_see_values_and_can_search_them(
    client, make_case, operator
):
    make_case({"algorithm": "md5", "value": VALUE})
    make_case({"algorithm": "md5", "value": "f" * 32})

    for pages in (hash_pages(operator), hash_pages(staff_client(client, "view_hash_value"))):
        assert VALUE in pages
        assert 'name="q"' in pages
    found = client.get(reverse("admin:hashbank_hash_changelist") + f"?q={VALUE}")
    assert "1 result" in found.content.decode()


def test_the_permission_is_hashbank_view_hash_value(db):
    permission = Permission.objects.get(codename="view_hash_value")
    assert f"{permission.content_type.app_label}.{permission.codename}" == (
        "hashbank.view_hash_value"
    )
