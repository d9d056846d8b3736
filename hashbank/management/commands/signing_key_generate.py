"""Generate the bank's Ed25519 signing key into a file (mode 0600).

Run once when setting up a bank, then point HASHBANK_SIGNING_KEY_FILE at the
file (or put its key line in HASHBANK_SIGNING_KEY). Prints the public verifier
keys per list as JSON; the private key is never printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hashbank.keyring import new_keyring, parse_keyring
from hashbank.models import HashList


def write_secret_file(path: Path, text: str, *, overwrite: bool) -> None:
    """Write atomically with owner-only permissions."""
    if path.exists() and not overwrite:
        raise CommandError(f"{path} exists; refusing to overwrite a signing key")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def vkeys_json(text: str) -> list[dict[str, str]]:
    keys = parse_keyring(text)
    out = []
    for slug in HashList.objects.values_list("slug", flat=True):
        name = f"{settings.BANK_ORIGIN}/lists/{slug}"
        out += [{"list": slug, "vkey": k.signer(name).vkey, "status": k.status} for k in keys]
    return out


class Command(BaseCommand):
    help = "Generate a new signing key file (mode 0600); prints the verifier keys as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", required=True, type=Path)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        text = new_keyring()
        if not options["dry_run"]:
            write_secret_file(options["file"], text, overwrite=False)
        self.stdout.write(
            json.dumps(
                {
                    "file": str(options["file"]),
                    "dry_run": options["dry_run"],
                    "verifier_keys": vkeys_json(text),
                },
                indent=2,
            )
        )
