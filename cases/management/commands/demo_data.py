"""Load a few demonstration cases on both lists, so a newcomer sees a working bank.

Idempotent: does nothing when cases already exist. The demo case numbers and
PINs are printed because they are fake; real ones are never printed or logged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.management.base import BaseCommand

from cases.models import Case
from cases.services import Eligibility, case_create
from hashbank.services import HashInput


def _fake_hash(seed: str, algorithm: str) -> HashInput:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    if algorithm == "md5":
        return HashInput(algorithm="md5", value=digest[:32])
    return HashInput(algorithm="pdq", value=digest, quality=90)


class Command(BaseCommand):
    help = "Create demo cases on the adult and minor lists (only when no cases exist)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Say what would be created.")

    def handle(self, *args: Any, **options: Any) -> None:
        if Case.objects.exists():
            self.stdout.write(json.dumps({"created": [], "note": "cases exist; nothing to do"}))
            return
        plans = [
            ("adult", False, [("demo-a1", "pdq"), ("demo-a2", "pdq"), ("demo-a3", "md5")]),
            ("adult", False, [("demo-a4", "pdq")]),
            ("minor", True, [("demo-m1", "pdq"), ("demo-m2", "md5")]),
        ]
        created = []
        for slug, minor, hashes in plans:
            if options["dry_run"]:
                created.append({"list": slug, "hashes": len(hashes)})
                continue
            result = case_create(
                eligibility=Eligibility(
                    in_image=True, under_18_at_capture=minor, has_media=True, intimate=True
                ),
                hashes=[_fake_hash(seed, algo) for seed, algo in hashes],
            )
            created.append(
                {
                    "list": slug,
                    "case_number": result.case_number,
                    "pin": result.pin,
                    "hashes": len(hashes),
                }
            )
        self.stdout.write(json.dumps({"created": created, "dry_run": options["dry_run"]}, indent=2))
