import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reviewers.services import allowlist_load


class Command(BaseCommand):
    help = (
        "Add the hashes in FILE to the allowlist: one a line, '[pdq|md5] value [description]' "
        "('#' starts a comment). All or nothing: a bad line saves none."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="the file of hashes ('-' for standard input)")
        parser.add_argument("--dry-run", action="store_true", help="check the file, save nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["file"]
        try:
            if name == "-":
                lines = sys.stdin.read().splitlines()
            else:
                with open(name, encoding="utf-8") as f:
                    lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{name}: {exc}") from None
        report = allowlist_load(user=None, lines=lines, dry_run=options["dry_run"])
        if report.errors:
            raise CommandError("nothing saved:\n" + "\n".join(report.errors))
        verb = "would add" if options["dry_run"] else "added"
        self.stdout.write(f"{verb} {report.added}; {report.present} already on the allowlist")
