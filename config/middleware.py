"""How a request's language is chosen."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware
from django.urls import Resolver404, resolve
from django.utils import translation

from webapi.guard import API_PREFIXES

# The public pages (config/urls.py, under i18n_patterns): English at /, Dutch
# under /nl/, Swedish under /sv/.
PAGE_URL_NAMES = frozenset({"case-page", "case-status-page", "jsi18n"})


class AddressOrHeaderLocaleMiddleware(LocaleMiddleware):
    """The public pages take their language from the address; everything else from the request.

    The address decides on the pages so a person can switch language without a
    cookie. Django's own middleware would then also give every path without a
    prefix (the APIs, the admin) the default language; those keep choosing by
    Accept-Language, as they always have.
    """

    def process_request(self, request: HttpRequest) -> None:
        if translation.get_language_from_path(request.path_info) or _is_page(request.path_info):
            super().process_request(request)
            return
        translation.activate(translation.get_language_from_request(request, check_path=False))
        request.LANGUAGE_CODE = translation.get_language()


def _is_page(path: str) -> bool:
    """Whether an address without a language prefix is one of the English pages."""
    if path.startswith(API_PREFIXES):  # the machine-facing paths: no page, no second resolve
        return False
    # Resolved as English: the pattern's prefix follows the active language.
    with translation.override(settings.LANGUAGE_CODE):
        try:
            return resolve(path).url_name in PAGE_URL_NAMES
        except Resolver404:
            return False
