"""The log can't be rewritten: PostgreSQL refuses every change but redaction.

Migration ``hashbank/migrations/0012_log_append_only.py`` (triggers) and the
least-privilege role README gives for the web and worker processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from hashbank.log import log_redact
from hashbank.models import HashList, LogEntry, TreeNode
from tests.celery_worker import database_url
from tests.conftest import md5, pdq

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the triggers exist on PostgreSQL only"
)
README = Path(__file__).resolve().parents[2] / "README.md"


def refused(sql: str, *params: object) -> str:
    """Run ``sql``; it must fail. Returns the database's message."""
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    return str(caught.value)


@pytest.fixture
def logged(make_case):
    """A list with a few entries and tree nodes."""
    for n in range(4):
        make_case(pdq(f"append-only-{n}"), md5(f"append-only-{n}"))
    adult = HashList.objects.get(slug="adult")
    assert TreeNode.objects.filter(hash_list=adult).exists()
    return adult


def test_an_update_of_a_leaf_is_refused(logged):
    message = refused(
        "UPDATE hashbank_logentry SET leaf = %s WHERE hash_list_id = %s AND index = 0",
        b"forged",
        logged.pk,
    )
    assert "append-only" in message
    assert "UPDATE on hashbank_logentry refused" in message


def test_an_update_of_a_timestamp_is_refused_even_with_a_redaction(logged):
    message = refused(
        "UPDATE hashbank_logentry SET redacted = true, timestamp = timestamp + 1 "
        "WHERE hash_list_id = %s AND index = 0",
        logged.pk,
    )
    assert "append-only" in message


def test_deleting_an_entry_or_a_tree_node_is_refused(logged):
    assert "DELETE on hashbank_logentry refused" in refused(
        "DELETE FROM hashbank_logentry WHERE hash_list_id = %s AND index = 7", logged.pk
    )
    assert "DELETE on hashbank_treenode refused" in refused(
        "DELETE FROM hashbank_treenode WHERE hash_list_id = %s", logged.pk
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LogEntry.objects.filter(hash_list=logged).delete()


def test_an_update_of_a_tree_node_is_refused(logged):
    assert "UPDATE on hashbank_treenode refused" in refused(
        "UPDATE hashbank_treenode SET hash = %s WHERE hash_list_id = %s", b"x" * 32, logged.pk
    )


def test_redaction_works_and_cannot_be_undone(logged):
    log_redact(hash_list=logged, indexes=[0, 1])
    assert set(
        LogEntry.objects.filter(hash_list=logged, redacted=True).values_list("index", flat=True)
    ) == {0, 1}
    assert "append-only" in refused(
        "UPDATE hashbank_logentry SET redacted = false WHERE hash_list_id = %s AND index = 0",
        logged.pk,
    )
    # Redacting again changes nothing and is no redaction: refused too.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LogEntry.objects.filter(hash_list=logged, index=1).update(redacted=True)


def test_withdrawal_still_redacts_through_the_triggers(make_case):
    from cases.services import case_withdraw

    created = make_case(pdq("withdrawn-under-triggers"))
    case_withdraw(case=created.case)
    assert LogEntry.objects.filter(op="add", redacted=True).exists()


# --- The least-privilege role of README ------------------------------------------------


def readme_role_sql() -> str:
    """The SQL README gives for the web and worker role (``hashbank_app``)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Database roles", 1)[1]
    block = re.search(r"```sql\n(.*?)```", section, re.S)
    assert block, "README's 'Database roles' section has no sql block"
    return block.group(1)


APP_SCRIPT = """
import django
django.setup()
from django.db import DatabaseError, connection, transaction
from cases.services import Eligibility, case_create, case_withdraw
from hashbank.services import HashInput
eligible = Eligibility(in_image=True, under_18_at_capture=False, has_media=True, intimate=True)
created = case_create(eligibility=eligible, hashes=[HashInput("md5", "ab" * 16, None)])
case_withdraw(case=created.case)
for sql in ("DELETE FROM hashbank_logentry", "TRUNCATE hashbank_treenode",
            "UPDATE hashbank_logentry SET timestamp = 0",
            "DROP TRIGGER hashbank_logentry_append_only ON hashbank_logentry",
            "CREATE TABLE hashbank_sneaky (id int)"):
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
    except DatabaseError as exc:
        print("REFUSED", sql.split()[0], type(exc).__name__, str(exc).splitlines()[0])
    else:
        print("ALLOWED", sql)
print("OK", created.case.pk)
"""


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_readme_role_creates_and_withdraws_cases_and_cannot_touch_the_log(tmp_path):
    role = f"hashbank_app_{uuid.uuid4().hex[:8]}"
    admin_url = database_url(connection.settings_dict)
    sql = readme_role_sql().replace("hashbank_app", role).replace("change-me", "pw-" + role)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)
    try:
        parts = urlsplit(admin_url)
        app_url = urlunsplit(
            parts._replace(netloc=f"{role}:pw-{role}@{parts.hostname}:{parts.port or 5432}")
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "1",
            "DATABASE_URL": app_url,
            "HASHBANK_VAR_DIR": str(tmp_path),
        }
        env.pop("CELERY_BROKER_URL", None)
        done = subprocess.run(
            [sys.executable, "-c", APP_SCRIPT],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        lines = done.stdout.splitlines()
        assert not [line for line in lines if line.startswith("ALLOWED")], done.stdout
        assert len([line for line in lines if line.startswith("REFUSED")]) == 5
        assert lines[-1].startswith("OK")
        assert LogEntry.objects.filter(op="remove").exists()
        assert LogEntry.objects.filter(op="add", redacted=True).exists()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
