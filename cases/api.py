"""The victims' case API: thin views over ``cases.services``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cases import selectors, services
from cases.serializers import (
    CaseCreatedSerializer,
    CaseCreateInputSerializer,
    CaseCredentialsSerializer,
    CaseStatusSerializer,
)
from webapi.errors import ErrorSerializer
from webapi.rate_limits import ratelimit

_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `field` names it."),
    413: OpenApiResponse(ErrorSerializer, description="Body over 64 KiB."),
    415: OpenApiResponse(ErrorSerializer, description="Not JSON (media is never accepted)."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests from this address."),
}
_CREDENTIAL_ERRORS = {
    **_ERRORS,
    403: OpenApiResponse(
        ErrorSerializer,
        description="Unknown case, wrong PIN or paused case: always the same answer.",
    ),
}


def rate_limited(rate_setting: str) -> Any:
    """The case API's rate limit for a view's ``post``: per client address, at the rate
    the named setting holds when the request comes (``scripts/bench_cases_framework.py``
    applies it too)."""
    return method_decorator(
        ratelimit(
            key="ip",
            rate=lambda group, request: getattr(settings, rate_setting),
            method="POST",
            block=True,
        )
    )


class CaseCreateApi(APIView):
    @extend_schema(
        operation_id="case_create",
        request=CaseCreateInputSerializer,
        responses={201: CaseCreatedSerializer, 422: ErrorSerializer, **_ERRORS},
        summary="Create a case from hashes computed on your device",
    )
    @rate_limited("HASHBANK_RATE_CASE_CREATE")
    def post(self, request: Request) -> Response:
        serializer = CaseCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = services.case_create(
            eligibility=services.Eligibility(**data["eligibility"]),
            hashes=data["hashes"],
            pin=data.get("pin"),
            email=data.get("email"),
        )
        status_ = selectors.case_status(case=created.case, hashes=created.hashes, with_counts=False)
        body = {
            "case_number": created.case_number,
            "pin": created.pin,
            "list": status_.list,
            "created_at": status_.created_at,
            "hashes": status_.hashes,
            "message": _(
                "Your case is open. Write down your case number and PIN now: they are shown only "
                "this once, and nobody can recover them for you."
            ),
        }
        return Response(CaseCreatedSerializer(body).data, status=status.HTTP_201_CREATED)


class CaseStatusApi(APIView):
    @extend_schema(
        operation_id="case_status",
        request=CaseCredentialsSerializer,
        responses={200: CaseStatusSerializer, **_CREDENTIAL_ERRORS},
        summary="Check a case (credentials travel only in the body)",
    )
    @rate_limited("HASHBANK_RATE_CASE_STATUS")
    def post(self, request: Request) -> Response:
        serializer = CaseCredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = services.case_authenticate(**serializer.validated_data)
        return Response(CaseStatusSerializer(selectors.case_status(case=case)).data)


class CaseWithdrawApi(APIView):
    @extend_schema(
        operation_id="case_withdraw",
        request=CaseCredentialsSerializer,
        responses={200: CaseStatusSerializer, **_CREDENTIAL_ERRORS},
        summary="Withdraw a case: irreversible, and safe to repeat",
    )
    @rate_limited("HASHBANK_RATE_CASE_WITHDRAW")
    def post(self, request: Request) -> Response:
        serializer = CaseCredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = services.case_authenticate(**serializer.validated_data)
        case = services.case_withdraw(case=case)
        return Response(CaseStatusSerializer(selectors.case_status(case=case)).data)
