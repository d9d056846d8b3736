"""The three staff roles, as Django groups with permissions.

- ``reviewers`` work the dispute queue: take, keep, propose and confirm a
  disable, re-enable, escalate, export the journal. They read the bank's lists
  and hashes and nothing of the exchange (partners, credentials, peers).
- ``operators`` run the bank: partners, credentials (keys), peers and the
  allowlist; they flag hashes and may take part in decisions, but never confirm
  a disable (``reviewers.confirm_disable``), so they can't decide one alone.
  A dispute a reviewer escalated is theirs: only they may take it, keep it or
  propose disabling it (``reviewers.decide_escalated``); a reviewer confirms.
- ``auditors`` read everything (every ``view_`` permission) and change nothing.

Applied by the data migration ``0002_roles`` and again by ``manage.py roles_sync``
(after an app adds models, so auditors and operators see them too). Written for
historical models (``apps`` of a migration) as well as the live ones.
"""

from __future__ import annotations

from typing import Any

REVIEWERS = "reviewers"
OPERATORS = "operators"
AUDITORS = "auditors"

#: Seeing a hash value in full lets whoever holds a file confirm it was submitted
#: (README, "Operators' admin"): reviewers and operators need it, auditors don't.
HASH_VALUES = "hashbank.view_hash_value"

_REVIEWER_PERMISSIONS = [
    HASH_VALUES,
    "hashbank.view_hashlist",
    "hashbank.view_hash",
    "hashbank.view_hold",
    "hashbank.view_logentry",
    "reviewers.view_dispute",
    "reviewers.view_decision",
    "reviewers.view_allowlistentry",
    "reviewers.take_dispute",
    "reviewers.decide_dispute",
    "reviewers.confirm_disable",
    "reviewers.export_journal",
]

_OPERATOR_PERMISSIONS = [
    HASH_VALUES,
    "hashbank.change_hashlist",
    "reviewers.add_allowlistentry",
    "reviewers.delete_allowlistentry",
    "reviewers.take_dispute",
    "reviewers.decide_dispute",
    "reviewers.flag_hash",
    "reviewers.decide_escalated",
    "reviewers.export_journal",
]

#: Apps whose every model operators manage (add, change, delete, view).
_OPERATOR_APPS = ["exchange"]


def roles_sync(apps: Any) -> None:
    """Create the groups (if missing) and set exactly these permissions on them."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # Permissions are otherwise created after all migrations (post_migrate), and only
        # for app configs with a models module, which a migration's historical ones lack.
        historical = getattr(app_config, "models_module", None) is None
        if historical:
            app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        if historical:
            app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    every = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    views = [
        name for name in every if name.split(".", 1)[1].startswith("view_") and name != HASH_VALUES
    ]
    operator_apps = [name for name in every if name.split(".", 1)[0] in _OPERATOR_APPS]
    roles = {
        REVIEWERS: _REVIEWER_PERMISSIONS,
        OPERATORS: [*views, *operator_apps, *_OPERATOR_PERMISSIONS],
        AUDITORS: [*views, "reviewers.export_journal"],
    }
    for name, permissions in roles.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(sorted({every[p] for p in permissions if p in every}))
