"""A shorter way through DRF for the case API's JSON POSTs.

The case API is the bank's hot path, and its views need none of DRF's request
cycle: no authentication, permissions, throttles or content negotiation (JSON
in, JSON out). Building DRF's request, negotiating and rendering cost more
than the rest of a request besides the PIN hash and the database, so
``json_post_view`` serves a POST whose body is JSON by calling the view's
``post`` directly, with the parsed body as ``request.data``, and renders what
it returns or raises through the same exception handler and renderer DRF
uses. Anything else (another method, another content type, a body that does
not parse) goes to the DRF view unchanged, which answers as it always has. The
views stay DRF views, so the OpenAPI schema is generated from them as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils import json as drf_json
from rest_framework.views import APIView

_RENDERER = JSONRenderer()


def json_post_view(view_class: type[APIView]) -> Callable[..., HttpResponse]:
    """``view_class.as_view()``, with well-formed JSON POSTs served the short way."""
    drf_view = view_class.as_view()
    allow = ", ".join(view_class().allowed_methods)

    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST" or request.content_type != "application/json":
            return drf_view(request, *args, **kwargs)
        charset = request.content_params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8") or set(request.content_params) - {"charset"}:
            return drf_view(request, *args, **kwargs)
        try:
            # As DRF's JSONParser reads it: UTF-8, and no NaN or Infinity.
            data = drf_json.loads(request.body.decode("utf-8"))
        except (ValueError, RecursionError):
            return drf_view(request, *args, **kwargs)  # it answers malformed_json
        self = view_class()
        self.setup(request, *args, **kwargs)
        self.format_kwarg = None
        request.data = data  # type: ignore[attr-defined]
        try:
            response = self.post(request, *args, **kwargs)
        except Exception as exc:
            response = api_settings.EXCEPTION_HANDLER(exc, {"view": self, "request": request})
            if response is None:
                raise
        return _rendered(response, allow)

    view.cls = view_class  # type: ignore[attr-defined]  # what drf-spectacular reads
    view.initkwargs = {}  # type: ignore[attr-defined]
    view.view_class = view_class  # type: ignore[attr-defined]
    return csrf_exempt(view)


def _rendered(response: Response, allow: str) -> HttpResponse:
    """``response`` as DRF's JSON renderer and ``finalize_response`` would send it."""
    rendered = HttpResponse(
        _RENDERER.render(response.data),
        status=response.status_code,
        content_type=_RENDERER.media_type,
    )
    rendered["Allow"] = allow
    for header, value in response.items():
        if header.lower() != "content-type":
            rendered[header] = value
    return rendered
