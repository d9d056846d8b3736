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
