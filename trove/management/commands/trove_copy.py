"""Copy every version, with its links and files, from one store to another (SPEC §10).

Versions go in the source's position order, so the target gives them positions in the
same order and link targets arrive before the links to them. Nothing is remembered
between runs, and nothing needs to be: a version the target already holds with the same
document is skipped, so a copy that was interrupted (even by ``kill -9``) is resumed by
running the same command again, without duplicates. It ends by counting and digesting
every document on both sides (positions aside); a difference fails the command.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from django.core.management.base import CommandError

from trove.exceptions import TroveError
from trove.interchange import PAGE, Importer, StoreDigest, iter_versions
from trove.management.base import LongCommand, json_option
from trove.storage.base import EventStorage
from trove.storage.handler import InvalidStorageError, StorageHandler, storages


class Command(LongCommand):
    help = "Copy every event version, with links and files, to another storage configuration."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--to", required=True, metavar="JSON", help='The target, shaped like TROVE["storage"].'
        )
        parser.add_argument(
            "--from",
            dest="source",
            metavar="JSON",
            help="The source, shaped like TROVE['storage']; default: the configured storage.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = StorageHandler(json_option(options["to"], "--to"))
        source_config = json_option(options["source"], "--from")
        source = storages if source_config is None else StorageHandler(source_config)
        if target.config == source.config:
            raise CommandError("--to names the same storage as the source.")
        try:
            copied, skipped = self.copy(source, target, options)
            self.compare(source, target, options, copied, skipped)
        except (TroveError, InvalidStorageError) as error:
            raise CommandError(str(error)) from error
        finally:
            target.close_all()
            if source is not storages:
                source.close_all()

    def copy(
        self, source: StorageHandler, target: StorageHandler, options: dict[str, Any]
    ) -> tuple[int, int]:
        importer = Importer(target, open_bytes=lambda record: source.files.open_file(record.id))
        versions = iter_versions(source.events)
        copied = skipped = reached = 0
        total = source.events.last_position()
        with self.progress("Copying", options, total=total) as progress:
            while batch := list(islice(versions, PAGE)):
                for event, result in zip(batch, importer.import_events(batch), strict=True):
                    if isinstance(result, TroveError):
                        raise CommandError(
                            f"Event {event.uuid} version {event.version} (position "
                            f"{event.position}) cannot be copied: {result.message} "
                            f"{copied:,} versions were copied before it; fix the cause and "
                            "run the command again to resume."
                        )
                    assert result is not None  # without stop_on_error every version has one
                    copied += result.imported
                    skipped += not result.imported
                progress.counts.update(copied=copied, skipped=skipped)
                progress.advance(batch[-1].stored_position - reached)
                reached = batch[-1].stored_position
        return copied, skipped

    def compare(
        self,
        source: StorageHandler,
        target: StorageHandler,
        options: dict[str, Any],
        copied: int,
        skipped: int,
    ) -> None:
        here = self.digest(source.events, options)
        there = self.digest(target.events, options)
        self.report(
            f"Copied {copied:,} versions ({skipped:,} were already there).\n"
            f"source: {here.count:,} versions, digest {here.hexdigest}\n"
            f"target: {there.count:,} versions, digest {there.hexdigest}",
            options,
        )
        if (here.count, here.hexdigest) != (there.count, there.hexdigest):
            raise CommandError(
                "The target does not hold the same documents as the source (it may hold "
                "other events, or have changed during the copy)."
            )

    def digest(self, events: EventStorage, options: dict[str, Any]) -> StoreDigest:
        digest = StoreDigest()
        with self.progress("Comparing", options, total=events.last_position()) as progress:
            reached = 0
            for event in iter_versions(events):
                digest.add(event)
                progress.advance(event.stored_position - reached)
                reached = event.stored_position
        return digest
