"""Read exported events back in (SPEC §10), keeping ids, versions, times and files.

Lines are read one at a time and imported in batches, in the order of the file (an
export's position order), so memory stays flat whatever the size of the input. Each
line is an event document (JSON Lines) or a structured CloudEvent; ``--format auto``
tells them apart line by line. What happens to each version is in
:mod:`trove.interchange`: a rerun skips what is there, a different document under the
same version is a conflict and is not written.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.core.management.base import CommandError
from django.utils import timezone

from trove.cloudevents import from_cloudevent, is_cloudevent
from trove.documents import Event, FileRecord
from trove.exceptions import TroveError
from trove.interchange import ImportConflict, Importer, event_from_document
from trove.management.base import LongCommand

#: Versions imported per storage call.
BATCH = 500


@dataclass
class Line:
    """One input line: where it is, and the version it holds or what is wrong with it."""

    where: str
    event: Event | None = None
    error: str | None = None
    derived: bool = False


class Command(LongCommand):
    help = "Import events from JSON Lines or CloudEvents files written by trove_export."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("files", nargs="+", metavar="FILE", help="Input files; - is stdin.")
        parser.add_argument("--format", choices=["auto", "jsonl", "cloudevents"], default="auto")
        parser.add_argument(
            "--files",
            dest="files_dir",
            metavar="DIR",
            help="Where the file bytes are (DIR/sha256/<hex>, as trove_export --files writes).",
        )
        parser.add_argument(
            "--allow-dangling-links",
            action="store_true",
            help="Import links whose target is not in the store (partial history).",
        )
        parser.add_argument(
            "--on-error",
            choices=["stop", "skip"],
            default="stop",
            help="On a malformed line or a version that cannot be imported: stop (default) "
            "or report it and go on.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        files_dir = Path(options["files_dir"]) if options["files_dir"] else None
        importer = Importer(
            open_bytes=None if files_dir is None else _bytes_in(files_dir),
            allow_dangling_links=options["allow_dangling_links"],
        )
        self.options = options
        self.stop = options["on_error"] == "stop"
        self.counts = {"imported": 0, "skipped": 0, "conflicts": 0, "failed": 0}
        total = sum(_size(name) for name in options["files"])
        with self.progress("Importing", options, total=total, unit="bytes") as progress:
            self.progress_bar = progress
            try:
                for name in options["files"]:
                    if not self.import_file(name, importer, options["format"]):
                        break
            except TroveError as error:
                raise CommandError(str(error)) from error
        counts = self.counts
        self.report(
            f"Imported {counts['imported']:,}, skipped {counts['skipped']:,} already present, "
            f"{counts['conflicts']:,} conflicts, {counts['failed']:,} failed.",
            options,
        )
        if counts["conflicts"] or counts["failed"]:
            raise CommandError("Some lines were not imported (see above).")

    def import_file(self, name: str, importer: Importer, input_format: str) -> bool:
        """Import one file; False when an error stopped the import."""
        batch: list[Line] = []
        for line in _lines(name, input_format, self.progress_bar):
            if line.error is not None:
                if not self.import_batch(batch, importer):
                    return False
                batch = []
                self.problem(line.where, line.error, "failed")
                if self.stop:
                    return False
                continue
            batch.append(line)
            if len(batch) >= BATCH:
                if not self.import_batch(batch, importer):
                    return False
                batch = []
        return self.import_batch(batch, importer)

    def import_batch(self, batch: list[Line], importer: Importer) -> bool:
        if not batch:
            return True
        events = [line.event for line in batch if line.event is not None]
        assert len(events) == len(batch), "only lines holding a version are batched"
        results = importer.import_events(
            events,
            stop_on_error=self.stop,
            delivered={e.uuid for line, e in zip(batch, events, strict=True) if line.derived},
        )
        for line, result in zip(batch, results, strict=True):
            if result is None:
                break
            if isinstance(result, ImportConflict):
                self.problem(line.where, result.message, "conflicts")
            elif isinstance(result, TroveError):
                self.problem(line.where, result.message, "failed")
            else:
                self.counts["imported" if result.imported else "skipped"] += 1
        self.progress_bar.counts.update(self.counts)
        return not self.stop or not (self.counts["conflicts"] or self.counts["failed"])

    def problem(self, where: str, message: str, kind: str) -> None:
        self.counts[kind] += 1
        self.stderr.write(f"{where}: {message}")


def _size(name: str) -> int:
    if name == "-":
        return 0
    try:
        return os.path.getsize(name)
    except OSError as error:
        raise CommandError(f"Cannot read {name}: {error.strerror}.") from error


def _lines(name: str, input_format: str, progress: Any) -> Iterator[Line]:
    """Each non-blank line of the input, parsed; a line that cannot be read says why."""
    stream = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
    label = "stdin" if name == "-" else name
    now = timezone.now()
    with stream:
        for number, raw in enumerate(stream, start=1):
            progress.advance(len(raw))
            if not raw.strip():
                continue
            yield _parse(raw, f"{label}:{number}", input_format, now)


def _parse(raw: bytes, where: str, input_format: str, now: Any) -> Line:
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as error:
        return Line(where, error=f"not UTF-8 text ({error.reason} at byte {error.start}).")
    except ValueError as error:
        return Line(where, error=f"not valid JSON ({error}).")
    cloudevent = input_format == "cloudevents" or (input_format == "auto" and is_cloudevent(data))
    try:
        if cloudevent:
            incoming = from_cloudevent(data, now=now)
            return Line(where, incoming.event, derived=not incoming.from_trove)
        return Line(where, event_from_document(data))
    except TroveError as error:
        kind = "CloudEvent" if cloudevent else "event document"
        return Line(where, error=f"not a valid {kind}: {error.message}")


def _bytes_in(directory: Path):
    """Where ``trove_export --files`` put the bytes of a record, opened, or ``None``."""

    def open_bytes(record: FileRecord) -> BinaryIO | None:
        if not record.hash or ":" not in record.hash:
            return None
        algorithm, hexdigest = record.hash.split(":", 1)
        if not hexdigest.isalnum():
            return None
        try:
            return (directory / algorithm / hexdigest).open("rb")
        except FileNotFoundError:
            return None

    return open_bytes
