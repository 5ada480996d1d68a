"""Run the processors of ``TROVE["processors"]`` (SPEC §9): each gets every matching
version of the feed in position order, and its position is kept in the database, so a
restarted run resumes where it stopped. With ``--once``, handle what is there and exit
(status 1 if a processor failed); otherwise run until interrupted (SIGINT or SIGTERM stop
it after the version in hand)."""

import signal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from trove import processors


class Command(BaseCommand):
    help = "Run Trove's processors (TROVE['processors']) over the feed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", help="Processors to run (default: all).")
        parser.add_argument(
            "--once", action="store_true", help="Handle what is in the feed now, then exit."
        )

    def handle(self, *args: Any, names: list[str], once: bool, **options: Any) -> None:
        try:
            chosen = processors.configured(names)
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from error
        if not chosen:
            raise CommandError("TROVE['processors'] declares no processor.")
        stopping = []

        def stop(signum, frame) -> None:
            stopping.append(signum)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            healthy = processors.run(chosen, once=once, should_stop=lambda: bool(stopping))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        for processor in chosen:
            self.stdout.write(
                f"{processor.name}: at position {processors.position_of(processor.name)}"
                + (" (failing; see the admin or the log)" if processor.failed else "")
            )
        if once and not healthy:
            raise CommandError("A processor failed; it will resume at the failed version.")
