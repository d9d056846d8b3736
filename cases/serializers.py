from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
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


_HASH_KEYS = frozenset({"algorithm", "value", "quality"})


def _hashes_fast(data: Any) -> list[HashInput] | None:
    """The hashes of a well-formed list, or None to let the serializers judge it.

    Validating 20 hashes through nested serializers costs more than the rest of
    the request besides the PIN hash. This accepts exactly what they accept
    when nothing is wrong, and hands anything unusual back to them, so every
    error (and its wording) still comes from one place.
    """
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_HASHES_PER_CASE:
        return None
    result: list[HashInput] = []
    for item in data:
        if type(item) is not dict or not item.keys() <= _HASH_KEYS:
            return None
        algorithm, value, quality = item.get("algorithm"), item.get("value"), item.get("quality")
        if type(algorithm) is not str or type(value) is not str or len(value) > 512:
            return None
        if quality is not None and type(quality) is not int:
            return None
        try:
            value = normalise_value(algorithm, value)
            quality = check_quality(algorithm, quality)
        except HashValueError:
            return None
        result.append(HashInput(algorithm=algorithm, value=value, quality=quality))
    return result


_CREATE_KEYS = frozenset({"eligibility", "hashes", "pin", "email"})
_ELIGIBILITY_KEYS = frozenset(EligibilitySerializer._declared_fields)


def _create_fast(data: Any) -> dict[str, Any] | None:
    """The validated form of a well-formed case body, or None to let the serializers judge it.

    Like ``_hashes_fast``, for the whole body: building the serializers' fields
    (DRF deep-copies them for every instance) cost as much as validating them.
    Anything unusual (an email address, a PIN outside plain ASCII, a duplicate
    hash, any wrong type or key) goes to the serializers.
    """
    if type(data) is not dict or not data.keys() <= _CREATE_KEYS or "email" in data:
        return None
    eligibility = data.get("eligibility")
    if type(eligibility) is not dict or eligibility.keys() != _ELIGIBILITY_KEYS:
        return None
    if any(type(answer) is not bool for answer in eligibility.values()):
        return None
    hashes = _hashes_fast(data.get("hashes"))
    if hashes is None or len({(h.algorithm, h.value) for h in hashes}) != len(hashes):
        return None
    validated: dict[str, Any] = {"eligibility": dict(eligibility), "hashes": hashes}
    if "pin" in data:
        pin = data["pin"]
        if type(pin) is not str or not 6 <= len(pin) <= 128:
            return None
        if not pin.isascii() or "\x00" in pin:
            return None
        validated["pin"] = pin
    return validated


class HashListField(serializers.ListSerializer):
    def to_internal_value(self, data: Any) -> list[HashInput]:
        fast = _hashes_fast(data)
        return fast if fast is not None else super().to_internal_value(data)

    def validate(self, attrs: list[HashInput]) -> list[HashInput]:
        seen: set[tuple[str, str]] = set()
        for position, item in enumerate(attrs):
            key = (item.algorithm, item.value)
            if key in seen:
                raise serializers.ValidationError(
                    {
                        position: {
                            "value": [
                                serializers.ErrorDetail(
                                    _("This hash appears twice in the case."), code="duplicate_hash"
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

    def run_validation(self, data: Any = serializers.empty) -> Any:
        fast = _create_fast(data)
        return fast if fast is not None else super().run_validation(data)


_CREDENTIAL_KEYS = frozenset({"case_number", "pin"})


def _credentials_fast(data: Any) -> dict[str, str] | None:
    """The validated credentials of a well-formed body, or None to let the serializer judge.

    As ``_create_fast``: exactly what the serializer accepts when nothing is
    unusual (two non-empty ASCII strings within their lengths); anything else
    goes to the serializer, so every error still comes from it.
    """
    if type(data) is not dict or data.keys() != _CREDENTIAL_KEYS:
        return None
    number, pin = data["case_number"], data["pin"]
    if type(number) is not str or type(pin) is not str:
        return None
    if not (0 < len(number) <= 64 and 0 < len(pin) <= 128):
        return None
    if not (number.isascii() and pin.isascii()) or "\x00" in number or "\x00" in pin:
        return None
    return {"case_number": number, "pin": pin}


class CaseCredentialsSerializer(ClosedSerializer):
    case_number = StrictCharField(max_length=64, trim_whitespace=False)
    pin = StrictCharField(max_length=128, trim_whitespace=False)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        fast = _credentials_fast(data)
        return fast if fast is not None else super().run_validation(data)


class CaseHashSerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    value = serializers.CharField()
    quality = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=["active", "withdrawn", "under_review", "disabled"])


class CaseHashStatusSerializer(CaseHashSerializer):
    partners_received = serializers.IntegerField(
        allow_null=True, help_text="How many partner platforms received this hash."
    )
    partners_blocked = serializers.IntegerField(
        allow_null=True, help_text="How many partner platforms confirmed a removal."
    )


class _HashStatusesField(serializers.Field):
    """A case's hashes (``cases.selectors.CaseHashStatus``) as ``item`` would render them.

    Their attributes are already the JSON types, so one dict per hash replaces a
    serializer per hash; the schema is the nested serializer's.
    """

    item: type[serializers.Serializer]
    _names: tuple[str, ...] | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        if cls._names is None:
            cls._names = tuple(cls.item().fields)
        return cls._names

    def to_representation(self, value: Any) -> list[dict[str, Any]]:
        names = self.names()
        return [{name: getattr(item, name) for name in names} for item in value]


@extend_schema_field(CaseHashSerializer(many=True))
class CaseHashesField(_HashStatusesField):
    item = CaseHashSerializer


@extend_schema_field(CaseHashStatusSerializer(many=True))
class CaseHashStatusesField(_HashStatusesField):
    item = CaseHashStatusSerializer


class CaseCreatedSerializer(serializers.Serializer):
    case_number = serializers.CharField(help_text="Shown once. It cannot be recovered.")
    pin = serializers.CharField(help_text="Shown once. It cannot be recovered.")
    list = serializers.CharField()
    created_at = serializers.DateTimeField()
    hashes = CaseHashesField()
    message = serializers.CharField()


_TIMESTAMP = serializers.DateTimeField()


def case_created_data(created: dict[str, Any]) -> dict[str, Any]:
    """``CaseCreatedSerializer(created).data``, without building a serializer per request."""
    return {
        "case_number": str(created["case_number"]),
        "pin": str(created["pin"]),
        "list": str(created["list"]),
        "created_at": _TIMESTAMP.to_representation(created["created_at"]),
        "hashes": CaseHashesField().to_representation(created["hashes"]),
        "message": str(created["message"]),
    }


class CaseStatusSerializer(serializers.Serializer):
    list = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "withdrawn"])
    created_at = serializers.DateTimeField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    hashes = CaseHashStatusesField()


def case_status_data(status: Any) -> dict[str, Any]:
    """``CaseStatusSerializer(status).data`` (a ``cases.selectors.CaseStatus``), without
    building a serializer per request."""
    withdrawn_at = status.withdrawn_at
    if withdrawn_at is not None:
        withdrawn_at = _TIMESTAMP.to_representation(withdrawn_at)
    return {
        "list": str(status.list),
        "state": str(status.state),
        "created_at": _TIMESTAMP.to_representation(status.created_at),
        "withdrawn_at": withdrawn_at,
        "hashes": CaseHashStatusesField().to_representation(status.hashes),
    }
