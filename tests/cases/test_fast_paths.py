"""The case API's shortcuts give exactly what the serializers they stand in for give.

A well-formed hash list is validated without a serializer per hash, and a
case's hashes are rendered without one; both must agree with the serializers
on every input, or the shortcut must step aside.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

from cases.selectors import CaseHashStatus, CaseStatus
from cases.serializers import (
    CaseCreatedSerializer,
    CaseCreateInputSerializer,
    CaseHashSerializer,
    CaseHashStatusSerializer,
    CaseStatusSerializer,
    _hashes_fast,
)
from tests.conftest import md5, pdq

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
    fast = _hashes_fast(data)
    try:
        slow = slow_path(data)
    except serializers.ValidationError:
        assert fast is None
        return
    assert fast is None or fast == slow


def test_the_fast_validation_takes_the_usual_case():
    data = [pdq(str(i)) for i in range(15)] + [md5(str(i)) for i in range(5)]
    data[0]["value"] = data[0]["value"].upper()
    assert _hashes_fast(data) == slow_path(data)
    assert _hashes_fast(data)[0].value == pdq("0")["value"]


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
    status = CaseStatus(
        list="adult", state="active", created_at=when, withdrawn_at=None, hashes=hashes
    )
    assert CaseStatusSerializer(status).data["hashes"] == (
        CaseHashStatusSerializer(hashes, many=True).data
    )
