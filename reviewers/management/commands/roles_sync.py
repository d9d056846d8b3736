from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand

from reviewers.roles import roles_sync


class Command(BaseCommand):
    help = "Create the reviewers, operators and auditors groups and set their permissions."

    def handle(self, *args: Any, **options: Any) -> None:
        roles_sync(apps)
        self.stdout.write("groups reviewers, operators and auditors are up to date")
