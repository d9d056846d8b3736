"""Operators' admin pages work and never show what could identify a case."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = User.objects.create_superuser("operator", "op@example.org", "a-long-operator-password")
    client.force_login(user)
    return client


class _FormFields(HTMLParser):
    """The fields a browser would submit from the page's change form, as they stand."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "checkbox", "file"):
            self.data[name] = a.get("value") or ""
        elif tag == "input" and name and a.get("type") == "checkbox" and "checked" in a:
            self.data[name] = a.get("value") or "on"
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def submit_change_form(client: Any, url: str, **changes: Any) -> Any:
    """Post the change form at ``url`` as a browser would, with ``changes``; must be accepted."""
    parser = _FormFields()
    parser.feed(client.get(url).content.decode())
    data = {k: v for k, v in parser.data.items() if k != "csrfmiddlewaretoken"}
    response = client.post(url, {**data, **changes})
    assert response.status_code == 302, response.content.decode()[:2000]  # saved, redirected
    return response


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
