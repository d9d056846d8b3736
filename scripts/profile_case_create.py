#!/usr/bin/env python
"""What one case creation (or status check) costs besides the PIN hash: Python and PostgreSQL CPU.

Runs case creations in process through the WSGI handler (the whole request
cycle: middleware, rate limiting, the publish path), with the Argon2 PIN
hash replaced by a constant, against a fresh PostgreSQL database, and prints
the CPU time per request of this process and of its PostgreSQL backend.
``--status`` measures status checks of the cases it made instead (the PIN
check replaced the same way). ``--framework`` serves the requests from
``scripts/bench_cases_framework.py`` instead: the same Django, DRF, rate limit
and serializers, storing nothing; the difference is the bank's own work.

    .venv/bin/python scripts/profile_case_create.py --requests 500
    .venv/bin/python scripts/profile_case_create.py --requests 500 --status

For figures that don't drift with a shared host's speed, count instructions:
run it twice under callgrind and take the difference, so start-up cancels out:

    valgrind --tool=callgrind .venv/bin/python scripts/profile_case_create.py --requests 40
    valgrind --tool=callgrind .venv/bin/python scripts/profile_case_create.py --requests 140

Two questions the redesign had to answer by measurement (BENCHMARKS.md):
``--without-foreign-keys`` drops the bank's foreign-key constraints after
migrating, to price them; ``--server-side-binding`` turns on Django's
``OPTIONS["server_side_binding"]``, with which psycopg prepares statements it
has run five times, to price the prepared statements the bank no longer has.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_cases import random_case_body
from scripts.benchlib import fresh_database, manage, production_env

WARM_UP = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--status", action="store_true", help="measure status checks")
    parser.add_argument("--without-foreign-keys", action="store_true")
    parser.add_argument("--server-side-binding", action="store_true")
    parser.add_argument(
        "--framework", action="store_true", help="the framework alone (bench_cases_framework)"
    )
    args = parser.parse_args(argv)

    env = production_env(
        fresh_database("hashbank_profile"),
        Path(tempfile.mkdtemp()),
        HASHBANK_RATE_CASE_CREATE="1000000/h",
        HASHBANK_RATE_CASE_STATUS="1000000/h",
    )
    manage(env, "migrate", "--noinput")
    os.environ.update(env)
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from cases import pins

    if args.server_side_binding:
        connection.settings_dict["OPTIONS"]["server_side_binding"] = True
    if args.without_foreign_keys:
        _drop_foreign_keys(connection)

    constant = pins.hash_pin("profile")
    pins.hash_pin = lambda pin: constant  # the one cost this script leaves out
    pins.verify = lambda pin_hash, pin: pin_hash == constant
    pins.spend_equal_time = lambda pin: None
    if args.framework:
        from scripts import bench_cases_framework

        app = bench_cases_framework.application
    else:
        app = WSGIHandler()

    def request(path: str, body: bytes) -> bytes:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        }  # fmt: skip
        status: list[str] = []
        response = app(environ, lambda s, headers, exc_info=None: status.append(s))
        content = b"".join(response)
        response.close()
        if not status[0].startswith(("200", "201")):
            raise RuntimeError(f"{path} answered {status[0]}")
        return content

    def create(body: bytes) -> bytes:
        return request("/api/v1/cases", body)

    bodies = [random_case_body() for _ in range(WARM_UP + args.requests)]
    for body in bodies[:WARM_UP]:
        create(body)
    if args.status:
        made = [json.loads(create(body)) for body in bodies[WARM_UP:]]
        bodies = [
            json.dumps({"case_number": c["case_number"], "pin": c["pin"]}).encode()
            for c in made[:WARM_UP] + made
        ]

        def create(body: bytes) -> bytes:  # the measured request: a status check
            return request("/api/v1/cases/status", body)

        for body in bodies[:WARM_UP]:
            create(body)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = Path(f"/proc/{cursor.fetchone()[0]}/stat")

    def backend_cpu() -> float:
        fields = backend.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    python0, backend0 = time.process_time(), backend_cpu()
    for body in bodies[WARM_UP:]:
        create(body)
    python_ms = (time.process_time() - python0) * 1000 / args.requests
    backend_ms = (backend_cpu() - backend0) * 1000 / args.requests
    what = "status check" if args.status else "case creation"
    print(f"per {what}: Python {python_ms:.2f} ms, PostgreSQL backend {backend_ms:.2f} ms")
    return 0


def _drop_foreign_keys(connection: object) -> None:
    """Drop every foreign-key constraint of the bank's own tables (hashes, holds, log)."""
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint"
            " WHERE contype = 'f' AND conrelid::regclass::text LIKE 'hashbank\\_%'"
        )
        for table, name in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    connection.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
