"""What Trove's long-running commands share: progress options and parsing of JSON options."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from trove.progress import PLAIN_INTERVAL, Progress


class LongCommand(BaseCommand):
    """A command that shows progress on stderr (its stdout may be data) and can be quiet."""

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Show no progress.")
        parser.add_argument(
            "--progress-every",
            type=float,
            default=PLAIN_INTERVAL,
            metavar="SECONDS",
            help="When not on a terminal, a progress line every SECONDS (default 5).",
        )

    def progress(self, description: str, options: dict[str, Any], **kwargs: Any) -> Progress:
        return Progress(
            description,
            self.stderr._out,
            quiet=options["quiet"],
            interval=options["progress_every"],
            **kwargs,
        )

    def report(self, text: str, options: dict[str, Any]) -> None:
        """The closing summary, on stderr unless ``--quiet``."""
        if not options["quiet"]:
            self.stderr.write(text, style_func=lambda line: line)


def json_option(text: str | None, option: str, kind: type = dict) -> Any:
    """The JSON value of a command-line option, or a :class:`CommandError` naming it."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise CommandError(f"{option} is not valid JSON: {error}.") from error
    if not isinstance(value, kind):
        raise CommandError(f"{option} must be a JSON {kind.__name__}.")
    return value
