"""Escalated disputes are the operators' (``reviewers.decide_escalated``), and the
roles are synced again to give it to them (reviewers/roles.py)."""

from django.db import migrations


def roles(apps, schema_editor):
    from reviewers.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("reviewers", "0002_roles"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="dispute",
            options={
                "permissions": [
                    ("take_dispute", "Can take a dispute (assign it to oneself)"),
                    ("decide_dispute", "Can keep, propose disabling, re-enable or escalate"),
                    ("confirm_disable", "Can confirm another reviewer's disable"),
                    (
                        "decide_escalated",
                        "Can take and decide a dispute escalated to an operator",
                    ),
                    ("flag_hash", "Can flag a hash for review"),
                ]
            },
        ),
        migrations.RunPython(roles, migrations.RunPython.noop),
    ]
