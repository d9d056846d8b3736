"""The victims' web page: the journey at ``/`` and the status page at ``/status``.

The pages are shells: every file is hashed in the browser (``static/cases/``),
and the scripts talk only to the case API (``cases.api``). They are public and
built to leave no trace: no cookies (nothing here reads the session, a CSRF
token or a language cookie; the language is the URL prefix, ``/nl/``, ``/sv/``),
no referrer, nothing cached, and a Content-Security-Policy that lets a page
load only its own static files and talk only to this server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import wraps
from typing import Any

from csp.constants import NONE, SELF
from csp.decorators import csp
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import translate_url
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language, get_language_from_request

from cases import services
from cases.serializers import MAX_HASHES_PER_CASE
from hashbank.algorithms import PDQ_MIN_QUALITY
from webapi.errors import NotEligible

# blob: is for the previews of the person's own files (object URLs), which never leave the tab.
PUBLIC_PAGE_POLICY: dict[str, list[str]] = {
    "default-src": [NONE],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF, "blob:"],
    "media-src": [SELF, "blob:"],
    "connect-src": [SELF],
    "worker-src": [SELF],
    "form-action": [NONE],
    "base-uri": [NONE],
    "frame-ancestors": [NONE],
}

# The order the page asks the case API's eligibility questions in.
QUESTIONS = ("in_image", "intimate", "has_media", "under_18_at_capture")

# Image formats hashbank-hash reads but browsers can't decode: the page sends
# these to the command-line tool instead of failing on them.
NOT_IN_BROWSERS = ("psd", "tiff", "tif", "xcf", "tga", "miff", "dcm", "xpm", "pcx")

View = Callable[..., HttpResponseBase]


def public_page(view: View) -> View:
    """A page for the public: strict CSP, no referrer, never cached or kept in history."""

    @csp(PUBLIC_PAGE_POLICY)
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        # no-store also keeps a shown case number out of the back-forward cache.
        response["Cache-Control"] = "no-store"
        patch_vary_headers(response, ["Accept-Language"])  # the offer of another language
        return response

    return wrapped


def _page_context(request: HttpRequest) -> dict[str, Any]:
    current = get_language()
    # The address decides the language; a browser that asks for another one we
    # have is offered a link to it, in that language.
    preferred = get_language_from_request(request, check_path=False)
    return {
        "suggested": None
        if preferred == current
        else {"code": preferred, "url": translate_url(request.path, preferred)},
        "languages": [
            {
                "code": code,
                "name": name,
                "url": translate_url(request.path, code),
                "current": code == current,
            }
            for code, name in settings.LANGUAGES
        ],
        "quick_exit_url": settings.HASHBANK_QUICK_EXIT_URL,
    }


def eligibility_outcomes() -> dict[str, dict[str, Any]]:
    """What the case API answers to every combination of answers, in this language.

    Keys are the answers in ``QUESTIONS`` order, ``1`` for yes: ``"1110"`` is an
    adult's eligible case. The page looks its route up here, so the rule stays
    in ``services.eligibility_route`` and a refusal comes before any file is
    chosen, in the same words and with the same help the API would give.
    """
    outcomes: dict[str, dict[str, Any]] = {}
    for answers in itertools.product((True, False), repeat=len(QUESTIONS)):
        key = "".join("1" if answer else "0" for answer in answers)
        eligibility = services.Eligibility(**dict(zip(QUESTIONS, answers, strict=True)))
        try:
            outcomes[key] = {"list": services.eligibility_route(eligibility=eligibility)}
        except NotEligible as exc:
            outcomes[key] = {"message": exc.message, "help": exc.extra.get("help", [])}
    return outcomes


@public_page
def case_page(request: HttpRequest) -> HttpResponse:
    """The journey: questions, hashing on the device, review, the case number and PIN."""
    context = _page_context(request)
    context["page_config"] = {
        "outcomes": eligibility_outcomes(),
        "questions": QUESTIONS,
        "minQuality": PDQ_MIN_QUALITY,
        "maxFiles": MAX_HASHES_PER_CASE,
        "notInBrowsers": NOT_IN_BROWSERS,
        "bankUrl": request.build_absolute_uri("/"),
    }
    return render(request, "cases/index.html", context)


@public_page
def status_page(request: HttpRequest) -> HttpResponse:
    """Check a case and withdraw it, with the case number and PIN typed in."""
    return render(request, "cases/status.html", _page_context(request))
