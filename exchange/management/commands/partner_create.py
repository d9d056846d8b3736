"""Register a partner platform and print its credentials, once, as JSON.

Operators run this when a platform joins. The secrets are not stored anywhere
in readable form: hand them to the partner over a secure channel, then forget.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from exchange.push.services import partner_webhook_set
from exchange.services import partner_create
from hashbank.log import list_origin, list_verifiers
from webapi.errors import DomainError


class Command(BaseCommand):
    help = "Create a partner with read access to lists; prints its credentials once (JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--lists",
            required=True,
            help="Comma-separated list slugs, e.g. adult or adult,minor (naming minor grants it).",
        )
        parser.add_argument("--webhook", default="", help="URL for pushed entries (optional).")
        parser.add_argument("--contact-email", default="")
        parser.add_argument("--dry-run", action="store_true", help="Validate, create nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = [s.strip() for s in options["lists"].split(",") if s.strip()]
        try:
            with transaction.atomic():
                partner, secrets_ = partner_create(
                    name=options["name"],
                    lists=slugs,
                    contact_email=options["contact_email"],
                )
                if options["webhook"]:
                    secrets_["webhook_secret"] = partner_webhook_set(
                        partner=partner, url=options["webhook"]
                    )
                if options["dry_run"]:
                    transaction.set_rollback(True)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        out = {
            "partner": partner.name,
            "id": None if options["dry_run"] else partner.pk,
            "lists": slugs,
            "dry_run": options["dry_run"],
            "credentials": {} if options["dry_run"] else secrets_,
            "verifier_keys": {
                slug: [
                    {"origin": list_origin(slug), "vkey": v, "status": s}
                    for v, s in list_verifiers(slug)
                ]
                for slug in slugs
            },
            "note": "Shown once. Only hashes of these credentials are stored.",
        }
        self.stdout.write(json.dumps(out, indent=2))
