"""Rotate or revoke a partner's credentials (when one leaks, or on a schedule).

`rotate` revokes the current credentials of the chosen kinds and prints new
ones, once, as JSON; `revoke` only revokes.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from exchange.models import Credential, Partner
from exchange.services import PARTNER_KINDS, credentials_revoke, credentials_rotate


class Command(BaseCommand):
    help = "Rotate or revoke a partner's credentials; new secrets are printed once (JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["rotate", "revoke"])
        parser.add_argument("partner", help="Partner name or id.")
        parser.add_argument(
            "--kinds",
            default=",".join(PARTNER_KINDS),
            help=f"Comma-separated kinds (default all): {', '.join(Credential.Kind.values)}",
        )
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        ref = options["partner"]
        partner = Partner.objects.filter(name=ref).first()
        if partner is None and ref.isdigit():
            partner = Partner.objects.filter(pk=int(ref)).first()
        if partner is None:
            raise CommandError(f"no partner named {ref!r}")
        kinds = [k.strip() for k in options["kinds"].split(",") if k.strip()]
        unknown = sorted(set(kinds) - set(Credential.Kind.values))
        if unknown:
            raise CommandError(f"unknown credential kind(s): {', '.join(unknown)}")
        with transaction.atomic():
            if options["action"] == "rotate":
                issued = credentials_rotate(partner=partner, kinds=kinds)
                result: dict[str, Any] = {"credentials": issued}
            else:
                result = {"revoked": credentials_revoke(partner=partner, kinds=kinds)}
            if options["dry_run"]:
                transaction.set_rollback(True)
                result = {"would": options["action"], "kinds": kinds}
        self.stdout.write(
            json.dumps({"partner": partner.name, "action": options["action"], **result}, indent=2)
        )
