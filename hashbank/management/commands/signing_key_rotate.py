"""Rotate the signing key in a key file, in two steps partners can follow.

`start`: the current key becomes `retiring`, a new key becomes `active`; every
checkpoint now carries both signatures and /exchange/v1/keys lists both.
Partners pin the new verifier key. `finish`: the retiring key is dropped.
Restart the web processes after each step so they load the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hashbank import tlog
from hashbank.keyring import KeyringError, SigningKey, format_keyring, parse_keyring
from hashbank.management.commands.signing_key_generate import vkeys_json, write_secret_file


class Command(BaseCommand):
    help = "Rotate the signing key in a key file: start (add new, retire old) or finish."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("step", choices=["start", "finish"])
        parser.add_argument("--file", required=True, type=Path)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            keys = parse_keyring(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except KeyringError as exc:
            raise CommandError(f"{path}: {exc}") from None
        if options["step"] == "start":
            if any(k.status == "retiring" for k in keys):
                raise CommandError("a rotation is already under way: run 'finish' first")
            keys = [SigningKey(k.private_key, "retiring") for k in keys]
            keys.insert(0, SigningKey(tlog.generate_private_key(), "active"))
        else:
            if not any(k.status == "retiring" for k in keys):
                raise CommandError("no rotation under way")
            keys = [k for k in keys if k.status == "active"]
        text = format_keyring(keys)
        if not options["dry_run"]:
            write_secret_file(path, text, overwrite=True)
        self.stdout.write(
            json.dumps(
                {
                    "file": str(path),
                    "step": options["step"],
                    "dry_run": options["dry_run"],
                    "verifier_keys": vkeys_json(text),
                    "next": "restart the web and worker processes to load the keys",
                },
                indent=2,
            )
        )
