"""Give a staff user a TOTP device for the admin's two-factor sign-in.

With HASHBANK_ADMIN_REQUIRE_2FA (on when DEBUG is off) a staff user can't use
the admin without one. The secret is shown once, as an otpauth:// URI and as a
QR code in the terminal, to be scanned into an authenticator app in front of
the person it belongs to; it is not shown again. Run it again with --replace
after a phone is lost: the old device stops working at once.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Enrol a TOTP device for a staff user; prints its otpauth URI and a QR code once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Delete the user's TOTP devices first (a lost or compromised phone).",
        )
        parser.add_argument("--no-qr", action="store_true", help="Print the URI only.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the user; create nothing, print no secret.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(options["username"])
        except user_model.DoesNotExist:
            raise CommandError(f"no user {options['username']!r}") from None
        if not user.is_staff:
            raise CommandError(f"{options['username']!r} is not staff: the admin would refuse them")
        with transaction.atomic():
            existing = TOTPDevice.objects.select_for_update().filter(user=user)
            if existing.exists() and not options["replace"]:
                raise CommandError(
                    f"{options['username']!r} has a TOTP device already; --replace deletes it"
                )
            if options["dry_run"]:
                self.stdout.write(f"would enrol a TOTP device for {options['username']!r}")
                return
            existing.delete()
            device = TOTPDevice.objects.create(user=user, name="admin", confirmed=True)
        uri = device.config_url
        self.stdout.write(
            "Scan this into the authenticator app now; it is not shown again.\n" + uri + "\n"
        )
        if not options["no_qr"]:
            # Whole, so OutputWrapper adds no line endings inside the code.
            drawn = io.StringIO()
            segno.make(uri, error="m").terminal(out=drawn, compact=True)
            self.stdout.write(drawn.getvalue(), ending="")
