"""Static files are served for real when DEBUG is off: whitenoise, compressed, hashed names.

Django starts in a fresh process with production settings, as gunicorn would
run it; `collectstatic` runs first, as the Dockerfile does. Requests go through
the WSGI application itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.config.test_settings import BASE_DIR, production_env, run

PLAIN_NAMES = ("/static/cases/pdq.js", "/static/cases/hash-worker.js", "/static/cases/hash-file.js")

# Runs in the production process: GET each path through config.wsgi.application.
FETCH = r"""
import json, re, sys
import django
django.setup()
from django.contrib.staticfiles.storage import staticfiles_storage
from config.wsgi import application

def get(path, encoding=""):
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "hashbank.example.org", "SERVER_PORT": "443",
        "HTTP_HOST": "hashbank.example.org", "wsgi.url_scheme": "https",
        "wsgi.input": __import__("io").BytesIO(), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "HTTP_ACCEPT_ENCODING": encoding,
    }
    seen = {}
    def start_response(status, headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = {k.lower(): v for k, v in headers}
    body = b"".join(application(environ, start_response))
    return {"status": seen["status"], "headers": seen["headers"], "length": len(body),
            "text": body[:200000].decode("utf-8", "replace") if not encoding else ""}

page = get("/")
paths = {
    "page_scripts": re.findall(r'<script[^>]* src="([^"]+)"', page["text"]),
    "worker": re.search(r'data-worker-url="([^"]+)"', page["text"]).group(1),
    "admin_css": staticfiles_storage.url("admin/css/base.css"),
}
answers = {"page": page, "paths": paths}
for src in paths["page_scripts"] + [paths["worker"], paths["admin_css"]]:
    answers[src] = get(src)
    answers[src + " br"] = get(src, "br, gzip")
for name in PLAIN_NAMES:
    answers[name] = get(name)
print(json.dumps(answers))
""".replace("PLAIN_NAMES", repr(PLAIN_NAMES))


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("production")
    env = production_env(tmp_path, STATIC_ROOT=str(tmp_path / "static"))
    collected = run(env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr[-2000:]
    result = subprocess.run(
        [sys.executable, "-c", FETCH],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answers


def test_production_serves_the_page_scripts_and_the_admin_styles(answers: dict[str, Any]) -> None:
    page = answers["page"]
    assert page["status"] == 200
    assert "script-src 'self'" in page["headers"]["content-security-policy"]
    paths = answers["paths"]
    hashed = [*paths["page_scripts"], paths["worker"], paths["admin_css"]]
    assert any("/static/cases/journey." in src for src in hashed)
    for src in hashed:
        if src.startswith("/static/"):
            # A content hash in the name, so browsers may cache it for ever.
            assert re.search(r"\.[0-9a-f]{12}\.(js|css)$", src), src
            answer = answers[src]
            assert answer["status"] == 200, src
            assert answer["length"] > 0
            assert "immutable" in answer["headers"]["cache-control"], src
            assert answers[src + " br"]["headers"].get("content-encoding") == "br", src
    assert answers[paths["admin_css"]]["headers"]["content-type"].startswith("text/css")


def test_the_hashing_module_is_also_served_under_its_plain_name(answers: dict[str, Any]) -> None:
    """/static/cases/pdq.js is a stable address for outside users, and the hashed
    worker's own imports (./hash-file.js, ./pdq.js) resolve to plain names."""
    for name in (
        "/static/cases/pdq.js",
        "/static/cases/hash-worker.js",
        "/static/cases/hash-file.js",
    ):
        assert answers[name]["status"] == 200, name
        assert "javascript" in answers[name]["headers"]["content-type"], name
        assert "export" in answers[name]["text"] or "import" in answers[name]["text"]
