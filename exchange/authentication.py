"""How partners prove who they are: a Bearer token (native API) or StopNCII keys."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from exchange.models import Credential, Partner
from exchange.services import partner_authenticate


def request_partner(request: Request) -> Partner:
    """The partner who made this request, on a view authenticated by a class below.

    DRF keeps what ``authenticate`` returned as ``request.user``, which the stubs type as a
    Django user; here it is a Partner, and ``IsAuthenticated`` makes sure there is one.
    """
    # Widened first: the stubs' User | AnonymousUser can't be narrowed to a Partner.
    user: object = request.user
    if not isinstance(user, Partner):
        # Only a view wired to another authentication class gets here: a programming error.
        raise TypeError(f"request.user is a {type(user).__name__}, not a Partner")
    return user


class PartnerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``; a missing or bad token is a 401."""

    def authenticate(self, request: Request) -> tuple[Partner, Credential] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.NotAuthenticated()
        found = partner_authenticate(secret=token.strip(), kinds=[Credential.Kind.BEARER])
        if found is None:
            raise exceptions.AuthenticationFailed()
        return found

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="hashbank"'


class StopNCIIKeyAuthentication(authentication.BaseAuthentication):
    """``Ocp-Apim-Subscription-Key`` names the partner; ``x-functions-key`` must be that
    partner's key for the endpoint being called (``function_kind`` on the view)."""

    def authenticate(self, request: Request) -> tuple[Partner, Credential] | None:
        subscription = request.META.get("HTTP_OCP_APIM_SUBSCRIPTION_KEY", "").strip()
        function_key = request.META.get("HTTP_X_FUNCTIONS_KEY", "").strip()
        if not subscription or not function_key:
            raise exceptions.NotAuthenticated()
        found = partner_authenticate(secret=subscription, kinds=[Credential.Kind.SUBSCRIPTION_KEY])
        view = request.parser_context.get("view") if request.parser_context else None
        kind = getattr(view, "function_kind", None)
        if found is None or kind is None:
            raise exceptions.AuthenticationFailed()
        partner, credential = found
        matched = partner_authenticate(secret=function_key, kinds=[kind])
        if matched is None or matched[0].pk != partner.pk:
            raise exceptions.AuthenticationFailed()
        return partner, credential

    def authenticate_header(self, request: Request) -> str:
        return 'ApiKey realm="hashbank"'


class PartnerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "exchange.authentication.PartnerTokenAuthentication"
    name = "partnerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": "Partner Bearer token"}


class StopNCIIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "exchange.authentication.StopNCIIKeyAuthentication"
    name = ["stopnciiSubscriptionKey", "stopnciiFunctionKey"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {"type": "apiKey", "in": "header", "name": "Ocp-Apim-Subscription-Key"},
            {"type": "apiKey", "in": "header", "name": "x-functions-key"},
        ]
