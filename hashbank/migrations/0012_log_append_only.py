"""The log can't be rewritten: PostgreSQL refuses to change or delete its rows.

``hashbank_logentry`` and ``hashbank_treenode`` are the signed log
(``docs/LOG_FORMAT.md``): partners and peers hold checkpoints over them, so a
row changed after the fact shows up as a fork, but only once someone checks.
These triggers refuse it at the source, whoever runs the SQL (a bug, an admin
shell, a compromised web process):

- ``UPDATE`` of a tree node, and ``DELETE`` of either, always;
- ``UPDATE`` of a log entry, except the one change redaction makes
  (``hashbank.log.log_redact``): ``redacted`` from false to true, every other
  column as it was.

``TRUNCATE`` is not refused by a trigger: it needs the table owner's (or the
TRUNCATE) privilege, which the least-privilege role of README ("Database
roles") does not have, and the owner can drop a trigger anyway. A TRUNCATE
trigger would also break Django's ``flush``, which the test suite relies on.

These are the project's only SQL functions (they supersede the older rule
"the project defines no SQL functions", which was about a PL/pgSQL copy of
the publish rule, dropped by migration 0009). SQLite has no equivalent: there
the migration does nothing.
"""

from django.db import migrations

CREATE = r"""
CREATE FUNCTION hashbank_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- PL/pgSQL does not promise to short-circuit AND: tree nodes have no
    -- "redacted", so the redaction test is only reached for log entries.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'hashbank_logentry' THEN
        IF (to_jsonb(OLD) ->> 'redacted')::boolean = false
           AND (to_jsonb(NEW) ->> 'redacted')::boolean = true
           AND (to_jsonb(NEW) - 'redacted') = (to_jsonb(OLD) - 'redacted') THEN
            RETURN NEW;  -- redaction: the one change allowed
        END IF;
    END IF;
    RAISE EXCEPTION 'hashbank: % on % refused: the log is append-only',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only redaction (redacted false to true) may change a log entry.';
END
$$;

CREATE TRIGGER hashbank_logentry_append_only
    BEFORE UPDATE OR DELETE ON hashbank_logentry
    FOR EACH ROW EXECUTE FUNCTION hashbank_log_append_only();
CREATE TRIGGER hashbank_treenode_append_only
    BEFORE UPDATE OR DELETE ON hashbank_treenode
    FOR EACH ROW EXECUTE FUNCTION hashbank_log_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS hashbank_logentry_append_only ON hashbank_logentry;
DROP TRIGGER IF EXISTS hashbank_treenode_append_only ON hashbank_treenode;
DROP FUNCTION IF EXISTS hashbank_log_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("hashbank", "0011_review_hold")]

    operations = [migrations.RunPython(create, drop)]
