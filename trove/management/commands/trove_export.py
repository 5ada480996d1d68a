"""Write stored events as JSON Lines or CloudEvents (SPEC §10), streaming.

The events are read from the feed a page at a time, in position order, and written one
line each, so memory stays flat whatever the size of the store; ``trove_import`` reads
the same lines back in the same order (link targets come before the links to them).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import CommandError

from trove.cloudevents import to_cloudevent
from trove.documents import Event
from trove.exceptions import QueryError, TroveError
from trove.interchange import exported_versions
from trove.management.base import LongCommand, json_option
from trove.query import EventQuery
from trove.storage.base import FileStorage
from trove.storage.handler import storages


class Command(LongCommand):
    help = "Export events as JSON Lines (default) or CloudEvents, to stdout or a file."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--format", choices=["jsonl", "cloudevents"], default="jsonl")
        parser.add_argument(
            "--query", help="An EventQuery (JSON) the latest version of an event must match."
        )
        parser.add_argument(
            "--all-versions",
            action="store_true",
            help="Every version of the events exported, not only the latest.",
        )
        parser.add_argument(
            "--files", metavar="DIR", help="Also write the bytes of every file to DIR/sha256/<hex>."
        )
        parser.add_argument("-o", "--output", metavar="FILE", help="Write here, not to stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        query = self.query(options["query"])
        files_dir = Path(options["files"]) if options["files"] else None
        line = _cloudevent_line if options["format"] == "cloudevents" else _document_line
        events = storages.events
        exported = 0
        try:
            with (
                _output(options["output"], self.stdout._out) as out,
                self.progress("Exporting", options, total=events.last_position()) as progress,
            ):
                reached = 0
                for event in exported_versions(events, query, all_versions=options["all_versions"]):
                    out.write(line(event))
                    if files_dir is not None:
                        _write_files(storages.files, event, files_dir)
                    exported += 1
                    progress.advance(event.stored_position - reached)
                    reached = event.stored_position
        except TroveError as error:
            raise CommandError(str(error)) from error
        self.report(f"Exported {exported:,} versions.", options)

    def query(self, text: str | None) -> EventQuery | None:
        data = json_option(text, "--query")
        if data is None:
            return None
        for key in ("limit", "offset", "sort"):
            if key in data:
                raise CommandError(
                    f"--query takes filters only ({key}): an export goes in position order."
                )
        try:
            return EventQuery.parse(data)
        except QueryError as error:
            raise CommandError(f"--query: {error}") from error


def _document_line(event: Event) -> str:
    return json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"


def _cloudevent_line(event: Event) -> str:
    return json.dumps(to_cloudevent(event), ensure_ascii=False, separators=(",", ":")) + "\n"


class _output:
    """The file named (written to a temporary file beside it, renamed when complete, so a
    failed export never leaves a truncated file under that name), or stdout."""

    def __init__(self, path: str | None, stdout: TextIO) -> None:
        self.path = None if path in (None, "-") else Path(path)
        self.stdout = stdout
        self.temporary: str | None = None

    def __enter__(self) -> TextIO:
        if self.path is None:
            return self.stdout
        descriptor, self.temporary = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent or "."
        )
        self.handle = os.fdopen(descriptor, "w", encoding="utf-8")
        return self.handle

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if self.path is None:
            self.stdout.flush()
            return
        self.handle.close()
        assert self.temporary is not None
        if exc_type is None:
            os.replace(self.temporary, self.path)
        else:
            os.unlink(self.temporary)


def _write_files(files: FileStorage, event: Event, directory: Path) -> None:
    """The bytes of each stored file of ``event`` at ``directory/sha256/<hex>``, once per
    content, checked against their hash on the way."""
    for record in event.files:
        if record.is_reference or not record.hash:
            continue
        algorithm, hexdigest = record.hash.split(":", 1)
        path = directory / algorithm / hexdigest
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.new(algorithm)
        temporary = path.with_name(f".{hexdigest}.tmp")
        with temporary.open("wb") as out:
            for chunk in files.get_file_data(record.id):
                hasher.update(chunk)
                out.write(chunk)
        if f"{algorithm}:{hasher.hexdigest()}" != record.hash:
            temporary.unlink()
            raise CommandError(
                f"The stored bytes of file {record.id} do not match its hash {record.hash}; "
                "run manage.py trove_verify --files."
            )
        os.replace(temporary, path)
