"""The framework's share of a case request: ``bench_cases.py --ceiling framework``.

A WSGI app with the project's settings and middleware whose two case views do
everything the case API must do besides the bank's own work: the request goes
through Django and DRF as every view's does, is rate limited by the case API's
own decorator on Django's Redis cache, is validated by the case API's own
serializers, hashes (or checks) the PIN with ``cases.pins`` and is answered
through the case API's own response serializers, with a body of the real shape
and size. Nothing is stored or read: no case, hash, hold, log entry or commit.

Against ``--ceiling`` (the PIN hash alone) it prices the framework the
redesign issue asks the case API to use; against the real server, what the
bank's own work costs under load.
"""

from __future__ import annotations

import functools
import os
import secrets
from typing import Any

from django.urls import path
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

_LIST = "adult"


@functools.cache
def _urlpatterns() -> list[Any]:
    """The two views, built once Django is set up: ``cases`` imports its models."""
    from cases import pins
    from cases.api import rate_limited
    from cases.serializers import (
        CaseCreatedSerializer,
        CaseCreateInputSerializer,
        CaseCredentialsSerializer,
        CaseStatusSerializer,
    )
    from config.health import healthz

    class Create(APIView):
        @rate_limited("HASHBANK_RATE_CASE_CREATE")
        def post(self, request: Request) -> Response:
            serializer = CaseCreateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            pin = pins.generate()
            pins.hash_pin(pin)
            body = {
                "case_number": secrets.token_hex(8),
                "pin": pin,
                "list": _LIST,
                "created_at": timezone.now(),
                "hashes": [
                    _hash(h.algorithm, h.value, h.quality)
                    for h in serializer.validated_data["hashes"]
                ],
                "message": "Your case is open. Write down your case number and PIN now.",
            }
            return Response(CaseCreatedSerializer(body).data, status=status.HTTP_201_CREATED)

    class Status(APIView):
        @rate_limited("HASHBANK_RATE_CASE_STATUS")
        def post(self, request: Request) -> Response:
            serializer = CaseCredentialsSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            pins.spend_equal_time(serializer.validated_data["pin"])
            counts = {"partners_received": 0, "partners_blocked": 0}
            body = {
                "list": _LIST,
                "state": "active",
                "created_at": timezone.now(),
                "withdrawn_at": None,
                "hashes": [{**_hash("pdq", "0" * 64, 90), **counts} for _ in range(20)],
            }
            return Response(CaseStatusSerializer(body).data)

    return [
        path("api/v1/cases", Create.as_view()),
        path("api/v1/cases/status", Status.as_view()),
        path("healthz", healthz),
    ]


def _hash(algorithm: str, value: str, quality: int | None) -> dict[str, object]:
    return {
        "algorithm": algorithm,
        "value": value,
        "quality": quality,
        "status": "active",
        "explanation": "",
    }


def __getattr__(name: str) -> Any:
    # This module is the URLconf: Django reads ``urlpatterns`` once it is set up.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


_handler: Any = None


def application(environ: dict[str, Any], start_response: Any) -> Any:
    """The WSGI app: the project's settings, with this module as the URLconf."""
    global _handler
    if _handler is None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django
        from django.conf import settings

        django.setup()
        settings.ROOT_URLCONF = __name__
        from django.core.handlers.wsgi import WSGIHandler

        _handler = WSGIHandler()
    return _handler(environ, start_response)
