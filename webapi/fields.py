"""Strict DRF fields: JSON types are taken as they are, never coerced.

DRF's stock fields turn ``"true"`` into ``True`` and ``93`` into ``"93"``;
for hostile input we want the wrong JSON type to be an error naming the field.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from rest_framework import serializers


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": _("Must be true or false.")}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": _("Must be a string.")}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": _("Must be a whole number.")}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    default_error_messages = {"invalid": _("Enter a valid email address.")}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ClosedSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a misspelt name is an error, not ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                # The name is echoed in `field`: escape lone surrogates, which can't be encoded.
                name = unknown[0].encode("utf-8", "backslashreplace").decode("utf-8")
                error = serializers.ErrorDetail(str(_("Unknown field.")), code="unknown_field")
                raise serializers.ValidationError({name: [error]})
        return super().to_internal_value(data)


# What these enforce, said in the OpenAPI schema too (drf-spectacular leaves it out),
# so that clients generated from the schema send what the API accepts.


class ClosedSerializerSchema(OpenApiSerializerExtension):
    """A closed serializer's object admits no other properties."""

    target_class = ClosedSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema


class ListSerializerSchema(OpenApiSerializerFieldExtension):
    """A nested list's bounds (``min_length``, ``max_length``, ``allow_empty``) as item counts."""

    target_class = serializers.ListSerializer
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        minimum = self.target.min_length or (0 if self.target.allow_empty else 1)
        if minimum:
            schema["minItems"] = minimum
        if self.target.max_length is not None:
            schema["maxItems"] = self.target.max_length
        return schema
