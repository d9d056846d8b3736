"""Hostile and malformed input to the victims' case API.

Every bad input to ``POST /api/v1/cases``, ``/cases/status`` and ``/cases/withdraw``
gets a 4xx JSON answer ``{code, message, field}`` naming the field at fault, never
a 500, and nothing is saved. The second half states the same as properties over
arbitrary JSON (Hypothesis).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.test.client import FakePayload
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from cases import case_numbers
from cases.models import Case
from hashbank.models import Hash, Hold
from tests.conftest import case_body, md5, pdq

CREATE = "/api/v1/cases"
STATUS = "/api/v1/cases/status"
WITHDRAW = "/api/v1/cases/withdraw"
CREDENTIAL_URLS = [STATUS, WITHDRAW]
ALL_URLS = [CREATE, *CREDENTIAL_URLS]
MAX_BODY = 64 * 1024
ELIGIBILITY_ANSWERS = ["in_image", "under_18_at_capture", "has_media", "intimate"]

HIGH_RATES = {
    "HASHBANK_RATE_CASE_CREATE": "1000000/h",
    "HASHBANK_RATE_CASE_STATUS": "1000000/h",
    "HASHBANK_RATE_CASE_WITHDRAW": "1000000/h",
}


# --- helpers -----------------------------------------------------------------


def row_counts() -> tuple[int, int, int]:
    return Case.objects.count(), Hash.objects.count(), Hold.objects.count()


def post_json(client: Client, url: str, body: Any) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def assert_error_shape(response: Any) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict), body
    assert {"code", "message", "field"} <= body.keys(), body
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["field"] is None or isinstance(body["field"], str), body
    return body


def assert_refused(response: Any, status: int, code: str, field: str | None) -> None:
    body = assert_error_shape(response)
    assert response.status_code == status, (response.status_code, body)
    assert (body["code"], body["field"]) == (code, field), body


def refused_and_nothing_saved(
    send: Callable[[], Any], status: int, code: str, field: str | None
) -> None:
    before = row_counts()
    assert_refused(send(), status, code, field)
    assert row_counts() == before


def mistyped(number: str) -> str:
    """``number`` with its first symbol changed so that the check symbol no longer fits."""
    first = number[0]
    for replacement in case_numbers.ALPHABET:
        if replacement == first:
            continue
        candidate = replacement + number[1:]
        try:
            case_numbers.canonical(candidate)
        except case_numbers.CaseNumberError as exc:
            if exc.code == "mistyped":
                return candidate
    raise AssertionError("the check symbol caught no single substitution")


P64 = pdq("value")["value"]
M32 = md5("value")["value"]


def with_hash(**fields: Any) -> dict[str, Any]:
    """A valid case body whose only hash is a PDQ hash with ``fields`` replaced."""
    item = {**pdq("value"), **fields}
    return case_body(item)


def without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


# --- POST /api/v1/cases: the hash values ---------------------------------------

BAD_CREATE_BODIES: list[Any] = [
    # Hash values: exact length, hex only.
    pytest.param(
        with_hash(value=P64[:63]), 400, "invalid_hash_value", "hashes[0].value", id="pdq-63-chars"
    ),
    pytest.param(
        with_hash(value=P64 + "a"), 400, "invalid_hash_value", "hashes[0].value", id="pdq-65-chars"
    ),
    pytest.param(
        case_body({"algorithm": "md5", "value": M32[:31]}),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="md5-31-chars",
    ),
    pytest.param(
        case_body({"algorithm": "md5", "value": M32 + "0"}),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="md5-33-chars",
    ),
    pytest.param(
        case_body({"algorithm": "md5", "value": P64}),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="md5-given-a-pdq-length-value",
    ),
    pytest.param(
        with_hash(value=P64[:-1] + "g"),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="non-hex-g",
    ),
    pytest.param(
        with_hash(value="0x" + P64[2:]),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="0x-prefix",
    ),
    pytest.param(
        with_hash(value="\u0663" * 64),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="arabic-indic-digits",
    ),
    pytest.param(
        with_hash(value="\uff10" * 64),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="fullwidth-digits",
    ),
    pytest.param(
        with_hash(value="\u00b2" * 64),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="superscript-digits",
    ),
    pytest.param(
        with_hash(value="\uff41" * 64),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="fullwidth-letters",
    ),
    pytest.param(
        with_hash(value=P64[:32] + " " + P64[33:]),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="space-inside",
    ),
    pytest.param(
        with_hash(value=P64[:32] + "\t" + P64[32:]),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="tab-inside",
    ),
    pytest.param(
        with_hash(value=P64[:32] + "\n" + P64[32:]),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="newline-inside",
    ),
    pytest.param(
        with_hash(value=" " + P64), 400, "invalid_hash_value", "hashes[0].value", id="leading-space"
    ),
    pytest.param(
        with_hash(value=P64 + "\n"),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="trailing-newline",
    ),
    pytest.param(
        with_hash(value=P64[:32] + "-" + P64[32:]),
        400,
        "invalid_hash_value",
        "hashes[0].value",
        id="dash-inside",
    ),
    pytest.param(with_hash(value=""), 400, "blank", "hashes[0].value", id="empty-value"),
    pytest.param(with_hash(value="a" * 513), 400, "max_length", "hashes[0].value", id="huge-value"),
    pytest.param(
        with_hash(value=P64[:63] + "\x00"), 400, "invalid", "hashes[0].value", id="nul-in-value"
    ),
    pytest.param(
        with_hash(value=int("1" * 18)), 400, "invalid", "hashes[0].value", id="value-a-number"
    ),
    pytest.param(with_hash(value=[P64]), 400, "invalid", "hashes[0].value", id="value-a-list"),
    pytest.param(with_hash(value=None), 400, "null", "hashes[0].value", id="value-null"),
    pytest.param(
        case_body(without(pdq("x"), "value")),
        400,
        "required",
        "hashes[0].value",
        id="value-missing",
    ),
    # Algorithms.
    pytest.param(
        with_hash(algorithm="sha256"),
        400,
        "unknown_algorithm",
        "hashes[0].algorithm",
        id="unknown-algorithm",
    ),
    pytest.param(
        with_hash(algorithm="PDQ"),
        400,
        "unknown_algorithm",
        "hashes[0].algorithm",
        id="algorithm-upper-case",
    ),
    pytest.param(
        with_hash(algorithm=""), 400, "blank", "hashes[0].algorithm", id="algorithm-empty"
    ),
    pytest.param(
        with_hash(algorithm=1), 400, "invalid", "hashes[0].algorithm", id="algorithm-a-number"
    ),
    pytest.param(
        with_hash(algorithm=True), 400, "invalid", "hashes[0].algorithm", id="algorithm-a-boolean"
    ),
    pytest.param(
        with_hash(algorithm=["pdq"]), 400, "invalid", "hashes[0].algorithm", id="algorithm-a-list"
    ),
    pytest.param(
        with_hash(algorithm={"name": "pdq"}),
        400,
        "invalid",
        "hashes[0].algorithm",
        id="algorithm-an-object",
    ),
    pytest.param(
        with_hash(algorithm=None), 400, "null", "hashes[0].algorithm", id="algorithm-null"
    ),
    pytest.param(
        case_body(without(pdq("x"), "algorithm")),
        400,
        "required",
        "hashes[0].algorithm",
        id="algorithm-missing",
    ),
    # PDQ quality.
    pytest.param(
        case_body(without(pdq("x"), "quality")),
        400,
        "quality_required",
        "hashes[0].quality",
        id="quality-missing",
    ),
    pytest.param(
        with_hash(quality=None), 400, "quality_required", "hashes[0].quality", id="quality-null"
    ),
    pytest.param(
        with_hash(quality=-1),
        400,
        "quality_out_of_range",
        "hashes[0].quality",
        id="quality-minus-1",
    ),
    pytest.param(
        with_hash(quality=101), 400, "quality_out_of_range", "hashes[0].quality", id="quality-101"
    ),
    pytest.param(
        with_hash(quality=10**30),
        400,
        "quality_out_of_range",
        "hashes[0].quality",
        id="quality-huge",
    ),
    pytest.param(
        with_hash(quality=49), 400, "quality_too_low", "hashes[0].quality", id="quality-49"
    ),
    pytest.param(with_hash(quality=0), 400, "quality_too_low", "hashes[0].quality", id="quality-0"),
    pytest.param(
        with_hash(quality=93.5), 400, "invalid", "hashes[0].quality", id="quality-fraction"
    ),
    pytest.param(
        with_hash(quality=93.0),
        400,
        "invalid",
        "hashes[0].quality",
        id="quality-float-with-zero-fraction",
    ),
    pytest.param(
        with_hash(quality="93"), 400, "invalid", "hashes[0].quality", id="quality-a-string"
    ),
    pytest.param(with_hash(quality=True), 400, "invalid", "hashes[0].quality", id="quality-true"),
    pytest.param(with_hash(quality=[93]), 400, "invalid", "hashes[0].quality", id="quality-a-list"),
    pytest.param(
        case_body({**md5("x"), "quality": 90}),
        400,
        "quality_not_applicable",
        "hashes[0].quality",
        id="md5-with-quality",
    ),
    # The list of hashes.
    pytest.param(case_body() | {"hashes": []}, 400, "empty", "hashes", id="zero-hashes"),
    pytest.param(
        case_body() | {"hashes": [pdq(f"h{i}") for i in range(21)]},
        400,
        "max_length",
        "hashes",
        id="21-hashes",
    ),
    pytest.param(
        case_body() | {"hashes": pdq("x")}, 400, "not_a_list", "hashes", id="hashes-an-object"
    ),
    pytest.param(case_body() | {"hashes": P64}, 400, "not_a_list", "hashes", id="hashes-a-string"),
    pytest.param(case_body() | {"hashes": 1}, 400, "not_a_list", "hashes", id="hashes-a-number"),
    pytest.param(case_body() | {"hashes": None}, 400, "null", "hashes", id="hashes-null"),
    pytest.param(without(case_body(), "hashes"), 400, "required", "hashes", id="hashes-missing"),
    pytest.param(
        case_body() | {"hashes": [P64]}, 400, "invalid", "hashes[0]", id="hash-item-a-string"
    ),
    pytest.param(
        case_body() | {"hashes": [pdq("a"), None]}, 400, "null", "hashes[1]", id="hash-item-null"
    ),
    pytest.param(
        case_body(pdq("a"), pdq("a")), 400, "duplicate_hash", "hashes[1].value", id="duplicate-pdq"
    ),
    pytest.param(
        case_body(md5("a"), pdq("b"), md5("a")),
        400,
        "duplicate_hash",
        "hashes[2].value",
        id="duplicate-md5",
    ),
    pytest.param(
        case_body(pdq("a"), {**pdq("a"), "value": pdq("a")["value"].upper()}),
        400,
        "duplicate_hash",
        "hashes[1].value",
        id="duplicate-differing-in-case",
    ),
    pytest.param(
        case_body(pdq("a"), {**pdq("a"), "quality": 70}),
        400,
        "duplicate_hash",
        "hashes[1].value",
        id="duplicate-differing-in-quality",
    ),
    pytest.param(
        case_body(pdq("a"), pdq("b"), pdq("c"), with_hash(value="zz")["hashes"][0]),
        400,
        "invalid_hash_value",
        "hashes[3].value",
        id="fourth-hash-bad",
    ),
    # Eligibility.
    pytest.param(
        without(case_body(), "eligibility"),
        400,
        "required",
        "eligibility",
        id="eligibility-missing",
    ),
    pytest.param(
        case_body() | {"eligibility": None}, 400, "null", "eligibility", id="eligibility-null"
    ),
    pytest.param(
        case_body() | {"eligibility": True}, 400, "invalid", "eligibility", id="eligibility-true"
    ),
    pytest.param(
        case_body() | {"eligibility": [True, False, True, True]},
        400,
        "invalid",
        "eligibility",
        id="eligibility-a-list",
    ),
    *[
        pytest.param(
            case_body() | {"eligibility": without(case_body()["eligibility"], answer)},
            400,
            "required",
            f"eligibility.{answer}",
            id=f"eligibility-{answer}-missing",
        )
        for answer in ELIGIBILITY_ANSWERS
    ],
    *[
        pytest.param(
            case_body() | {"eligibility": case_body()["eligibility"] | {answer: value}},
            400,
            code,
            f"eligibility.{answer}",
            id=f"eligibility-{answer}-{label}",
        )
        for answer in ELIGIBILITY_ANSWERS
        for value, code, label in [
            ("true", "invalid", "string-true"),
            ("yes", "invalid", "yes"),
            (1, "invalid", "one"),
            (0, "invalid", "zero"),
            (None, "null", "null"),
            ([True], "invalid", "list"),
        ]
    ],
    pytest.param(
        case_body() | {"eligibility": case_body()["eligibility"] | {"consent": True}},
        400,
        "unknown_field",
        "eligibility.consent",
        id="eligibility-unknown-answer",
    ),
    # Unknown fields.
    pytest.param(
        case_body(image="aGVsbG8="), 400, "unknown_field", "image", id="unknown-top-level-field"
    ),
    pytest.param(
        case_body(Pin="123456"), 400, "unknown_field", "Pin", id="misspelt-top-level-field"
    ),
    pytest.param(
        with_hash(filename="me.jpg"),
        400,
        "unknown_field",
        "hashes[0].filename",
        id="unknown-field-in-hash",
    ),
    # PIN and email.
    pytest.param(case_body(pin="12345"), 400, "min_length", "pin", id="pin-5-chars"),
    pytest.param(case_body(pin=""), 400, "blank", "pin", id="pin-empty"),
    pytest.param(case_body(pin="1" * 129), 400, "max_length", "pin", id="pin-129-chars"),
    pytest.param(case_body(pin=12345678), 400, "invalid", "pin", id="pin-a-number"),
    pytest.param(case_body(pin=["123456"]), 400, "invalid", "pin", id="pin-a-list"),
    pytest.param(case_body(pin=None), 400, "null", "pin", id="pin-null"),
    pytest.param(case_body(pin="123456\x00"), 400, "invalid", "pin", id="pin-with-nul"),
    pytest.param(case_body(email="not-an-email"), 400, "invalid", "email", id="email-no-at"),
    pytest.param(case_body(email="someone@"), 400, "invalid", "email", id="email-no-domain"),
    pytest.param(
        case_body(email="a b@example.org"), 400, "invalid", "email", id="email-with-space"
    ),
    pytest.param(
        case_body(email="a@example.org\nBcc: x@example.org"),
        400,
        "invalid",
        "email",
        id="email-header-injection",
    ),
    pytest.param(case_body(email=42), 400, "invalid", "email", id="email-a-number"),
    pytest.param(case_body(email=None), 400, "null", "email", id="email-null"),
    # Not an object at all.
    pytest.param([case_body()], 400, "invalid", None, id="body-an-array"),
    pytest.param("eligibility", 400, "invalid", None, id="body-a-string"),
    pytest.param(42, 400, "invalid", None, id="body-a-number"),
    pytest.param(True, 400, "invalid", None, id="body-true"),
    pytest.param(None, 400, "null", None, id="body-null"),
    pytest.param({}, 400, "required", "eligibility", id="body-empty-object"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "status", "code", "field"), BAD_CREATE_BODIES)
def test_it_rejects_bad_case_bodies_naming_the_field_and_saves_nothing(
    api: Any, body: Any, status: int, code: str, field: str | None
) -> None:
    refused_and_nothing_saved(lambda: post_json(api, CREATE, body), status, code, field)


@pytest.mark.django_db
def test_it_accepts_upper_case_hex_and_stores_it_lower_case(api: Any) -> None:
    image, video = pdq("upper", quality=50), md5("upper")
    body = case_body(
        {**image, "value": image["value"].upper()},
        {**video, "value": video["value"].upper()},
    )

    response = post_json(api, CREATE, body)

    assert response.status_code == 201, response.content
    returned = [(h["algorithm"], h["value"]) for h in response.json()["hashes"]]
    assert returned == [("pdq", image["value"]), ("md5", video["value"])]
    stored = set(Hash.objects.values_list("algorithm", "value"))
    assert stored == {("pdq", image["value"]), ("md5", video["value"])}
    assert Case.objects.count() == 1 and Hold.objects.count() == 2


@pytest.mark.django_db
def test_it_accepts_the_quality_bounds_and_exactly_20_hashes(api: Any, settings: Any) -> None:
    settings.HASHBANK_RATE_CASE_CREATE = "100000/h"
    twenty = [pdq("q50", quality=50), pdq("q100", quality=100)]
    twenty += [md5(f"video{i}") for i in range(18)]

    response = post_json(api, CREATE, case_body(*twenty))

    assert response.status_code == 201, response.content
    assert [h["quality"] for h in response.json()["hashes"][:2]] == [50, 100]
    assert Hold.objects.count() == 20


@pytest.mark.django_db
def test_it_rejects_a_bad_hash_among_good_ones_without_saving_the_good_ones(api: Any) -> None:
    good = [pdq(f"good{i}") for i in range(5)]
    bad = {**md5("bad"), "value": "not hex"}

    refused_and_nothing_saved(
        lambda: post_json(api, CREATE, case_body(*good, bad)),
        400,
        "invalid_hash_value",
        "hashes[5].value",
    )


# --- the body as a whole ----------------------------------------------------------


def _raw(url: str, data: bytes, content_type: str | None) -> Callable[[Client], Any]:
    def send(client: Client) -> Any:
        if content_type is not None:
            return client.post(url, data, content_type=content_type)
        # Build the request by hand: the test client always sets some Content-Type.
        return client.request(
            PATH_INFO=url,
            REQUEST_METHOD="POST",
            CONTENT_LENGTH=str(len(data)),
            **{"wsgi.input": FakePayload(data)},
        )

    return send


VALID_JSON = json.dumps(case_body()).encode()
BAD_BODIES = [
    pytest.param(VALID_JSON, "text/plain", 415, "unsupported_media_type", id="text-plain"),
    pytest.param(VALID_JSON, "application/xml", 415, "unsupported_media_type", id="xml"),
    pytest.param(
        VALID_JSON, "application/octet-stream", 415, "unsupported_media_type", id="octet-stream"
    ),
    pytest.param(VALID_JSON, "image/jpeg", 415, "unsupported_media_type", id="image-jpeg"),
    pytest.param(VALID_JSON, None, 415, "unsupported_media_type", id="no-content-type"),
    pytest.param(
        b"eligibility=1",
        "application/x-www-form-urlencoded",
        415,
        "media_not_accepted",
        id="form-urlencoded",
    ),
    pytest.param(
        VALID_JSON,
        "multipart/form-data; boundary=xyz",
        415,
        "media_not_accepted",
        id="multipart-declared",
    ),
    pytest.param(
        VALID_JSON,
        "Multipart/Form-Data; boundary=xyz",
        415,
        "media_not_accepted",
        id="multipart-mixed-case",
    ),
    pytest.param(
        VALID_JSON, "multipart/mixed; boundary=xyz", 415, "media_not_accepted", id="multipart-mixed"
    ),
    pytest.param(VALID_JSON[:-1], "application/json", 400, "malformed_json", id="truncated"),
    pytest.param(
        b"{'eligibility': {}}", "application/json", 400, "malformed_json", id="single-quotes"
    ),
    pytest.param(
        b'{"hashes": [1,]}', "application/json", 400, "malformed_json", id="trailing-comma"
    ),
    pytest.param(b'{"pin": NaN}', "application/json", 400, "malformed_json", id="nan"),
    pytest.param(b'{"pin": Infinity}', "application/json", 400, "malformed_json", id="infinity"),
    pytest.param(b"\xff\xfe{}", "application/json", 400, "malformed_json", id="not-utf8"),
    pytest.param(VALID_JSON + b"{}", "application/json", 400, "malformed_json", id="two-documents"),
    pytest.param(
        b'{"a": ' + b"1" * 5000 + b"}",
        "application/json",
        400,
        "malformed_json",
        id="integer-too-long-to-parse",
    ),
    pytest.param(
        b"[" * 20000 + b"]" * 20000,
        "application/json",
        400,
        "malformed_json",
        id="nested-too-deeply",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ALL_URLS)
@pytest.mark.parametrize(("data", "content_type", "status", "code"), BAD_BODIES)
def test_it_rejects_bodies_that_are_not_one_json_document(
    client: Client, url: str, data: bytes, content_type: str | None, status: int, code: str
) -> None:
    refused_and_nothing_saved(lambda: _raw(url, data, content_type)(client), status, code, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"\\ud800": 1}', "\\ud800"),
        (b'{"eligibility": {"in\\udfffimage": true}}', "eligibility.in\\udfffimage"),
    ],
)
def test_it_names_an_unknown_field_holding_a_lone_surrogate_escaped(
    client: Client, data: bytes, field: str
) -> None:
    # JSON may carry a lone surrogate; echoed as is, it can't be encoded as UTF-8.
    refused_and_nothing_saved(
        lambda: client.post(CREATE, data, content_type="application/json"),
        400,
        "unknown_field",
        field,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("url", ALL_URLS)
def test_it_refuses_a_multipart_file_upload_with_415(client: Client, url: str) -> None:
    photo = SimpleUploadedFile("me.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 2048, "image/jpeg")

    # The test client's default encoding is multipart/form-data.
    refused_and_nothing_saved(
        lambda: client.post(url, {"image": photo, "pin": "123456"}),
        415,
        "media_not_accepted",
        None,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("url", ALL_URLS)
def test_it_refuses_a_form_post_with_415(client: Client, url: str) -> None:
    refused_and_nothing_saved(
        lambda: client.post(
            url,
            "case_number=7KQ4-M2XD-9PZA-3HC8&pin=123456",
            content_type="application/x-www-form-urlencoded",
        ),
        415,
        "media_not_accepted",
        None,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("url", ALL_URLS)
def test_it_refuses_a_body_declared_over_64_kib_before_reading_it(client: Client, url: str) -> None:
    refused_and_nothing_saved(
        lambda: client.post(
            url, VALID_JSON, content_type="application/json", CONTENT_LENGTH=str(MAX_BODY + 1)
        ),
        413,
        "body_too_large",
        None,
    )


def _padded_json(size: int) -> bytes:
    """A valid JSON case body of exactly ``size`` bytes (padded with an unknown field)."""
    empty = json.dumps(case_body(padding="")).encode()
    data = json.dumps(case_body(padding="x" * (size - len(empty)))).encode()
    assert len(data) == size
    return data


@pytest.mark.django_db
@pytest.mark.parametrize("url", ALL_URLS)
def test_it_refuses_a_valid_json_body_over_64_kib(client: Client, url: str) -> None:
    data = _padded_json(MAX_BODY + 1)

    refused_and_nothing_saved(
        lambda: client.post(url, data, content_type="application/json"),
        413,
        "body_too_large",
        None,
    )


@pytest.mark.django_db
def test_it_reads_a_body_of_exactly_64_kib(client: Client) -> None:
    # At the limit the body is parsed: the error is about its content, not its size.
    refused_and_nothing_saved(
        lambda: client.post(CREATE, _padded_json(MAX_BODY), content_type="application/json"),
        400,
        "unknown_field",
        "padding",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("url", ALL_URLS)
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_it_answers_other_methods_with_a_json_405(client: Client, url: str, method: str) -> None:
    def send() -> Any:
        if method == "get":
            return client.get(url)
        return getattr(client, method)(url, VALID_JSON, content_type="application/json")

    before = row_counts()
    response = send()

    assert_refused(response, 405, "method_not_allowed", None)
    assert "POST" in response["Allow"]
    assert row_counts() == before


@pytest.mark.django_db
def test_it_never_takes_credentials_from_the_query_string(api: Any, make_case: Any) -> None:
    created = make_case(pin="correct horse")
    query = f"?case_number={created.case_number}&pin=correct%20horse"

    refused_and_nothing_saved(
        lambda: post_json(api, WITHDRAW + query, {}), 400, "required", "case_number"
    )
    assert Case.objects.get().state == Case.State.ACTIVE


# --- status and withdraw -----------------------------------------------------------

VALID_SHAPE = case_numbers.generate()

BAD_CREDENTIALS = [
    pytest.param({"pin": "123456"}, 400, "required", "case_number", id="case-number-missing"),
    pytest.param(
        {"case_number": None, "pin": "123456"}, 400, "null", "case_number", id="case-number-null"
    ),
    pytest.param(
        {"case_number": 1234567890123456, "pin": "123456"},
        400,
        "invalid",
        "case_number",
        id="case-number-a-number",
    ),
    pytest.param(
        {"case_number": [VALID_SHAPE], "pin": "123456"},
        400,
        "invalid",
        "case_number",
        id="case-number-a-list",
    ),
    pytest.param(
        {"case_number": "", "pin": "123456"}, 400, "blank", "case_number", id="case-number-empty"
    ),
    pytest.param(
        {"case_number": "7" * 65, "pin": "123456"},
        400,
        "max_length",
        "case_number",
        id="case-number-65-chars",
    ),
    pytest.param(
        {"case_number": VALID_SHAPE[:-1], "pin": "123456"},
        400,
        "case_number_malformed",
        "case_number",
        id="case-number-15-symbols",
    ),
    pytest.param(
        {"case_number": VALID_SHAPE + "7", "pin": "123456"},
        400,
        "case_number_malformed",
        "case_number",
        id="case-number-17-symbols",
    ),
    pytest.param(
        {"case_number": "U" + VALID_SHAPE[1:], "pin": "123456"},
        400,
        "case_number_malformed",
        "case_number",
        id="case-number-with-u",
    ),
    pytest.param(
        {"case_number": "\uff17" + VALID_SHAPE[1:], "pin": "123456"},
        400,
        "case_number_malformed",
        "case_number",
        id="case-number-fullwidth-digit",
    ),
    pytest.param(
        {"case_number": mistyped(VALID_SHAPE), "pin": "123456"},
        400,
        "case_number_mistyped",
        "case_number",
        id="case-number-one-symbol-changed",
    ),
    pytest.param({"case_number": VALID_SHAPE}, 400, "required", "pin", id="pin-missing"),
    pytest.param({"case_number": VALID_SHAPE, "pin": None}, 400, "null", "pin", id="pin-null"),
    pytest.param(
        {"case_number": VALID_SHAPE, "pin": 123456}, 400, "invalid", "pin", id="pin-a-number"
    ),
    pytest.param({"case_number": VALID_SHAPE, "pin": ""}, 400, "blank", "pin", id="pin-empty"),
    pytest.param(
        {"case_number": VALID_SHAPE, "pin": "1" * 129}, 400, "max_length", "pin", id="pin-129-chars"
    ),
    pytest.param(
        {"case_number": VALID_SHAPE, "pin": "123456", "email": "a@example.org"},
        400,
        "unknown_field",
        "email",
        id="unknown-field",
    ),
    pytest.param({}, 400, "required", "case_number", id="empty-object"),
    pytest.param([VALID_SHAPE, "123456"], 400, "invalid", None, id="an-array"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", CREDENTIAL_URLS)
@pytest.mark.parametrize(("body", "status", "code", "field"), BAD_CREDENTIALS)
def test_it_rejects_bad_credential_bodies_naming_the_field(
    api: Any, url: str, body: Any, status: int, code: str, field: str
) -> None:
    refused_and_nothing_saved(lambda: post_json(api, url, body), status, code, field)


@pytest.mark.django_db
@pytest.mark.parametrize("position", range(case_numbers.LENGTH))
def test_it_reports_any_single_changed_symbol_as_a_typo(api: Any, position: int) -> None:
    canonical = case_numbers.canonical(case_numbers.generate())
    original = canonical[position]
    replacement = case_numbers.ALPHABET[(case_numbers.ALPHABET.index(original) + 7) % 32]
    typo = case_numbers.display(canonical[:position] + replacement + canonical[position + 1 :])
    with pytest.raises(case_numbers.CaseNumberError) as raised:
        case_numbers.canonical(typo)
    assert raised.value.code == "mistyped"

    refused_and_nothing_saved(
        lambda: post_json(api, STATUS, {"case_number": typo, "pin": "123456"}),
        400,
        "case_number_mistyped",
        "case_number",
    )


@pytest.mark.django_db
def test_it_does_not_withdraw_or_count_a_failure_for_a_mistyped_number(
    api: Any, make_case: Any
) -> None:
    created = make_case(pin="correct horse")

    refused_and_nothing_saved(
        lambda: post_json(
            api, WITHDRAW, {"case_number": mistyped(created.case_number), "pin": "correct horse"}
        ),
        400,
        "case_number_mistyped",
        "case_number",
    )

    case = Case.objects.get()
    assert case.state == Case.State.ACTIVE
    assert case.failed_pin_count == 0
    assert Hold.objects.filter(active=True).count() == 1


# --- properties (Hypothesis) ---------------------------------------------------------

# Text that includes lone surrogates and control characters: both arrive in JSON.
any_char = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),
    st.sampled_from("0123456789abcdefABCDEF -\t\n\x00"),
)
# Mostly ordinary text, sometimes with lone surrogates: st.text would merge the
# alphabets and almost never draw a surrogate, so that half is built by hand.
any_text = st.one_of(
    st.text(max_size=40),
    st.lists(any_char, max_size=12).map("".join),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities are serialised as bare words: not JSON.
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(any_text, children, max_size=5),
    ),
    max_leaves=15,
)

FIELD_PATHS: list[tuple[str | int, ...]] = [
    ("eligibility",),
    *[("eligibility", answer) for answer in ELIGIBILITY_ANSWERS],
    ("hashes",),
    ("hashes", 0),
    ("hashes", 0, "algorithm"),
    ("hashes", 0, "value"),
    ("hashes", 0, "quality"),
    ("hashes", 1),
    ("hashes", 1, "algorithm"),
    ("hashes", 1, "value"),
    ("pin",),
    ("email",),
]


def valid_body() -> dict[str, Any]:
    return case_body(pdq("property"), md5("property"), pin="123456", email="a@example.org")


def _container(body: Any, path: tuple[str | int, ...]) -> Any:
    """The dict or list holding ``path``'s last step, or None if the path is gone."""
    node = body
    for step in path[:-1]:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
        elif not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    if isinstance(path[-1], int):
        return node if isinstance(node, list) and path[-1] < len(node) else None
    return node if isinstance(node, dict) else None


def mutate(body: dict[str, Any], mutations: list[tuple[str, int, Any, str]]) -> Any:
    body = copy.deepcopy(body)
    for kind, index, value, key in mutations:
        path = FIELD_PATHS[index]
        node = _container(body, path)
        if node is None:
            continue
        if kind == "set":
            node[path[-1]] = value
        elif isinstance(node, dict) and path[-1] not in node:
            continue
        elif kind == "delete":
            del node[path[-1]]
        elif isinstance(node[path[-1]], dict):  # "add" a field
            node[path[-1]][key] = value
    return body


mutations = st.lists(
    st.tuples(
        st.sampled_from(["set", "delete", "add"]),
        st.integers(0, len(FIELD_PATHS) - 1),
        json_values,
        any_text,
    ),
    min_size=1,
    max_size=4,
)

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _create_answers_cleanly(client: Client, data: bytes) -> Any:
    """POST ``data``: 201 with one new case, or a 4xx error naming a field, with no new rows."""
    before = row_counts()
    response = client.post(CREATE, data, content_type="application/json")
    if response.status_code == 201:
        assert row_counts()[0] == before[0] + 1
        return response
    assert_error_shape(response)
    assert row_counts() == before
    return response


@override_settings(**HIGH_RATES)
class TestCaseCreateProperties(HypothesisTestCase):
    @PROPERTY_SETTINGS
    @given(body=json_values)
    def test_it_answers_any_json_document_as_body_with_a_4xx_error(self, body: Any) -> None:
        response = _create_answers_cleanly(self.client, json.dumps(body).encode())
        assert response.status_code != 201

    @PROPERTY_SETTINGS
    @given(index=st.integers(0, len(FIELD_PATHS) - 1), value=json_values)
    def test_it_answers_any_json_value_in_any_field_with_201_or_a_4xx_error(
        self, index: int, value: Any
    ) -> None:
        body = mutate(valid_body(), [("set", index, value, "")])
        response = _create_answers_cleanly(self.client, json.dumps(body).encode())
        if response.status_code != 201 and response.json()["code"] != "malformed_json":
            # NaN and infinities are not JSON: only those are refused as a whole body.
            field = response.json()["field"]
            assert field is not None
            top = FIELD_PATHS[index][0]
            assert field == top or field.startswith((f"{top}.", f"{top}[")), field

    @PROPERTY_SETTINGS
    @given(changes=mutations)
    def test_it_answers_mutations_of_a_valid_body_with_201_or_a_4xx_error(
        self, changes: list[tuple[str, int, Any, str]]
    ) -> None:
        body = mutate(valid_body(), changes)
        _create_answers_cleanly(self.client, json.dumps(body).encode())

    @PROPERTY_SETTINGS
    @given(data=st.binary(max_size=200) | any_text.map(lambda t: t.encode("utf-8", "replace")))
    def test_it_answers_arbitrary_bytes_with_a_4xx_error(self, data: bytes) -> None:
        response = _create_answers_cleanly(self.client, data)
        assert response.status_code != 201


HEX_CASES = "0123456789abcdefABCDEF"
SPACES = " \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000"


def hex_text(*lengths: int) -> st.SearchStrategy[str]:
    return st.sampled_from(lengths).flatmap(
        lambda n: st.text(st.sampled_from(HEX_CASES), min_size=n, max_size=n)
    )


exact_hex = hex_text(32, 64)
hash_values = st.one_of(
    any_text,
    exact_hex,
    hex_text(31, 33, 63, 65),
    # Exact hex with something before or after it (whitespace, often).
    st.tuples(st.text(st.sampled_from(SPACES), max_size=2), exact_hex, any_text).map("".join),
    st.tuples(any_text, exact_hex, st.text(st.sampled_from(SPACES), max_size=2)).map("".join),
    # Exact hex with one symbol replaced.
    st.tuples(exact_hex, st.integers(0, 63), any_char).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    ),
)


@override_settings(**HIGH_RATES)
class TestHashValueProperties(HypothesisTestCase):
    @PROPERTY_SETTINGS
    @given(algorithm=st.sampled_from(["pdq", "md5"]), value=hash_values)
    def test_it_accepts_a_value_iff_it_is_exactly_the_algorithms_hex_length(
        self, algorithm: str, value: str
    ) -> None:
        length = {"pdq": 64, "md5": 32}[algorithm]
        item = {"algorithm": algorithm, "value": value}
        if algorithm == "pdq":
            item["quality"] = 90

        response = _create_answers_cleanly(self.client, json.dumps(case_body(item)).encode())

        if re.fullmatch(f"[0-9a-f]{{{length}}}", value.lower()):
            assert response.status_code == 201, response.content
            assert response.json()["hashes"][0]["value"] == value.lower()
        else:
            assert response.status_code == 400, response.content
            assert response.json()["field"] == "hashes[0].value"


case_number_texts = st.one_of(
    any_text,
    st.builds(case_numbers.generate),
    st.builds(lambda: mistyped(case_numbers.generate())),
    st.tuples(st.builds(case_numbers.generate), any_char, st.integers(0, 19)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    ),
)


@override_settings(**HIGH_RATES)
class TestCredentialProperties(HypothesisTestCase):
    @PROPERTY_SETTINGS
    @given(
        url=st.sampled_from(CREDENTIAL_URLS),
        case_number=case_number_texts | json_values,
        pin=any_text | json_values,
    )
    def test_it_answers_any_credentials_with_a_4xx_error(
        self, url: str, case_number: Any, pin: Any
    ) -> None:
        before = row_counts()
        response = self.client.post(
            url,
            json.dumps({"case_number": case_number, "pin": pin}),
            content_type="application/json",
        )

        body = assert_error_shape(response)
        assert response.status_code in (400, 403), body
        if response.status_code == 400 and body["code"] != "malformed_json":
            assert body["field"] in ("case_number", "pin"), body
        assert row_counts() == before
