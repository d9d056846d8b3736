"""The StopNCII-compatible API (docs/ARCHITECTURE.md), served from the ``adult`` list's log.

Unmodified StopNCII clients (threatexchange's ``StopNCIIAPI``, Meta's HMA)
call ``FetchHashes`` and ``SubmitFeedback`` here. FetchHashes turns the log
into StopNCII's "latest state per hash" records:

- Entries with ``timestamp >= startTimestamp`` are read in index order (commit
  order; log timestamps never decrease with the index). Each one that yields a
  record describes its hash as that entry left it: an ``add`` is ``Active``, a
  ``remove`` is ``Withdrawn`` (or ``Deleted`` when reviewers disabled it).
- Redaction: an ``add`` whose hash was removed since is never sent. A
  ``remove`` is sent, with the hash's value, only to a partner that could have
  had the value: the add is at or before ``startTimestamp`` (a client resuming
  from ``nextSetTimestamp`` may have been given entries of that very second), and
  the partner could read the list when the removal was logged: its log position
  lies in one of the partner's ``ListAccess`` periods (granted, confirmed where
  required, active). Decided by position, not by clock, so a partner granted a
  fraction of a second after a withdrawal, or one whose grant was revoked or
  paused when it happened, never sees the value.
- ``nextPageToken`` is a signed cursor: the partner, ``startTimestamp``, the
  last index considered, and the log size when the first page was served. A
  paging session never reads past that size, so a hash added before the session
  and removed during it is reported by the next session, never dropped.
- ``nextSetTimestamp`` is the timestamp of the last entry considered (or
  ``startTimestamp`` when there is none): resuming from it re-sends at most
  that second's entries and misses none.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.http import HttpResponse
from django.utils.crypto import salted_hmac
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.authentication import StopNCIIKeyAuthentication, request_partner
from exchange.feeds import selectors, services
from exchange.feeds.api import feedback_results_json
from exchange.feeds.serializers import QueryInt
from exchange.models import Credential, FeedbackEvent, FeedbackOutcome, ListAccess, Partner
from hashbank import tlog
from hashbank.algorithms import HashValueError, normalise_value
from hashbank.models import HashList, Hold, HolderKind, LogEntry
from webapi.errors import ErrorSerializer, InvalidInput
from webapi.fields import ClosedSerializer, StrictCharField, StrictIntegerField

STOPNCII_LIST = "adult"
DEFAULT_PAGE_SIZE = 800
MAX_PAGE_SIZE = 10_000
# A page reads at most this many chunks of the log, so a stretch of entries
# that yield no record (redacted adds, skipped removals) can't make one
# request scan without bound; the client simply asks for the next page.
MAX_CHUNKS_PER_PAGE = 5
MIN_CHUNK = 200

SIGNAL_TYPES = {"pdq": "ImagePDQ", "md5": "VideoMD5"}
ACTIVE, WITHDRAWN, DELETED = "Active", "Withdrawn", "Deleted"
FEEDBACK_VALUES = {
    FeedbackOutcome.NONE: "None",
    FeedbackOutcome.PENDING_REVIEW: "PendingReview",
    FeedbackOutcome.BLOCKED: "Blocked",
    FeedbackOutcome.NOT_BLOCKED: "NotBlocked",
}
OUTCOMES = {wire: outcome for outcome, wire in FEEDBACK_VALUES.items()}
_TOKEN_SALT = "hashbank.stopncii.page-token"
_CASE_REFERENCE_SALT = "hashbank.stopncii.case-reference"
_MAX_TOKEN_LENGTH = 512


# --- Cursor -------------------------------------------------------------------------


@dataclass(frozen=True)
class PageCursor:
    """Where a paging session stands: ``after`` is the last index considered,
    ``end`` the log size when its first page was served."""

    start_timestamp: int
    after: int
    end: int


def cursor_token(*, partner: Partner, cursor: PageCursor) -> str:
    payload = [partner.pk, cursor.start_timestamp, cursor.after, cursor.end]
    return signing.dumps(payload, salt=_TOKEN_SALT, compress=False)


def cursor_from_token(*, partner: Partner, token: str, start_timestamp: int) -> PageCursor:
    """The cursor in ``token``, or InvalidInput: forged, garbled or someone else's."""
    invalid = InvalidInput(
        "nextPageToken is not valid: pass back the one the previous page returned, "
        "with the same startTimestamp.",
        field="nextPageToken",
        code="invalid_token",
    )
    if len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
        raise invalid
    try:
        payload = signing.loads(token, salt=_TOKEN_SALT)
    except (signing.BadSignature, ValueError):
        raise invalid from None
    if (
        not isinstance(payload, list)
        or len(payload) != 4
        or not all(type(x) is int for x in payload)
    ):
        raise invalid
    partner_id, start, after, end = payload
    if partner_id != partner.pk or start != start_timestamp or not 0 <= after + 1 <= end:
        raise invalid
    return PageCursor(start_timestamp=start, after=after, end=end)


# --- Records ------------------------------------------------------------------------


def case_reference(*, partner: Partner, case_id: int) -> str:
    """An opaque, per-partner ID for a case: never its number or its primary key.

    Two partners can't match their IDs, and nobody can turn one back into a case.
    """
    return salted_hmac(
        _CASE_REFERENCE_SALT, f"{partner.pk}:case:{case_id}", algorithm="sha256"
    ).hexdigest()[:16]


def csp_feedbacks(
    *, partner: Partner, hash_ids: Collection[int]
) -> dict[int, list[dict[str, Any]]]:
    """The ``CSPFeedbacks`` of each hash, from every partner, as StopNCII shows them.

    The partner's own feedback carries its name; another platform's carries a
    stable pseudonym (``csp-`` + an HMAC of that platform, different for each
    viewer), so partners see how a hash fares across platforms without learning
    which platforms hold it.
    """
    from exchange.models import Feedback

    found: dict[int, list[dict[str, Any]]] = {}
    rows = (
        Feedback.objects.filter(hash_id__in=list(hash_ids))
        .select_related("partner")
        .order_by("hash_id", "partner_id")
    )
    for fb in rows:
        source = (
            partner.name
            if fb.partner_id == partner.pk
            else "csp-"
            + salted_hmac(
                _CASE_REFERENCE_SALT, f"csp:{partner.pk}:{fb.partner_id}", algorithm="sha256"
            ).hexdigest()[:12]
        )
        found.setdefault(fb.hash_id, []).append(
            {
                "source": source,
                "feedbackValue": FEEDBACK_VALUES[FeedbackOutcome(fb.outcome)],
                "tags": list(fb.tags),
            }
        )
    return found


def _case_numbers(*, partner: Partner, hash_ids: Collection[int]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = {}
    holds = Hold.objects.filter(hash_id__in=hash_ids, holder_kind=HolderKind.CASE)
    rows = holds.order_by("pk").values_list("hash_id", "holder_id", "active")
    for hash_id, case_id, active in rows:
        reference = case_reference(partner=partner, case_id=case_id)
        found.setdefault(hash_id, {})[reference] = ACTIVE if active else WITHDRAWN
    return found


@dataclass
class _Record:
    hash_id: int
    signal_type: str
    value: str
    status: str
    timestamp: int


@dataclass(frozen=True)
class FetchPage:
    records: list[dict[str, Any]]
    next_token: str | None
    next_set_timestamp: int
    position: int


def _first_index(hash_list: HashList, start_timestamp: int) -> int | None:
    """The first entry at or after ``start_timestamp`` (the (list, timestamp) index)."""
    return (
        LogEntry.objects.filter(hash_list=hash_list, timestamp__gte=start_timestamp)
        .order_by("timestamp", "index")
        .values_list("index", flat=True)
        .first()
    )


def _last_index_at_or_before(hash_list: HashList, timestamp: int) -> int:
    found = (
        LogEntry.objects.filter(hash_list=hash_list, timestamp__lte=timestamp)
        .order_by("-timestamp", "-index")
        .values_list("index", flat=True)
        .first()
    )
    return -1 if found is None else found


def fetch_page(
    *,
    partner: Partner,
    hash_list: HashList,
    start_timestamp: int,
    page_size: int,
    cursor: PageCursor | None,
) -> FetchPage:
    """One FetchHashes page: at most ``page_size`` records, one per hash (its latest)."""
    if cursor is None:
        end = HashList.objects.values_list("log_size", flat=True).get(pk=hash_list.pk)
        first = _first_index(hash_list, start_timestamp)
        after = (end if first is None else first) - 1
    else:
        end, after = cursor.end, cursor.after
    # A removal is sent only if its add is at or before startTimestamp: a client
    # resuming from nextSetTimestamp may have had the adds of that very second.
    known_before = _last_index_at_or_before(hash_list, start_timestamp)
    access = list(
        ListAccess.objects.filter(partner=partner, hash_list=hash_list).values_list("start", "end")
    )

    def could_read(index: int) -> bool:
        return any(start <= index and (end is None or index < end) for start, end in access)

    records: dict[int, _Record] = {}
    last_timestamp: int | None = None
    chunk = max(page_size, MIN_CHUNK)
    full = False
    for _ in range(MAX_CHUNKS_PER_PAGE):
        if full or len(records) >= page_size or after + 1 >= end:
            break
        rows = (
            LogEntry.objects.filter(
                hash_list=hash_list, index__gt=after, index__lt=min(end, after + 1 + chunk)
            )
            .order_by("index")
            .values_list(
                "index",
                "op",
                "hash_id",
                "hash__algorithm",
                "hash__value",
                "leaf",
                "timestamp",
                "removes",
                "redacted",
            )
        )
        scanned = False
        for index, op, hash_id, algorithm, value, leaf, timestamp, removes, redacted in rows:
            scanned = True
            status: str | None = None
            if hash_id is not None and algorithm in SIGNAL_TYPES:
                if op == LogEntry.Op.ADD and not redacted:
                    status = ACTIVE
                elif (
                    op == LogEntry.Op.REMOVE
                    and removes is not None
                    and removes <= known_before
                    and could_read(index)
                ):
                    reason = tlog.decode_leaf(bytes(leaf)).reason
                    status = DELETED if reason == "disabled" else WITHDRAWN
            if status is not None and hash_id not in records and len(records) >= page_size:
                full = True
                break
            after, last_timestamp = index, timestamp
            if status is not None:
                # The latest state of a hash replaces an earlier one in the same page.
                records.pop(hash_id, None)
                records[hash_id] = _Record(
                    hash_id, SIGNAL_TYPES[algorithm], value, status, timestamp
                )
        if not scanned:
            break

    hash_ids = list(records)
    case_numbers = _case_numbers(partner=partner, hash_ids=hash_ids)
    feedbacks = csp_feedbacks(partner=partner, hash_ids=hash_ids)
    has_more = after + 1 < end
    return FetchPage(
        records=[
            {
                "lastModtimestamp": r.timestamp,
                "signalType": r.signal_type,
                "hashValue": r.value,
                "hashStatus": r.status,
                "caseNumbers": case_numbers.get(r.hash_id, {}),
                "CSPFeedbacks": feedbacks.get(r.hash_id, []),
            }
            for r in records.values()
        ],
        next_token=cursor_token(
            partner=partner,
            cursor=PageCursor(start_timestamp=start_timestamp, after=after, end=end),
        )
        if has_more
        else None,
        next_set_timestamp=start_timestamp if last_timestamp is None else last_timestamp,
        position=after + 1,
    )


# --- Serializers ------------------------------------------------------------------


class FetchHashesQuerySerializer(ClosedSerializer):
    startTimestamp = QueryInt(min_value=0, help_text="Unix seconds.")
    pageSize = QueryInt(min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)
    nextPageToken = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=_MAX_TOKEN_LENGTH
    )


class CSPFeedbackSerializer(serializers.Serializer):
    feedbackValue = serializers.ChoiceField(choices=list(OUTCOMES))
    tags = serializers.ListField(child=serializers.CharField())

    def get_fields(self) -> dict[str, serializers.Field]:
        # `source` is also an attribute of every DRF field, so it can't be declared above.
        return {"source": serializers.CharField(), **super().get_fields()}


class HashRecordSerializer(serializers.Serializer):
    lastModtimestamp = serializers.IntegerField()
    signalType = serializers.ChoiceField(choices=list(SIGNAL_TYPES.values()))
    hashValue = serializers.CharField()
    hashStatus = serializers.ChoiceField(choices=[ACTIVE, WITHDRAWN, DELETED])
    caseNumbers = serializers.DictField(
        child=serializers.ChoiceField(choices=[ACTIVE, WITHDRAWN]),
        help_text="Opaque per-partner case IDs (never case numbers) and their status.",
    )
    CSPFeedbacks = CSPFeedbackSerializer(many=True)


class FetchHashesSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    nextPageToken = serializers.CharField(allow_null=True)
    nextSetTimestamp = serializers.IntegerField()
    hasMoreRecords = serializers.BooleanField()
    hashRecords = HashRecordSerializer(many=True)


class HashFeedbackInputSerializer(ClosedSerializer):
    hashValue = StrictCharField(max_length=512, trim_whitespace=False)
    feedbackValue = StrictCharField(max_length=16, help_text=", ".join(OUTCOMES))
    tags = serializers.ListField(
        child=StrictCharField(trim_whitespace=False, allow_blank=True),
        required=False,
        default=list,
    )

    def validate_hashValue(self, value: str) -> tuple[str, str]:
        for algorithm in SIGNAL_TYPES:
            try:
                return algorithm, normalise_value(algorithm, value)
            except HashValueError:
                continue
        raise serializers.ValidationError(
            "Must be a PDQ (64 hex digits) or MD5 (32 hex digits) hash.",
            code="invalid_hash_value",
        )

    def validate_feedbackValue(self, value: str) -> str:
        if value not in OUTCOMES:
            raise serializers.ValidationError(
                f"Must be one of: {', '.join(OUTCOMES)}.", code="invalid_choice"
            )
        return OUTCOMES[value]

    def validate_tags(self, value: list[str]) -> list[str]:
        try:
            return services.feedback_tags_clean(value)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from None


class SubmitFeedbackInputSerializer(ClosedSerializer):
    count = StrictIntegerField(min_value=1, max_value=services.MAX_FEEDBACK_ITEMS)
    # Built as a ListSerializer (what `many=True` makes) because the stubs don't know
    # that `many=True` passes min_length and max_length on to it.
    hashFeedbacks: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=HashFeedbackInputSerializer(),
        allow_empty=False,
        min_length=1,
        max_length=services.MAX_FEEDBACK_ITEMS,
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["count"] != len(attrs["hashFeedbacks"]):
            raise serializers.ValidationError(
                {"count": ["Must equal the number of hashFeedbacks."]}, code="count_mismatch"
            )
        return attrs


class FeedbackResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    hashValue = serializers.CharField()
    status = serializers.CharField(help_text="`ok` or `error`.")
    code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)


class SubmitFeedbackSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = FeedbackResultSerializer(many=True)


# --- Views --------------------------------------------------------------------------

_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad parameter or body; `field` names it."),
    401: OpenApiResponse(ErrorSerializer, description="Missing or wrong keys for this endpoint."),
    404: OpenApiResponse(ErrorSerializer, description="You are not granted the adult list."),
}


class StopNCIIApi(APIView):
    authentication_classes = [StopNCIIKeyAuthentication]
    permission_classes = [IsAuthenticated]
    function_kind: str

    def hash_list(self, request: Request) -> HashList:
        return selectors.partner_list_get(partner=request_partner(request), slug=STOPNCII_LIST)


class FetchHashesApi(StopNCIIApi):
    function_kind = Credential.Kind.FETCH_FUNCTION_KEY

    @extend_schema(
        operation_id="stopncii_fetch_hashes",
        parameters=[
            OpenApiParameter("startTimestamp", int, required=True, description="Unix seconds."),
            OpenApiParameter("pageSize", int, description="1-10000 records (default 800)."),
            OpenApiParameter("nextPageToken", str, description="From the previous page."),
        ],
        responses={200: FetchHashesSerializer, **_ERRORS},
        summary="StopNCII FetchHashes: the adult list's changes since startTimestamp",
    )
    def get(self, request: Request) -> HttpResponse:
        partner = request_partner(request)
        hash_list = self.hash_list(request)
        query = FetchHashesQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        start = query.validated_data["startTimestamp"]
        token = query.validated_data.get("nextPageToken") or ""
        cursor = (
            cursor_from_token(partner=partner, token=token, start_timestamp=start)
            if token
            else None
        )
        page = fetch_page(
            partner=partner,
            hash_list=hash_list,
            start_timestamp=start,
            page_size=query.validated_data["pageSize"],
            cursor=cursor,
        )
        services.partner_record_fetch(partner=partner, hash_list=hash_list, position=page.position)
        body = {
            "count": len(page.records),
            "nextPageToken": page.next_token,
            "nextSetTimestamp": page.next_set_timestamp,
            "hasMoreRecords": page.next_token is not None,
            "hashRecords": page.records,
        }
        return HttpResponse(
            json.dumps(body, separators=(",", ":")), content_type="application/json"
        )


class SubmitFeedbackApi(StopNCIIApi):
    function_kind = Credential.Kind.FEEDBACK_FUNCTION_KEY

    @extend_schema(
        operation_id="stopncii_submit_feedback",
        request=SubmitFeedbackInputSerializer,
        responses={200: SubmitFeedbackSerializer, **_ERRORS},
        summary="StopNCII SubmitFeedback: your outcome for hashes of the adult list",
    )
    def post(self, request: Request) -> Response:
        self.hash_list(request)
        serializer = SubmitFeedbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = serializer.validated_data["hashFeedbacks"]
        items = [
            services.FeedbackItem(
                list=STOPNCII_LIST,
                algorithm=item["hashValue"][0],
                value=item["hashValue"][1],
                outcome=item["feedbackValue"],
                tags=tuple(item["tags"]),
            )
            for item in given
        ]
        results = services.feedback_submit(
            partner=request_partner(request), items=items, via=FeedbackEvent.Via.STOPNCII
        )
        rendered = feedback_results_json(results)
        for result, item in zip(rendered, items, strict=True):
            result["hashValue"] = item.value
        return Response({"count": len(rendered), "results": rendered})
