"""The OpenAPI schema documents the public API and the docs page serves."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db


def test_the_schema_documents_the_case_endpoints(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    for path, operation in (
        ("/api/v1/cases", "case_create"),
        ("/api/v1/cases/status", "case_status"),
        ("/api/v1/cases/withdraw", "case_withdraw"),
    ):
        assert set(paths[path]) == {"post"}, path
        assert paths[path]["post"]["operationId"] == operation
    create = paths["/api/v1/cases"]["post"]
    assert {"201", "400", "413", "415", "422", "429"} <= set(create["responses"])
    assert "403" in paths["/api/v1/cases/status"]["post"]["responses"]


def test_the_docs_page_serves(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"/api/schema/" in response.content


def test_the_schema_documents_the_exchange_and_stopncii_endpoints(client):
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    for path in (
        "/exchange/v1/keys",
        "/exchange/v1/lists/",
        "/exchange/v1/lists/{slug}/checkpoint",
        "/exchange/v1/lists/{slug}/entries",
        "/exchange/v1/lists/{slug}/proof/consistency",
        "/exchange/v1/lists/{slug}/proof/inclusion",
        "/stopncii/v1/FetchHashes",
    ):
        assert "get" in paths[path], path
    assert "post" in paths["/exchange/v1/feedback"]
    assert "post" in paths["/stopncii/v1/SubmitFeedback"]
    entries = paths["/exchange/v1/lists/{slug}/entries"]["get"]
    assert {p["name"] for p in entries["parameters"]} >= {"slug", "start", "limit"}
    assert {"200", "400", "401", "404"} <= set(entries["responses"])


def test_the_schema_generates_without_warnings():
    from io import StringIO

    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())


def _components(client) -> dict:
    return yaml.safe_load(client.get("/api/schema/").content)["components"]["schemas"]


def test_the_case_schemas_are_closed_and_bound_the_hash_count(client):
    from cases.serializers import MAX_HASHES_PER_CASE

    schemas = _components(client)
    for name in ("CaseCreateInputRequest", "EligibilityRequest", "CaseCredentialsRequest"):
        assert schemas[name]["additionalProperties"] is False, name
    hashes = schemas["CaseCreateInputRequest"]["properties"]["hashes"]
    assert (hashes["minItems"], hashes["maxItems"]) == (1, MAX_HASHES_PER_CASE)


def test_the_hash_schema_has_one_variant_per_algorithm(client):
    from hashbank.algorithms import ALGORITHMS

    schemas = _components(client)
    hash_input = schemas["HashInputRequest"]
    mapping = hash_input["discriminator"]["mapping"]
    assert set(mapping) == set(ALGORITHMS)
    assert sorted(ref["$ref"] for ref in hash_input["oneOf"]) == sorted(mapping.values())
    for name, ref in mapping.items():
        variant = schemas[ref.rsplit("/", 1)[1]]
        assert variant["additionalProperties"] is False
        assert ("quality" in variant["required"]) == ALGORITHMS[name].has_quality


@pytest.fixture(scope="module")
def hash_schema_validator(django_db_blocker):
    """A JSON Schema validator for one hash, from the served schema's own components."""
    from django.test import Client
    from jsonschema import Draft4Validator

    with django_db_blocker.unblock():
        components = yaml.safe_load(Client().get("/api/schema/").content)["components"]
    root = {"components": components, "$ref": "#/components/schemas/HashInputRequest"}
    return Draft4Validator(root)


# Hashes near every rule: each algorithm's own length and the lengths beside
# it, hex in either case, other letters, any text, and qualities around the bounds.
_HEX = "0123456789abcdefABCDEF"


def _hex(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=_HEX, min_size=n, max_size=n)


_values = st.one_of(
    st.sampled_from([31, 33, 63, 65, 0]).flatmap(_hex),
    st.sampled_from([32, 64]).flatmap(
        lambda n: st.text(alphabet="0123456789abcdefgxz \n", min_size=n, max_size=n)
    ),
    st.text(max_size=80),
)
# Each side of both bounds, always among the first draws, then any quality in between.
_near_bounds = st.sampled_from([49, 50, 100, 101]) | st.integers(40, 110)
_qualities = st.one_of(st.integers(45, 101), st.none(), st.integers(), st.booleans(), st.text())


@st.composite
def _hash_items(draw: st.DrawFn) -> dict:
    """About half are valid hashes, the rest wrong in one or more ways."""
    algorithm = draw(st.sampled_from(["pdq", "md5", "pdq", "md5", "PDQ", "sha256", ""]))
    length = {"pdq": 64, "md5": 32}.get(algorithm, 64)
    item = {"algorithm": algorithm}
    item["value"] = draw(_hex(length) if draw(st.integers(0, 3)) else _values)
    if draw(st.booleans()) if algorithm != "pdq" else draw(st.integers(0, 5)):
        item["quality"] = draw(_near_bounds if draw(st.integers(0, 3)) else _qualities)
    if not draw(st.integers(0, 9)):
        item[draw(st.sampled_from(["Value", "qualty", "note"]))] = draw(st.text(max_size=3))
    return item


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=_hash_items())
def test_the_hash_schema_accepts_what_the_api_accepts(hash_schema_validator, item):
    """A client that follows the schema is never refused, and the schema admits nothing
    the API refuses. The one leniency: the API takes an explicit `"quality": null` on an
    md5 hash, which the schema leaves out."""
    from cases.serializers import HashInputSerializer

    by_schema = hash_schema_validator.is_valid(item)
    by_api = HashInputSerializer(data=item).is_valid()
    if by_api and not by_schema:
        assert item["algorithm"] == "md5" and item.get("quality", 0) is None, item
    else:
        assert by_schema == by_api, item
