"""Operators' admin pages work and never show what could identify a case."""

from __future__ import annotations

import pytest

from tests.admin_forms import submit_change_form

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/hashbank/hashlist/",
        "/admin/hashbank/hash/",
        "/admin/cases/case/",
        "/admin/hashbank/hash/?published__exact=1&hash_list__id__exact=1",
        "/admin/cases/case/?state__exact=withdrawn",
    ],
)
def test_admin_lists_render(operator, make_case, url):
    make_case({"algorithm": "md5", "value": "0a21c8f85a55a9e276ffc2c53f6887c4"})
    assert operator.get(url).status_code == 200


def test_the_case_page_shows_no_number_digest_or_pin_hash(operator, make_case):
    created = make_case({"algorithm": "md5", "value": "0a21c8f85a55a9e276ffc2c53f6887c4"})
    page = operator.get(f"/admin/cases/case/{created.case.pk}/change/").content.decode()
    assert created.case.number_digest not in page
    assert created.case.pin_hash not in page
    assert "argon2" not in page


def test_hash_values_are_read_only(operator, make_case):
    make_case({"algorithm": "md5", "value": "0a21c8f85a55a9e276ffc2c53f6887c4"})
    from hashbank.models import Hash

    h = Hash.objects.get()
    url = f"/admin/hashbank/hash/{h.pk}/change/"
    page = operator.get(url).content.decode()
    assert "Case " in page  # its holds, by holder kind and id
    submit_change_form(operator, url, value="f" * 32)
    h.refresh_from_db()
    assert h.value == "0a21c8f85a55a9e276ffc2c53f6887c4"


def test_a_list_slug_is_read_only_once_made_and_can_be_chosen_for_a_new_list(operator):
    from hashbank.models import HashList

    adult = HashList.objects.get(slug="adult")
    page = operator.get(f"/admin/hashbank/hashlist/{adult.pk}/change/").content.decode()
    assert 'name="slug"' not in page and 'name="name"' in page
    submit_change_form(
        operator, f"/admin/hashbank/hashlist/{adult.pk}/change/", slug="renamed", name="Adults"
    )
    adult.refresh_from_db()
    assert adult.slug == "adult" and adult.name == "Adults"
    assert 'name="slug"' in operator.get("/admin/hashbank/hashlist/add/").content.decode()
