"""Seal every stored secret again under the current HASHBANK_ENCRYPTION_KEY.

Rotating the key (say, after someone who knew it left): set the new key as
HASHBANK_ENCRYPTION_KEY and the old one as HASHBANK_ENCRYPTION_KEY_OLD, restart,
run this command, then remove HASHBANK_ENCRYPTION_KEY_OLD and restart again.
Until this has run, the old key is still needed; afterwards it opens nothing
the bank stores. Everything is re-sealed in one transaction, or nothing is.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.services import secrets_reseal
from webapi.errors import DomainError


class Command(BaseCommand):
    help = "Re-seal every stored secret (webhook secrets, peer tokens) under the current key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check that every secret opens and count them; write nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = secrets_reseal(dry_run=options["dry_run"])
        except DomainError as exc:
            raise CommandError(f"{exc.message}. Nothing was changed.") from None
        verb = "would re-seal" if options["dry_run"] else "re-sealed"
        self.stdout.write(
            f"{verb} {report.sealed} secrets under the current HASHBANK_ENCRYPTION_KEY "
            f"({report.under_old_keys} were under an old key)."
        )
        if not options["dry_run"]:
            self.stdout.write("HASHBANK_ENCRYPTION_KEY_OLD can now be removed.")
