"""One error path for every API: domain exceptions and their JSON rendering.

Services raise ``DomainError`` subclasses; views never build error responses by
hand. Every error body is ``{"code", "message", "field"}``: ``code`` is stable
and machine-readable, ``message`` is for a person (translated), ``field`` names
the input at fault (dotted path, ``null`` when no single field is).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from django.utils.translation import gettext as _
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class DomainError(Exception):
    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        self.extra = extra or {}


class InvalidInput(DomainError):
    code = "invalid"


class NotEligible(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "not_eligible"


class InvalidCredentials(DomainError):
    """Unknown case, wrong PIN or locked case: deliberately indistinguishable."""

    status_code = status.HTTP_403_FORBIDDEN
    code = "invalid_credentials"


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Unauthenticated(DomainError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "unauthenticated"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


def error_body(code: str, message: str, field: str | None, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field, **extra}


# error_body's shape, for the OpenAPI schema of every API's error answers. (A
# docstring would become the schema's description.)
class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


def _first_validation_error(detail: Any, path: str = "") -> tuple[str | None, str, str]:
    """Walk DRF's nested error detail to the first (field path, code, message)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                sub = path or None
                field, code, message = _first_validation_error(value, path)
                return sub if field == path else field, code, message
            if isinstance(key, int) or str(key).isdigit():
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            return _first_validation_error(value, child)
    if isinstance(detail, list):
        for position, item in enumerate(detail):
            if isinstance(item, dict | list) and item:
                return _first_validation_error(item, f"{path}[{position}]")
            if isinstance(item, exceptions.ErrorDetail):
                return path or None, str(item.code), str(item)
        return path or None, "invalid", _("Invalid input.")
    if isinstance(detail, exceptions.ErrorDetail):
        return path or None, str(detail.code), str(detail)
    return path or None, "invalid", str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        return Response(
            error_body(exc.code, exc.message, exc.field, **exc.extra), status=exc.status_code
        )
    if isinstance(exc, Ratelimited):
        return Response(
            error_body(
                "rate_limited",
                _("Too many requests from this address. Please wait a while and try again."),
                None,
            ),
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": "600"},
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("body_too_large", _("The request body is too large."), None),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, exceptions.ValidationError):
        field, code, message = _first_validation_error(exc.detail)
        return Response(error_body(code, message, field), status=status.HTTP_400_BAD_REQUEST)
    # json raises RecursionError, not ValueError, on a body nested too deeply.
    if isinstance(exc, exceptions.ParseError | RecursionError):
        return Response(
            error_body("malformed_json", _("The request body is not valid JSON."), None),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response(
            error_body(
                "unsupported_media_type",
                _("Send the request as JSON (Content-Type: application/json)."),
                None,
            ),
            status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        )
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Response(
            error_body("method_not_allowed", _("This method is not allowed here."), None),
            status=status.HTTP_405_METHOD_NOT_ALLOWED,
            headers={"Allow": ", ".join(context["view"].allowed_methods)},
        )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return Response(
            error_body("unauthenticated", _("Missing or invalid credentials."), None),
            status=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer realm="hashbank"'},
        )
    if isinstance(exc, Http404 | exceptions.NotFound):
        return Response(error_body("not_found", _("Not found."), None), status=404)
    if isinstance(exc, PermissionDenied | exceptions.PermissionDenied):
        return Response(error_body("forbidden", _("Not allowed."), None), status=403)
    if isinstance(exc, exceptions.Throttled):
        wait = getattr(exc, "wait", None)  # set by DRF, missing from its stubs
        if wait:
            headers["Retry-After"] = str(int(wait))
        return Response(
            error_body("rate_limited", _("Too many requests. Please try again later."), None),
            status=429,
            headers=headers,
        )
    if isinstance(exc, exceptions.APIException):
        return Response(
            error_body(str(exc.get_codes()), str(exc.detail), None), status=exc.status_code
        )
    logger.exception("unhandled error in API view %s", type(context.get("view")).__name__)
    return Response(
        error_body("server_error", _("Something went wrong on our side. Please try again."), None),
        status=500,
    )
