"""Admin forms posted as an operator's browser would, checked to have been accepted.

A post the admin refuses answers 200 with the form and its errors, and changes nothing; a
test that then checks only the effect can't tell a refusal from a rule. So these helpers
first check that the admin took the form: it redirected back to the model's changelist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html.parser import HTMLParser
from typing import Any

from django.contrib.messages import get_messages
from django.db.models import Model
from django.http import HttpResponse
from django.test import Client


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


def changelist_url(form_url: str) -> str:
    """``/admin/<app>/<model>/`` for that model's add or change page."""
    match = re.fullmatch(r"(/admin/\w+/\w+/)(?:add/|[^/]+/change/)", form_url)
    assert match, f"not an admin add or change page: {form_url}"
    return match[1]


def assert_accepted(response: HttpResponse, changelist: str) -> list[str]:
    """The admin took the post: it redirected to ``changelist``. Returns the messages it left."""
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == changelist
    return [str(message) for message in get_messages(response.wsgi_request)]


def post_change_form(client: Client, url: str, **changes: Any) -> HttpResponse:
    """Post the add or change form at ``url`` as a browser would, with ``changes``."""
    parser = _FormFields()
    parser.feed(client.get(url).content.decode())
    data = {k: v for k, v in parser.data.items() if k != "csrfmiddlewaretoken"}
    return client.post(url, {**data, **changes})


def submit_change_form(client: Client, url: str, **changes: Any) -> list[str]:
    """``post_change_form``, failing unless the admin saved the form.

    Returns the messages it left (``… was changed successfully.``).
    """
    return assert_accepted(post_change_form(client, url, **changes), changelist_url(url))


def submit_action(
    client: Client, changelist: str, action: str, objects: Iterable[Model], **fields: Any
) -> list[str]:
    """Run an admin action on ``objects`` from ``changelist``, as its form would.

    For actions that finish by going back to the list (not those that answer with a page of
    their own); fails unless the admin did. Returns the messages the action left.
    """
    response = client.post(
        changelist,
        {"action": action, "_selected_action": [obj.pk for obj in objects], **fields},
    )
    return assert_accepted(response, changelist)
