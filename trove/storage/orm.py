"""``storage-orm`` and ``storage-sqlite``: events and links in Django models.

``storage-orm`` uses a configured database alias (option ``database``, default
``"default"``), SQLite or PostgreSQL. ``storage-sqlite`` is the same code on a dedicated
SQLite file (option ``path``): it registers a database alias for that file at
initialization and migrates Trove's tables into it, in WAL mode with full fsync.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import uuid
from pathlib import Path
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.functions import Collate

from trove.documents import Event, EventId, FileRecord, Link, SchemaRef
from trove.exceptions import StorageUnavailable, VersionConflict
from trove.query import EventQuery
from trove.storage.base import EventStorage, LinkStorage, TransactionalStorage
from trove.storage.sql import DIALECTS, Dialect

TOP_LEVEL_SORT = {
    "createdAt": "created_at",
    "producer": "producer",
    "schema": "schema_id",
    "id": "event_id",
    "version": "version",
}
TEXT_SORT_FIELDS = {"producer", "schema_id"}


def translate_errors(method):
    """Turn the database's own failures into Trove's (a lost connection is unavailability)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except IntegrityError:
            raise
        except DatabaseError as error:
            if isinstance(error, IntegrityError):
                raise
            raise StorageUnavailable(
                f"Event database {self.alias!r} failed: {error}".strip()
            ) from error

    return wrapper


class ORMEventStorage(EventStorage, LinkStorage, TransactionalStorage):
    """Events, their versions and links as rows of ``trove.models``."""

    roles: ClassVar[frozenset[str]] = frozenset({"events", "links"})
    stores_links: ClassVar[bool] = True
    option_defaults: ClassVar[dict[str, Any]] = {"database": "default"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.alias: str = self.options.get("database", "default")
        self._atomics = threading.local()

    def initialize(self) -> None:
        if self.alias not in connections.settings:
            raise ImproperlyConfigured(f"storage-orm: no database {self.alias!r} in DATABASES.")

    # Models are imported late: this module is imported by system checks before apps load.
    @property
    def models(self):
        from trove import models

        return models

    @property
    def dialect(self) -> Dialect:
        from trove.models import Event as EventRow

        vendor = connections[self.alias].vendor
        if vendor not in DIALECTS:
            raise ImproperlyConfigured(f"storage-orm supports SQLite and PostgreSQL, not {vendor}.")
        table = connections[self.alias].ops.quote_name(EventRow._meta.db_table)
        return DIALECTS[vendor](
            f'{table}."payload"' if vendor == "postgresql" else f"{table}.payload"
        )

    # Transactions ------------------------------------------------------------------

    def _stack(self) -> list:
        if not hasattr(self._atomics, "stack"):
            self._atomics.stack = []
        return self._atomics.stack

    def begin_transaction(self) -> None:
        atomic = transaction.atomic(using=self.alias)
        atomic.__enter__()
        self._stack().append(atomic)

    def commit_transaction(self) -> None:
        self._stack().pop().__exit__(None, None, None)

    def rollback_transaction(self) -> None:
        error = RuntimeError("Trove transaction rolled back")
        self._stack().pop().__exit__(RuntimeError, error, None)

    # Events --------------------------------------------------------------------------

    def _rows(self) -> QuerySet:
        return self.models.Event.objects.using(self.alias)

    @staticmethod
    def to_event(row) -> Event:
        return Event(
            id=EventId(row.event_id, row.version),
            created_at=row.created_at,
            producer=row.producer,
            schema=SchemaRef(row.schema_id, row.schema_version),
            payload=row.payload,
            files=tuple(FileRecord.from_dict(f) for f in row.files),
            links=tuple(Link.from_dict(link) for link in row.links),
            metadata=row.metadata,
        )

    def _new_rows(self, event: Event) -> tuple[Any, list[Any], list[Any]]:
        m = self.models
        row = m.Event(
            event_id=event.uuid,
            version=event.version,
            is_latest=True,
            created_at=event.created_at,
            producer=event.producer,
            schema_id=event.schema.id,
            schema_version=event.schema.version,
            payload=event.payload,
            metadata=event.metadata,
            files=[f.to_dict() for f in event.files],
            links=[link.to_dict() for link in event.links],
        )
        links = [
            m.EventLink(
                source_event_id=event.uuid,
                source_version=event.version,
                position=position,
                type=link.type,
                target_event_id=link.target.id,
                target_version=link.target.version,
                metadata=link.metadata,
            )
            for position, link in enumerate(event.links)
        ]
        files = [
            m.EventFile(
                event_id=event.uuid,
                version=event.version,
                position=position,
                file_id=f.id,
                content_type=f.content_type,
                filename=f.filename,
                size=f.size,
                hash=f.hash,
                is_reference=f.is_reference,
                uri=f.uri,
            )
            for position, f in enumerate(event.files)
        ]
        return row, links, files

    @translate_errors
    def save_event(self, event: Event) -> Event:
        return self.save_events([event])[0]

    @translate_errors
    def save_events(self, events) -> list[Event]:
        events = list(events)
        m = self.models
        rows, links, files = [], [], []
        for event in events:
            row, event_links, event_files = self._new_rows(event)
            rows.append(row)
            links.extend(event_links)
            files.extend(event_files)
        appended = [e.uuid for e in events if e.version > 1]
        try:
            with transaction.atomic(using=self.alias):
                if appended:
                    self._rows().filter(event_id__in=appended, is_latest=True).update(
                        is_latest=False
                    )
                m.Event.objects.using(self.alias).bulk_create(rows)
                if links:
                    m.EventLink.objects.using(self.alias).bulk_create(links)
                if files:
                    m.EventFile.objects.using(self.alias).bulk_create(files)
        except IntegrityError as error:
            names = ", ".join(f"{e.uuid} v{e.version}" for e in events[:3])
            raise VersionConflict(f"Event version already exists: {names}.") from error
        return events

    @translate_errors
    def get_event(self, event_id: uuid.UUID, version: int | None = None) -> Event | None:
        rows = self._rows().filter(event_id=event_id)
        rows = rows.filter(is_latest=True) if version is None else rows.filter(version=version)
        row = rows.first()
        return None if row is None else self.to_event(row)

    @translate_errors
    def get_versions(self, event_id: uuid.UUID) -> list[Event]:
        return [
            self.to_event(row) for row in self._rows().filter(event_id=event_id).order_by("version")
        ]

    def _filtered(self, query: EventQuery) -> QuerySet:
        m = self.models
        rows = self._rows().filter(is_latest=True)
        if query.schemas:
            rows = rows.filter(schema_id__in=query.schemas)
        if query.producers:
            rows = rows.filter(producer__in=query.producers)
        if query.start is not None:
            rows = rows.filter(created_at__gte=query.start)
        if query.end is not None:
            rows = rows.filter(created_at__lte=query.end)
        for wanted in query.links:
            links = m.EventLink.objects.using(self.alias).filter(
                source_event_id=OuterRef("event_id"), source_version=OuterRef("version")
            )
            if wanted.type is not None:
                links = links.filter(type=wanted.type)
            if wanted.target is not None:
                links = links.filter(target_event_id=wanted.target.id)
                if wanted.target.version is not None:
                    links = links.filter(target_version=wanted.target.version)
            rows = rows.filter(Exists(links))
        if query.payload:
            dialect = self.dialect
            for path, value in query.payload:
                rows = rows.filter(dialect.payload_equals(path, value))
        return rows

    def _ordering(self, query: EventQuery) -> list[Any]:
        vendor = connections[self.alias].vendor
        ordering: list[Any] = []
        for key in query.sort:
            path = key.payload_path
            if path is not None:
                missing, columns = self.dialect.sort_keys(path)
                ordering.append(missing.asc())
                ordering.extend(c.desc() if key.descending else c.asc() for c in columns)
                continue
            column = TOP_LEVEL_SORT[key.field]
            expression = F(column)
            if vendor == "postgresql" and column in TEXT_SORT_FIELDS:
                expression = Collate(expression, "C")
            ordering.append(expression.desc() if key.descending else expression.asc())
        ordering.extend([F("created_at").asc(), F("event_id").asc()])
        return ordering

    @translate_errors
    def query_events(self, query: EventQuery) -> list[Event]:
        rows = self._filtered(query).order_by(*self._ordering(query))
        stop = None if query.limit is None else query.offset + query.limit
        return [self.to_event(row) for row in rows[query.offset : stop]]

    @translate_errors
    def count_events(self, query: EventQuery) -> int:
        return self._filtered(query).count()

    # Links ---------------------------------------------------------------------------

    @translate_errors
    def save_link(self, source: EventId, link: Link) -> None:
        links = self.models.EventLink.objects.using(self.alias)
        position = links.filter(source_event_id=source.id, source_version=source.version).count()
        links.create(
            source_event_id=source.id,
            source_version=source.version,
            position=position,
            type=link.type,
            target_event_id=link.target.id,
            target_version=link.target.version,
            metadata=link.metadata,
        )

    @translate_errors
    def get_links(self, source: EventId, *, type: str | None = None) -> list[Link]:
        rows = self.models.EventLink.objects.using(self.alias).filter(
            source_event_id=source.id, source_version=source.version
        )
        if type is not None:
            rows = rows.filter(type=type)
        return [self._to_link(row) for row in rows.order_by("position")]

    @translate_errors
    def get_backlinks(
        self, target: uuid.UUID, *, type: str | None = None
    ) -> list[tuple[EventId, Link]]:
        rows = self.models.EventLink.objects.using(self.alias).filter(target_event_id=target)
        if type is not None:
            rows = rows.filter(type=type)
        return [
            (EventId(row.source_event_id, row.source_version), self._to_link(row))
            for row in rows.order_by("source_event_id", "source_version", "position")
        ]

    @staticmethod
    def _to_link(row) -> Link:
        return Link(row.type, EventId(row.target_event_id, row.target_version), row.metadata)


class SQLiteEventStorage(ORMEventStorage):
    """``storage-sqlite``: the ORM backend on its own SQLite file at ``path``."""

    option_defaults: ClassVar[dict[str, Any]] = {}
    required_options: ClassVar[tuple[str, ...]] = ("path",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.path = Path(self.options["path"]).expanduser().resolve()
        self.alias = self.alias_for(self.path)

    @staticmethod
    def alias_for(path: str | Path) -> str:
        """The database alias this backend registers for the file at ``path``.

        A project may declare it in ``DATABASES`` itself (the test settings do, so that
        Django's test isolation knows the database); it is then used as declared.
        """
        resolved = Path(path).expanduser().resolve()
        return "trove_sqlite_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]

    def initialize(self) -> None:
        from django.core.management import call_command

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.alias not in connections.settings:
            # Registered at run time: Django has no other way to add a database by setting.
            default = connections.settings["default"]
            config = {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(self.path),
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                    "transaction_mode": "IMMEDIATE",
                    "timeout": 30,
                },
                "TEST": {"NAME": str(self.path)},
            }
            connections.settings[self.alias] = connections.configure_settings(
                {"default": default, self.alias: config}
            )[self.alias]
        call_command("migrate", "trove", database=self.alias, verbosity=0, interactive=False)

    def shutdown(self) -> None:
        if self.alias in connections.settings:
            connections[self.alias].close()
