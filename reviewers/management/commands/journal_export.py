from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from reviewers.selectors import journal
from reviewers.services import journal_write


class Command(BaseCommand):
    help = "Write the reviewers' journal as JSON Lines (one decision a line, oldest first)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--output", "-o", help="a file (default: standard output)")
        parser.add_argument("--since", help="only decisions at or after this ISO 8601 time")

    def handle(self, *args: Any, **options: Any) -> None:
        since = None
        if options["since"]:
            since = parse_datetime(options["since"])
            if since is None:
                raise CommandError("--since: not an ISO 8601 date and time")
        decisions = journal(since=since).iterator()
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as out:
                count = journal_write(out=out, decisions=decisions)
            self.stderr.write(f"{count} decisions written to {options['output']}")
        else:
            journal_write(out=self.stdout, decisions=decisions)
