"""The OpenAPI schema documents the public API and the docs page serves."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_the_schema_documents_the_case_endpoints(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    for path in ("/api/v1/cases", "/api/v1/cases/status", "/api/v1/cases/withdraw"):
        assert "post" in paths[path], path
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
