"""Check that the configured store is whole: see :mod:`trove.verify` for what is checked.

Each problem is printed on stdout, one per line; the exit status is 1 if there is any,
so a script or a cron job notices.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from trove import verify
from trove.exceptions import TroveError
from trove.management.base import LongCommand
from trove.storage.handler import storages


class Command(LongCommand):
    help = "Check file bytes, link targets, version numbers, positions and the JSON index."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--files",
            action="store_true",
            help="Read every stored file and check its hash (default: that its bytes exist).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        found = 0
        try:
            total = storages.events.last_position()
            with self.progress("Verifying", options, total=total) as progress:
                for problem in verify.problems(
                    storages, read_files=options["files"], progress=progress.advance
                ):
                    found += 1
                    self.stdout.write(problem)
        except TroveError as error:
            raise CommandError(str(error)) from error
        if found:
            raise CommandError(f"{found:,} problem(s) found.", returncode=1)
        self.report("No problems found.", options)
