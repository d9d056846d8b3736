"""The case API's shortcuts give exactly what the serializers they stand in for give.

A well-formed case body is validated without building the serializers, a
well-formed hash list without a serializer per hash, and a new case is
rendered without one; each must agree with the serializers on every input,
or the shortcut must step aside.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from cases.selectors import CaseHashStatus, CaseStatus
from cases.serializers import (
    CaseCreatedSerializer,
    CaseCreateInputSerializer,
    CaseCredentialsSerializer,
    CaseHashSerializer,
    CaseHashStatusSerializer,
    CaseStatusSerializer,
    _create_fast,
    _credentials_fast,
    _hashes_fast,
    case_created_data,
    case_status_data,
)
from tests.conftest import md5, pdq


def assert_agrees(fast: Any, slow: Any, data: Any) -> None:
    """The shortcut refuses (None) whatever the serializer refuses, and otherwise
    either steps aside or gives exactly what the serializer gives."""
    result = fast(data)
    try:
        expected = slow(data)
    except serializers.ValidationError:
        assert result is None
        return
    assert result is None or result == expected


hex_text = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=70)
algorithm = st.sampled_from(["pdq", "md5", "PDQ", " pdq", "vpdq", "", 3, None])
value = hex_text | st.text(max_size=70) | st.integers() | st.none()
quality = st.none() | st.integers(-5, 120) | st.booleans() | st.floats() | st.text(max_size=3)
item = st.fixed_dictionaries(
    {},
    optional={"algorithm": algorithm, "value": value, "quality": quality, "extra": st.integers()},
)
valid_item = st.one_of(
    st.builds(lambda s, q: pdq(str(s), quality=q), st.integers(), st.integers(50, 100)),
    st.builds(lambda s: md5(str(s)), st.integers()),
)
hash_lists = (
    st.lists(item | valid_item, min_size=0, max_size=22)
    | st.lists(valid_item, min_size=1, max_size=20)
    | st.none()
    | st.text(max_size=5)
)


def slow_path(data: Any) -> Any:
    """What the nested serializers make of ``data`` (ValidationError if they refuse it)."""
    field = CaseCreateInputSerializer().fields["hashes"]
    return serializers.ListSerializer.to_internal_value(field, data)


@given(data=hash_lists)
def test_the_fast_validation_accepts_only_what_the_serializers_accept_and_alike(data):
    assert_agrees(_hashes_fast, slow_path, data)


def test_the_fast_validation_takes_the_usual_case():
    data = [pdq(str(i)) for i in range(15)] + [md5(str(i)) for i in range(5)]
    data[0]["value"] = data[0]["value"].upper()
    assert _hashes_fast(data) == slow_path(data)
    assert _hashes_fast(data)[0].value == pdq("0")["value"]


answers = st.booleans() | st.none() | st.sampled_from(["true", 1, 0])
eligibility = (
    st.fixed_dictionaries(
        {"in_image": st.booleans(), "under_18_at_capture": st.booleans()},
        optional={"has_media": answers, "intimate": answers, "other": st.booleans()},
    )
    | st.none()
    | st.lists(st.booleans(), max_size=2)
)
edge_pins = ["12345", "123456", "x" * 128, "x" * 129, "ab\x00cdef", "påskägg", "\ud800abcdef"]
pins = (
    st.sampled_from(edge_pins)
    | st.text(max_size=10)
    | st.text(alphabet=st.characters(codec="ascii"), min_size=4, max_size=8)
    | st.integers()
    | st.none()
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "eligibility": eligibility,
        "hashes": hash_lists,
        "pin": pins,
        "email": st.sampled_from(["a@example.org", "not an email", 3]),
        "extra": st.integers(),
    },
) | st.builds(
    lambda hashes, pin: {
        "eligibility": {
            "in_image": True,
            "under_18_at_capture": False,
            "has_media": True,
            "intimate": True,
        },
        "hashes": hashes,
        **({} if pin is None else {"pin": pin}),
    },
    st.lists(valid_item, min_size=1, max_size=20) | hash_lists,
    st.none() | pins,
)


def without_fast_path(serializer_class: type) -> Callable[[Any], Any]:
    """What ``serializer_class`` makes of data with its fast path stepped around
    (ValidationError if it refuses it)."""

    def judge(data: Any) -> Any:
        return super(serializer_class, serializer_class()).run_validation(data)

    return judge


slow_body = without_fast_path(CaseCreateInputSerializer)


@settings(max_examples=400)
@given(data=bodies)
def test_the_fast_body_validation_accepts_only_what_the_serializers_accept_and_alike(data):
    assert_agrees(_create_fast, slow_body, data)


def test_the_fast_body_validation_takes_the_usual_case_and_steps_aside_for_email():
    body = {
        "eligibility": {
            "in_image": True,
            "under_18_at_capture": True,
            "has_media": True,
            "intimate": True,
        },
        "hashes": [pdq("a"), md5("b")],
        "pin": "correct horse",
    }
    assert _create_fast(body) == slow_body(body)
    assert _create_fast({**body, "email": "a@example.org"}) is None
    assert _create_fast({**body, "hashes": [pdq("a"), pdq("a")]}) is None  # the serializer says why


@pytest.mark.parametrize("pin", [*edge_pins, " 12345", "123456 ", 123456, None, True])
def test_the_fast_body_validation_agrees_on_every_edge_of_the_pin(pin):
    body = {
        "eligibility": {
            "in_image": True,
            "under_18_at_capture": False,
            "has_media": True,
            "intimate": True,
        },
        "hashes": [md5("c")],
        "pin": pin,
    }
    try:
        slow = slow_body(body)
    except serializers.ValidationError:
        assert _create_fast(body) is None
    else:
        assert _create_fast(body) in (None, slow)
        assert pin in ("123456", "x" * 128, " 12345", "123456 ", "påskägg")


statuses = st.builds(
    CaseHashStatus,
    algorithm=st.sampled_from(["pdq", "md5"]),
    value=hex_text,
    quality=st.none() | st.integers(50, 100),
    status=st.sampled_from(["active", "withdrawn", "under_review", "disabled"]),
    partners_received=st.none() | st.integers(0, 1000),
    partners_blocked=st.none() | st.integers(0, 1000),
)


@given(hashes=st.lists(statuses, max_size=20))
def test_hashes_render_as_the_nested_serializers_render_them(hashes):
    when = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    created = {
        "case_number": "X",
        "pin": "Y",
        "list": "adult",
        "created_at": when,
        "hashes": hashes,
        "message": "m",
    }
    assert CaseCreatedSerializer(created).data["hashes"] == (
        CaseHashSerializer(hashes, many=True).data
    )
    assert case_created_data(created) == CaseCreatedSerializer(created).data
    for state, withdrawn_at in (("active", None), ("withdrawn", when)):
        status = CaseStatus(
            list="adult", state=state, created_at=when, withdrawn_at=withdrawn_at, hashes=hashes
        )
        assert CaseStatusSerializer(status).data["hashes"] == (
            CaseHashStatusSerializer(hashes, many=True).data
        )
        assert case_status_data(status) == CaseStatusSerializer(status).data


credential_text = (
    st.sampled_from(["", "x", "7KQ4-M2XD-9PZA-3HC8", "a\x00b", "påskägg", "\ud800", "x" * 64])
    | st.text(max_size=130)
    | st.text(alphabet=st.characters(codec="ascii"), max_size=130)
)
credential_bodies = st.fixed_dictionaries(
    {},
    optional={
        "case_number": credential_text | st.integers() | st.none() | st.booleans(),
        "pin": credential_text | st.integers() | st.none(),
        "extra": st.integers(),
    },
) | st.sampled_from([None, [], "x", 3])


slow_credentials = without_fast_path(CaseCredentialsSerializer)


@settings(max_examples=500)
@given(data=credential_bodies)
def test_the_fast_credential_check_accepts_only_what_the_serializer_accepts_and_alike(data):
    assert_agrees(_credentials_fast, slow_credentials, data)


@pytest.mark.parametrize(
    "body",
    [
        {"case_number": "7KQ4-M2XD-9PZA-3HC8", "pin": "123456"},
        {"case_number": "x" * 64, "pin": "p" * 128},
        {"case_number": "a", "pin": " "},
    ],
)
def test_the_fast_credential_check_takes_the_usual_case(body):
    assert _credentials_fast(body) == slow_credentials(body) == body


@pytest.mark.parametrize(
    "body",
    [
        {"case_number": "x" * 65, "pin": "123456"},
        {"case_number": "", "pin": "123456"},
        {"case_number": "a", "pin": "p" * 129},
        {"case_number": "a", "pin": "påskägg"},  # the serializer judges what is not ASCII
        {"case_number": "a"},
    ],
)
def test_the_fast_credential_check_steps_aside_at_every_edge(body):
    assert _credentials_fast(body) is None
