from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers

from hashbank.algorithms import (
    ALGORITHMS,
    PDQ_MIN_QUALITY,
    QUALITY_MAX,
    HashValueError,
    check_quality,
    normalise_value,
)
from hashbank.services import HashInput
from webapi.fields import (
    ClosedSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictEmailField,
    StrictIntegerField,
)

MAX_HASHES_PER_CASE = 20


class EligibilitySerializer(ClosedSerializer):
    in_image = StrictBooleanField(help_text="You are the person in the image.")
    under_18_at_capture = StrictBooleanField(help_text="You were under 18 in the image.")
    has_media = StrictBooleanField(help_text="You have the file on this device.")
    intimate = StrictBooleanField(help_text="The image is nude, partly nude or sexual.")


class HashInputSerializer(ClosedSerializer):
    algorithm = StrictCharField(max_length=16, help_text="`pdq` (images) or `md5` (videos).")
    value = StrictCharField(max_length=512, trim_whitespace=False, help_text="Lower-case hex.")
    quality = StrictIntegerField(
        required=False, allow_null=True, help_text="PDQ quality, 50-100. Absent for md5."
    )

    def validate(self, attrs: dict[str, Any]) -> HashInput:
        try:
            value = normalise_value(attrs["algorithm"], attrs["value"])
            quality = check_quality(attrs["algorithm"], attrs.get("quality"))
        except HashValueError as exc:
            raise serializers.ValidationError(
                {exc.field: [serializers.ErrorDetail(exc.message, code=exc.code)]}
            ) from None
        return HashInput(algorithm=attrs["algorithm"], value=value, quality=quality)


class HashInputSchema(OpenApiSerializerExtension):
    """A hash, in the schema: one object per algorithm, with that algorithm's rules.

    The serializer takes any algorithm name and checks the value and quality
    against ``hashbank.algorithms``; the schema says the same from the same
    table, so a client generated from it sends only what the API accepts.
    """

    target_class = HashInputSerializer
    priority = 1  # before webapi.fields.ClosedSerializerSchema, which its class also matches

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        variants = {}
        for name, algorithm in sorted(ALGORITHMS.items()):
            properties: dict[str, Any] = {
                "algorithm": {"type": "string", "enum": [name]},
                "value": {
                    "type": "string",
                    "pattern": f"^[0-9a-fA-F]{{{algorithm.hex_length}}}$",
                    "description": f"{algorithm.description}: {algorithm.hex_length} hexadecimal "
                    "characters (stored in lower case).",
                },
            }
            if algorithm.has_quality:
                properties["quality"] = {
                    "type": "integer",
                    "minimum": PDQ_MIN_QUALITY,
                    "maximum": QUALITY_MAX,
                    "description": "The hash's quality. Platforms can't match hashes below "
                    f"{PDQ_MIN_QUALITY}.",
                }
            component = ResolvedComponent(
                name=f"{name.capitalize()}HashInput",
                type=ResolvedComponent.SCHEMA,
                schema={
                    "type": "object",
                    "properties": properties,
                    "required": sorted(properties),
                    "additionalProperties": False,
                },
                object=f"{name}-hash-input",
            )
            auto_schema.registry.register_on_missing(component)
            variants[name] = component
        return {
            "oneOf": [component.ref for component in variants.values()],
            "discriminator": {
                "propertyName": "algorithm",
                "mapping": {name: c.ref["$ref"] for name, c in variants.items()},
            },
        }


class HashListField(serializers.ListSerializer):
    def validate(self, attrs: list[HashInput]) -> list[HashInput]:
        seen: set[tuple[str, str]] = set()
        for position, item in enumerate(attrs):
            key = (item.algorithm, item.value)
            if key in seen:
                raise serializers.ValidationError(
                    {
                        # A digit key is reported as an index: `hashes[1].value`.
                        str(position): {
                            "value": [
                                serializers.ErrorDetail(
                                    str(_("This hash appears twice in the case.")),
                                    code="duplicate_hash",
                                )
                            ]
                        }
                    }
                )
            seen.add(key)
        return attrs


class CaseCreateInputSerializer(ClosedSerializer):
    eligibility = EligibilitySerializer()
    hashes = HashListField(
        child=HashInputSerializer(),
        min_length=1,
        max_length=MAX_HASHES_PER_CASE,
        error_messages={
            "min_length": _("A case needs at least one hash."),
            "max_length": _("A case holds at most 20 hashes; make a second case for the rest."),
            "not_a_list": _("Must be a list of hashes."),
            "empty": _("A case needs at least one hash."),
        },
        allow_empty=False,
    )
    pin = StrictCharField(
        required=False,
        min_length=6,
        max_length=128,
        trim_whitespace=False,
        help_text="Optional PIN of your choice, at least 6 characters; one is generated otherwise.",
    )
    email = StrictEmailField(
        required=False,
        max_length=254,
        help_text="Optional: the case number is emailed here once. The address is never stored.",
    )


class CaseCredentialsSerializer(ClosedSerializer):
    case_number = StrictCharField(max_length=64, trim_whitespace=False)
    pin = StrictCharField(max_length=128, trim_whitespace=False)


class CaseHashSerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    value = serializers.CharField()
    quality = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=["active", "withdrawn", "under_review", "disabled"])
    explanation = serializers.CharField(
        help_text="For `under_review` and `disabled`: what it means, in the request's language. "
        "Empty otherwise."
    )


class CaseHashStatusSerializer(CaseHashSerializer):
    partners_received = serializers.IntegerField(
        allow_null=True, help_text="How many partner platforms received this hash."
    )
    partners_blocked = serializers.IntegerField(
        allow_null=True, help_text="How many partner platforms confirmed a removal."
    )


class CaseCreatedSerializer(serializers.Serializer):
    case_number = serializers.CharField(help_text="Shown once. It cannot be recovered.")
    pin = serializers.CharField(help_text="Shown once. It cannot be recovered.")
    list = serializers.CharField()
    created_at = serializers.DateTimeField()
    hashes = CaseHashSerializer(many=True)
    message = serializers.CharField()


class CaseStatusSerializer(serializers.Serializer):
    list = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "withdrawn"])
    created_at = serializers.DateTimeField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    hashes = CaseHashStatusSerializer(many=True)
