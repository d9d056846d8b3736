"""The public pages' promises that need no browser: headers, no cookies, no inline code.

The journeys themselves are tested in a real browser (test_page_browser.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from cases.services import Eligibility, eligibility_route
from cases.views import NOT_IN_BROWSERS, QUESTIONS
from hashbank.algorithms import PDQ_MIN_QUALITY
from tests.conftest import case_body, pdq

PAGES = ["/", "/status", "/nl/", "/nl/status", "/sv/", "/sv/status"]


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize("path", PAGES)
def test_each_page_has_a_strict_policy_and_no_referrer(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["form-action"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", [*PAGES, "/jsi18n.js", "/nl/jsi18n.js"])
def test_the_public_pages_set_no_cookie(client: Client, path: str) -> None:
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="sv")
    assert response.status_code == 200
    assert response.cookies == {}
    assert "Set-Cookie" not in response


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_carry_no_inline_code_or_styles(client: Client, path: str) -> None:
    html = client.get(path).content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        # Scripts come from files; the only inline one is data the browser never runs.
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no event-handler attributes
    # Nothing from anywhere else: every script, style and image is this server's.
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        if url.startswith(("http://", "https://", "//")):
            assert re.search(r'<a [^>]*href="' + re.escape(url), html), url  # links only


@pytest.mark.parametrize(
    ("path", "lang", "title"),
    [
        ("/", "en", "Stop the sharing of your intimate images"),
        ("/nl/", "nl", "Stop het delen van je intieme beelden"),
        ("/sv/", "sv", "Stoppa spridningen av dina intima bilder"),
    ],
)
def test_the_address_decides_the_language(client: Client, path: str, lang: str, title: str) -> None:
    # The browser's Accept-Language does not override the address the person chose.
    html = client.get(path, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert f'<html lang="{lang}">' in html
    assert f"<title>{title}</title>" in html


def test_the_switcher_links_the_same_page_in_each_language(client: Client) -> None:
    html = client.get("/nl/status").content.decode()
    links = dict(re.findall(r'<a href="([^"]+)" lang="[a-z]+" hreflang="([a-z]+)"', html))
    assert links == {"/status": "en", "/nl/status": "nl", "/sv/status": "sv"}
    assert re.search(r'hreflang="nl" aria-current="page"', html)


def test_the_script_catalogue_is_translated(client: Client) -> None:
    assert "Vingerafdruk gemaakt" in client.get("/nl/jsi18n.js").content.decode()
    assert "Fingeravtryck klart" in client.get("/sv/jsi18n.js").content.decode()


def page_config(client: Client, path: str = "/") -> dict[str, Any]:
    html = client.get(path).content.decode()
    match = re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html)
    assert match
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def test_the_page_takes_its_limits_from_the_case_api(client: Client) -> None:
    config = page_config(client)
    assert config["minQuality"] == PDQ_MIN_QUALITY
    assert config["maxFiles"] == 20
    assert config["questions"] == list(QUESTIONS)
    assert set(config["notInBrowsers"]) == set(NOT_IN_BROWSERS)


def test_the_page_routes_every_answer_as_the_case_api_does(client: Client) -> None:
    outcomes = page_config(client)["outcomes"]
    assert len(outcomes) == 16
    for key, outcome in outcomes.items():
        answers = {name: bit == "1" for name, bit in zip(QUESTIONS, key, strict=True)}
        try:
            listed = eligibility_route(eligibility=Eligibility(**answers))
        except Exception as exc:
            assert outcome["message"] == exc.args[0]
        else:
            assert outcome == {"list": listed}


@pytest.mark.django_db
def test_a_refusal_on_the_page_reads_as_the_case_api_words_it(client: Client, api: Any) -> None:
    answers = {"in_image": False, "intimate": True, "has_media": True, "under_18_at_capture": False}
    body = {**case_body(pdq("page-refusal")), "eligibility": answers}
    refused = api.post("/api/v1/cases", body, format="json", HTTP_ACCEPT_LANGUAGE="nl").json()
    outcome = page_config(client, "/nl/")["outcomes"]["0110"]
    assert outcome == {"message": refused["message"], "help": refused["help"]}


def test_a_quick_exit_address_must_be_a_web_address(tmp_path: Any) -> None:
    from tests.config.test_settings import assert_refused_naming, production_env, run

    env = production_env(tmp_path, HASHBANK_QUICK_EXIT_URL="javascript:alert(1)")
    assert_refused_naming(run(env), "HASHBANK_QUICK_EXIT_URL")
