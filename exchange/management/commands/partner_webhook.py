"""Set a partner's webhook URL, or rotate its webhook secret; prints the secret once.

A new secret does not stop the old one at once: both sign every push for 24
hours, so the partner can switch without dropping messages. After a compromise,
``--revoke-previous`` drops the old secret at once: only the new one signs.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from exchange.models import Partner
from exchange.push.services import partner_webhook_set, webhook_secret_issue
from webapi.errors import DomainError


class Command(BaseCommand):
    help = "Set a partner's webhook URL or rotate its whsec_ secret (printed once, JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("partner", help="Partner name.")
        parser.add_argument("--url", help="New webhook URL (issues a new secret).")
        parser.add_argument("--rotate-secret", action="store_true")
        parser.add_argument(
            "--revoke-previous",
            action="store_true",
            help="After a compromise: the old secret stops signing at once (no 24 h overlap).",
        )
        parser.add_argument(
            "--from-end", action="store_true", help="Push only entries added from now on."
        )
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        partner = Partner.objects.filter(name=options["partner"]).first()
        if partner is None:
            raise CommandError(f"no partner named {options['partner']!r}")
        if not options["url"] and not options["rotate_secret"]:
            raise CommandError("give --url URL or --rotate-secret")
        try:
            with transaction.atomic():
                if options["url"]:
                    secret = partner_webhook_set(
                        partner=partner,
                        url=options["url"],
                        start_at_end=options["from_end"],
                        revoke_previous=options["revoke_previous"],
                    )
                else:
                    if not partner.webhook_url:
                        raise CommandError("the partner has no webhook URL; give --url")
                    secret = webhook_secret_issue(
                        partner=partner, revoke_previous=options["revoke_previous"]
                    )
                if options["dry_run"]:
                    transaction.set_rollback(True)
                    secret = ""
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            json.dumps(
                {
                    "partner": partner.name,
                    "webhook_url": options["url"] or partner.webhook_url,
                    "webhook_secret": secret,
                    "dry_run": options["dry_run"],
                    "note": "Shown once. "
                    + (
                        "The previous secret no longer signs."
                        if options["revoke_previous"]
                        else "The previous secret keeps co-signing for 24 hours."
                    ),
                },
                indent=2,
            )
        )
