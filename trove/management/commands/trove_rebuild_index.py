"""Rebuild the index of a ``storage-json-file`` event store from its documents.

The index is a cache: Trove rebuilds it by itself when it is missing, damaged or behind
the write journal. Run this after changing, adding or removing documents by hand (or
restoring some from a backup), which Trove cannot notice cheaply. It takes the writers'
lock, so it is safe while the site runs; writes wait until it finishes. Documents that
cannot be read are listed and the command fails, so a script notices.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from trove.exceptions import StorageError
from trove.storage.handler import storages
from trove.storage.jsonfile import JSONFileEventStorage


class Command(BaseCommand):
    help = "Rebuild the index of a storage-json-file event store from its JSON documents."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--directory",
            help="The store's directory; default: the configured storage-json-file events.",
        )

    def handle(self, *args: Any, directory: str | None = None, **options: Any) -> None:
        storage = self.storage(directory)
        verbosity = options["verbosity"]

        def progress(documents: int) -> None:
            if verbosity >= 1:
                self.stdout.write(f"  {documents:,} documents indexed…")

        try:
            report = storage.rebuild_index(progress)
        except StorageError as error:
            raise CommandError(str(error)) from error
        finally:
            storage.shutdown()
        if verbosity >= 1:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Rebuilt the index of {storage.directory}: {report.events:,} events, "
                    f"{report.documents:,} documents."
                )
            )
        if report.damaged:
            raise CommandError(
                f"{len(report.damaged)} document(s) could not be read and are not indexed; "
                "repair or remove them, then run this command again:\n  "
                + "\n  ".join(report.damaged)
            )

    def storage(self, directory: str | None) -> JSONFileEventStorage:
        """A storage of its own, not initialized: initializing could rebuild a stale index
        by itself, and the command would then do that work twice."""
        if directory is not None:
            storage = JSONFileEventStorage(directory=directory)
        else:
            configured = storages.build("events")
            if not isinstance(configured, JSONFileEventStorage):
                raise CommandError(
                    f"The configured event storage is {type(configured).__name__}, not "
                    "storage-json-file; pass --directory to rebuild a store by path."
                )
            storage = configured
        if not storage.events_dir.is_dir():
            raise CommandError(f"{storage.directory} holds no storage-json-file events.")
        return storage
