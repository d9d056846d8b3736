"""Subscribe this bank to a list of another hashbank (federation); prints the peer as JSON.

Operators run this once per imported list, after the peer bank created a partner for this
bank (``partner_create``) and its verifier key was confirmed out of band. The token is read
from a file or the environment, never from the command line, and never printed. Syncing
starts at the next beat (or ``peer_sync --peer NAME``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from exchange.federation.services import peer_add, peer_origin, peer_vkeys
from webapi.errors import DomainError


class Command(BaseCommand):
    help = "Import a list of a peer bank into a local list (verified like a partner feed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A name for the peer, e.g. bank-b.")
        parser.add_argument("--base-url", required=True, help="e.g. https://bank-b.example.org")
        parser.add_argument("--list", required=True, dest="remote_list", help="The peer's list.")
        parser.add_argument(
            "--token-file",
            help="File holding the bearer token the peer issued (or set HASHBANK_PEER_TOKEN).",
        )
        parser.add_argument(
            "--vkey",
            action="append",
            required=True,
            help="The peer list's verifier key, checked out of band (repeat during a rotation).",
        )
        parser.add_argument("--local-list", required=True, help="The local list to import into.")
        parser.add_argument("--dry-run", action="store_true", help="Validate, create nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        token = self._token(options["token_file"])
        try:
            with transaction.atomic():
                peer = peer_add(
                    name=options["name"],
                    base_url=options["base_url"],
                    remote_list=options["remote_list"],
                    token=token,
                    vkeys=options["vkey"],
                    local_list=options["local_list"],
                )
                if options["dry_run"]:
                    transaction.set_rollback(True)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        out = {
            "peer": peer.name,
            "id": None if options["dry_run"] else peer.pk,
            "base_url": peer.base_url,
            "list": peer.remote_list,
            "origin": peer_origin(peer),
            "vkeys": peer_vkeys(peer),
            "local_list": peer.local_list.slug,
            "dry_run": options["dry_run"],
        }
        self.stdout.write(json.dumps(out, indent=2))

    @staticmethod
    def _token(path: str | None) -> str:
        if path:
            try:
                token = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CommandError(f"Cannot read the token file: {exc}") from None
        else:
            token = os.environ.get("HASHBANK_PEER_TOKEN", "").strip()
        if not token:
            raise CommandError("No token: pass --token-file FILE or set HASHBANK_PEER_TOKEN.")
        return token
