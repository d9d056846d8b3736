from __future__ import annotations

from rest_framework import serializers

from exchange.feeds.selectors import MAX_PAGE
from webapi.fields import ClosedSerializer


class QueryInt(serializers.IntegerField):
    """A query-string integer: digits only (no sign, spaces or decimals)."""

    default_error_messages = {"invalid": "Must be a non-negative whole number."}

    def to_internal_value(self, data: object) -> int:
        if not isinstance(data, str) or not data.isascii() or not data.isdigit() or len(data) > 18:
            self.fail("invalid")
        return super().to_internal_value(data)


class EntriesQuerySerializer(ClosedSerializer):
    start = QueryInt(min_value=0, default=0)
    limit = QueryInt(min_value=1, max_value=MAX_PAGE, default=1000)


class ConsistencyQuerySerializer(ClosedSerializer):
    old = QueryInt(min_value=0)
    new = QueryInt(min_value=0, required=False)


class InclusionQuerySerializer(ClosedSerializer):
    index = QueryInt(min_value=0)
    size = QueryInt(min_value=1, required=False)


class KeySerializer(serializers.Serializer):
    list = serializers.CharField()
    origin = serializers.CharField()
    vkey = serializers.CharField()
    status = serializers.ChoiceField(choices=["active", "retiring"])


class KeysSerializer(serializers.Serializer):
    keys = KeySerializer(many=True)


class ListSummarySerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    origin = serializers.CharField()
    size = serializers.IntegerField()


class ListsSerializer(serializers.Serializer):
    lists = ListSummarySerializer(many=True)


class EntrySerializer(serializers.Serializer):
    index = serializers.IntegerField()
    op = serializers.ChoiceField(choices=["add", "remove"])
    algorithm = serializers.CharField(required=False)
    value = serializers.CharField(required=False)
    quality = serializers.IntegerField(required=False, allow_null=True)
    timestamp = serializers.IntegerField(required=False)
    origin = serializers.CharField(required=False, allow_null=True)
    salt = serializers.CharField(
        required=False, help_text="base64 of the add's 32-byte salt; never on a redacted entry"
    )
    removes = serializers.IntegerField(required=False)
    reason = serializers.CharField(required=False)
    leaf = serializers.CharField(required=False, help_text="base64 of the exact leaf bytes")
    leaf_hash = serializers.CharField(required=False, help_text="base64; redacted entries only")
    redacted = serializers.BooleanField(required=False)


class EntriesSerializer(serializers.Serializer):
    checkpoint = serializers.CharField(help_text="Signed note covering every entry returned")
    entries = EntrySerializer(many=True)
    next = serializers.IntegerField(allow_null=True)


class ConsistencySerializer(serializers.Serializer):
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField())


class InclusionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    size = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())
