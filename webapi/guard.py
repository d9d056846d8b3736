"""Guards every machine-facing path before a view runs.

The server never receives media, so multipart and form uploads are refused
outright (415) and bodies are capped (413), with the same JSON error shape
the views use.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from webapi.errors import error_body

API_PREFIXES = ("/api/v1/", "/exchange/", "/stopncii/")
# Partners post feedback in batches; victims' case bodies are tiny.
EXCHANGE_MAX_BODY_BYTES = 1024 * 1024


class ApiRequestGuard:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not path.startswith(API_PREFIXES):
            return self.get_response(request)
        limit = (
            settings.HASHBANK_MAX_BODY_BYTES
            if path.startswith("/api/")
            else EXCHANGE_MAX_BODY_BYTES
        )
        content_type = request.META.get("CONTENT_TYPE", "").lower()
        if content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
            return JsonResponse(
                error_body(
                    "media_not_accepted",
                    _(
                        "This service never receives images, videos or form uploads. "
                        "Hash your files on your own device and send only the hashes as JSON."
                    ),
                    None,
                ),
                status=415,
            )
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return _too_large(limit)
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                body = request.body
            except RequestDataTooBig:
                return _too_large(limit)
            if len(body) > limit:
                return _too_large(limit)
        return self.get_response(request)


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        error_body(
            "body_too_large",
            _("The request body is too large (at most %(limit)d KiB).") % {"limit": limit // 1024},
            None,
        ),
        status=413,
    )
