"""The partner pull API (DESIGN.md section 4): thin views over exchange selectors."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.serializers import ErrorSerializer
from exchange import selectors, services
from exchange.authentication import PartnerTokenAuthentication
from exchange.serializers import (
    ConsistencyQuerySerializer,
    ConsistencySerializer,
    EntriesQuerySerializer,
    EntriesSerializer,
    InclusionQuerySerializer,
    InclusionSerializer,
    KeysSerializer,
    ListsSerializer,
)
from hashbank.log import current_checkpoint, list_origin, list_verifiers
from hashbank.models import HashList

_AUTH_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Missing or bad credentials."),
    404: OpenApiResponse(ErrorSerializer, description="No such list, or not granted to you."),
}
_PARAM_ERRORS = {
    **_AUTH_ERRORS,
    400: OpenApiResponse(ErrorSerializer, description="Bad parameter; `field` names it."),
}


class PartnerApi(APIView):
    authentication_classes = [PartnerTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def query(self, serializer_class: type, request: Request) -> dict[str, Any]:
        serializer = serializer_class(data=request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class KeysApi(APIView):
    """Public: every list's verifier keys, so anyone can check checkpoints."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(operation_id="exchange_keys", responses={200: KeysSerializer}, auth=[])
    def get(self, request: Request) -> Response:
        keys = [
            {"list": slug, "origin": list_origin(slug), "vkey": vkey, "status": status}
            for slug in HashList.objects.values_list("slug", flat=True)
            for vkey, status in list_verifiers(slug)
        ]
        return Response({"keys": keys})


class ListsApi(PartnerApi):
    @extend_schema(operation_id="exchange_lists", responses={200: ListsSerializer, **_AUTH_ERRORS})
    def get(self, request: Request) -> Response:
        lists = [
            {"slug": hl.slug, "name": hl.name, "origin": list_origin(hl.slug), "size": hl.log_size}
            for hl in selectors.partner_lists(partner=request.user)
        ]
        return Response({"lists": lists})


class CheckpointApi(PartnerApi):
    @extend_schema(
        operation_id="exchange_checkpoint",
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="The newest signed checkpoint (C2SP signed note)."
            ),
            **_AUTH_ERRORS,
        },
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        hash_list = selectors.partner_list_get(partner=request.user, slug=slug)
        note = current_checkpoint(
            slug=hash_list.slug, size=hash_list.log_size, tree_edge=hash_list.tree_edge
        )
        return HttpResponse(note, content_type="text/plain; charset=utf-8")


class EntriesApi(PartnerApi):
    @extend_schema(
        operation_id="exchange_entries",
        parameters=[
            OpenApiParameter("start", int, description="First index (default 0)."),
            OpenApiParameter(
                "limit", int, description="At most this many (1-10000, default 1000)."
            ),
        ],
        responses={200: EntriesSerializer, **_PARAM_ERRORS},
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        hash_list = selectors.partner_list_get(partner=request.user, slug=slug)
        query = self.query(EntriesQuerySerializer, request)
        page = selectors.feed_page(hash_list=hash_list, start=query["start"], limit=query["limit"])
        services.partner_record_fetch(
            partner=request.user, hash_list=hash_list, position=query["start"] + len(page.entries)
        )
        # Rendered directly: pages are large and DRF's renderer is slow for them.
        body = json.dumps(
            {"checkpoint": page.checkpoint, "entries": page.entries, "next": page.next},
            separators=(",", ":"),
        )
        return HttpResponse(body, content_type="application/json")


class ConsistencyProofApi(PartnerApi):
    @extend_schema(
        operation_id="exchange_consistency_proof",
        parameters=[
            OpenApiParameter("old", int, required=True, description="The smaller tree size."),
            OpenApiParameter("new", int, description="The larger size (default: newest)."),
        ],
        responses={200: ConsistencySerializer, **_PARAM_ERRORS},
    )
    def get(self, request: Request, slug: str) -> Response:
        hash_list = selectors.partner_list_get(partner=request.user, slug=slug)
        query = self.query(ConsistencyQuerySerializer, request)
        return Response(
            selectors.consistency_proof(hash_list=hash_list, old=query["old"], new=query.get("new"))
        )


class InclusionProofApi(PartnerApi):
    @extend_schema(
        operation_id="exchange_inclusion_proof",
        parameters=[
            OpenApiParameter("index", int, required=True, description="The entry's index."),
            OpenApiParameter("size", int, description="Tree size (default: newest)."),
        ],
        responses={200: InclusionSerializer, **_PARAM_ERRORS},
    )
    def get(self, request: Request, slug: str) -> Response:
        hash_list = selectors.partner_list_get(partner=request.user, slug=slug)
        query = self.query(InclusionQuerySerializer, request)
        return Response(
            selectors.inclusion_proof(
                hash_list=hash_list, index=query["index"], size=query.get("size")
            )
        )
