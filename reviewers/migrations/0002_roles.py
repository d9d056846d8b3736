"""The reviewers, operators and auditors groups and their permissions (reviewers/roles.py)."""

from django.db import migrations


def roles(apps, schema_editor):
    from reviewers.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("reviewers", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        # The apps whose permissions the roles name: a dependency by name, not an import.
        ("hashbank", "0011_review_hold"),
        ("exchange", "0006_peer_applied_size"),
        ("cases", "0002_fewer_indexes"),
    ]

    operations = [migrations.RunPython(roles, migrations.RunPython.noop)]
