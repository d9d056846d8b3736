"""Sync peer banks now, instead of waiting for the beat; prints the results as JSON.

For operators: to see at once whether a new peer works, or to resume a peer whose import
was stopped (``--resume``) once its operators explained why. Exits with an error when a
sync failed or was refused; the JSON says which and why.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.federation.services import peer_sync, peers_sync_all
from exchange.models import Peer


class Command(BaseCommand):
    help = "Sync one peer (--peer NAME) or every active one now; prints JSON results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--peer", help="The peer's name (default: every active peer).")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="Resume a stopped peer first (needs --peer): only after checking why it stopped.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["resume"] and not options["peer"]:
            raise CommandError("--resume needs --peer NAME: resume peers one at a time.")
        if options["peer"]:
            peer = Peer.objects.filter(name=options["peer"]).first()
            if peer is None:
                raise CommandError(f"No peer named {options['peer']!r}.")
            results = [peer_sync(peer_id=peer.pk, resume=options["resume"])]
        else:
            results = peers_sync_all()
        self.stdout.write(json.dumps({"results": [r.to_json() for r in results]}, indent=2))
        failed = [r.peer for r in results if r.failed]
        if failed:
            raise CommandError(f"Sync failed or refused for: {', '.join(failed)}")
