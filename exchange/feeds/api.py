"""The partner pull API (docs/ARCHITECTURE.md, "Partner pull API"): thin views over selectors."""

from __future__ import annotations

import builtins
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.authentication import PartnerTokenAuthentication, request_partner
from exchange.feeds import selectors, services
from exchange.feeds.serializers import (
    ConsistencyQuerySerializer,
    ConsistencySerializer,
    EntriesQuerySerializer,
    EntriesSerializer,
    InclusionQuerySerializer,
    InclusionSerializer,
    KeysSerializer,
    ListsSerializer,
)
from exchange.models import FeedbackEvent, FeedbackOutcome
from exchange.selectors import partner_lists
from hashbank.log import list_origin, list_verifiers
from hashbank.models import HashList
from webapi.errors import ErrorSerializer
from webapi.fields import ClosedSerializer, StrictCharField

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
            for hl in partner_lists(partner=request_partner(request))
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
        note = selectors.partner_checkpoint(partner=request_partner(request), slug=slug)
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
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        partner = request_partner(request)
        hash_list = selectors.partner_list_get(partner=partner, slug=slug)
        query = self.query(EntriesQuerySerializer, request)
        page = selectors.feed_page(hash_list=hash_list, start=query["start"], limit=query["limit"])
        services.partner_record_fetch(
            partner=partner, hash_list=hash_list, position=query["start"] + len(page.entries)
        )
        # Rendered directly and streamed in pieces: pages are large, DRF's renderer
        # is slow for them, and one big string per page fragments the worker's heap.
        return StreamingHttpResponse(page.json_chunks(), content_type="application/json")


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
        hash_list = selectors.partner_list_get(partner=request_partner(request), slug=slug)
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
        hash_list = selectors.partner_list_get(partner=request_partner(request), slug=slug)
        query = self.query(InclusionQuerySerializer, request)
        return Response(
            selectors.inclusion_proof(
                hash_list=hash_list, index=query["index"], size=query.get("size")
            )
        )


# --- Feedback (docs/ARCHITECTURE.md, "Feedback") -------------------------------------------------
# The serializers sit with their one view; they could move to serializers.py.

_NATIVE_OUTCOMES = [
    FeedbackOutcome.PENDING_REVIEW,
    FeedbackOutcome.BLOCKED,
    FeedbackOutcome.NOT_BLOCKED,
]


class FeedbackItemInputSerializer(ClosedSerializer):
    list = StrictCharField(max_length=32, help_text="The list's slug, e.g. `adult`.")
    algorithm = StrictCharField(max_length=16, help_text="`pdq` or `md5`.")
    value = StrictCharField(max_length=512, trim_whitespace=False, help_text="Hex; any case.")
    outcome = StrictCharField(
        max_length=16,
        help_text="`pending_review` (matched, not yet reviewed), `blocked` or `not_blocked`.",
    )
    tags = serializers.ListField(
        child=StrictCharField(trim_whitespace=False, allow_blank=True),
        required=False,
        default=builtins.list,  # `list` is the field above, in this class body
        help_text=f"Up to {services.MAX_FEEDBACK_TAGS} short labels, 1-64 printable characters.",
    )

    def validate_outcome(self, value: str) -> str:
        if value not in _NATIVE_OUTCOMES:
            raise serializers.ValidationError(
                f"Must be one of: {', '.join(_NATIVE_OUTCOMES)}.", code="invalid_choice"
            )
        return value


class FeedbackInputSerializer(ClosedSerializer):
    # Built as a ListSerializer (what `many=True` makes) because the stubs don't know
    # that `many=True` passes min_length and max_length on to it.
    items: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=FeedbackItemInputSerializer(),
        allow_empty=False,
        min_length=1,
        max_length=services.MAX_FEEDBACK_ITEMS,
    )


class FeedbackItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request.")
    status = serializers.CharField(help_text="`ok` or `error`.")
    code = serializers.CharField(required=False, help_text="Errors only, e.g. `unknown_hash`.")
    message = serializers.CharField(required=False)


class FeedbackResultsSerializer(serializers.Serializer):
    results = FeedbackItemResultSerializer(many=True)


def feedback_results_json(results: list[services.FeedbackResult]) -> list[dict[str, Any]]:
    return [
        {"index": i, "status": "ok"}
        if r.ok
        else {"index": i, "status": "error", "code": r.code, "message": r.message}
        for i, r in enumerate(results)
    ]


class FeedbackApi(PartnerApi):
    @extend_schema(
        operation_id="exchange_feedback",
        request=FeedbackInputSerializer,
        responses={
            200: OpenApiResponse(
                FeedbackResultsSerializer,
                description=(
                    "One result per item, in order. A hash that is not in the list, or in a "
                    "list you can't read, is a per-item `unknown_hash` error; the other items "
                    "are still saved."
                ),
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="Malformed input (`field` names it, e.g. `items[3].outcome`); "
                "nothing is saved.",
            ),
            401: _AUTH_ERRORS[401],
            413: OpenApiResponse(ErrorSerializer, description="Body over 1 MiB."),
            415: OpenApiResponse(ErrorSerializer, description="Not JSON."),
        },
        summary="Report what your moderators decided about matched hashes (1-1000 items)",
    )
    def post(self, request: Request) -> Response:
        serializer = FeedbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        items = [
            services.FeedbackItem(
                list=item["list"],
                algorithm=item["algorithm"],
                value=item["value"],
                outcome=item["outcome"],
                tags=tuple(item["tags"]),
            )
            for item in serializer.validated_data["items"]
        ]
        results = services.feedback_submit(
            partner=request_partner(request), items=items, via=FeedbackEvent.Via.NATIVE
        )
        return Response({"results": feedback_results_json(results)})
