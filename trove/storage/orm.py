"""``storage-orm`` and ``storage-sqlite``: events and links in Django models.

``storage-orm`` uses a configured database alias (option ``database``, default
``"default"``), SQLite or PostgreSQL. ``storage-sqlite`` is the same code on a dedicated
SQLite file (option ``path``): it registers a database alias for that file at
initialization and migrates Trove's tables into it, in WAL mode with full fsync.

Both take ``payloadIndexes``, a list of dotted payload paths (``["order", "customer.id"]``)
that queries filter on. Each gets an expression index on the latest versions, created at
initialization if missing, which turns a scan of every event into an index lookup: on
SQLite for equality, ``in`` and ranges; on PostgreSQL for ranges, since its GIN index on
``payload`` (migration 0002) already answers equality on any path.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import operator
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection
from contextlib import nullcontext
from datetime import UTC, date, datetime, tzinfo
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, DataError, IntegrityError, connections, transaction
from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    JSONField,
    Max,
    QuerySet,
    UUIDField,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate

from trove.documents import Event, EventId, Link
from trove.exceptions import InvalidEvent, QueryError, StorageUnavailable, VersionConflict
from trove.query import EventQuery, payload_words
from trove.storage.base import EventStatistics, EventStorage, LinkStorage, TransactionalStorage
from trove.storage.orm_reader import WORD_INDEX, Reader
from trove.storage.sql import (
    DIALECTS,
    IDENTIFIER,
    QUERY_TOO_LARGE,
    Compiler,
    Dialect,
    SQLiteDialect,
    distinct_values,
    exceeds_database_limits,
)

logger = logging.getLogger(__name__)
#: Below this planner estimate a PostgreSQL count is exact; above, the estimate stands.
EXACT_COUNT_BELOW = 10_000
#: From this many rows on, PostgreSQL receives a batch with ``COPY`` rather than ``INSERT``.
COPY_FROM = 100
#: Rows per ``INSERT … VALUES`` of a batch on SQLite (see ``ORMEventStorage._insert_values``):
#: enough to make the cost per statement vanish, few enough to keep the SQL text short.
SQLITE_ROWS_PER_INSERT = 500


def translate_errors(method):
    """Turn the database's own failures into Trove's (a lost connection is unavailability).

    A value the database refuses is bad input, not an outage. The messages name no
    database alias and quote no SQL; the log has the database's own words.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except IntegrityError:
            raise
        except DatabaseError as error:
            logger.warning(
                "storage-orm database %r: %s failed: %s", self.alias, method.__name__, error
            )
            if isinstance(error, DataError):
                raise InvalidEvent("The event database refused a value.") from error
            raise StorageUnavailable("The event database is unavailable.") from error

    return wrapper


def refuse_queries_past_limits(method):
    """A query the database cannot plan for its size or depth is a bad query, not an
    outage (SPEC §11). Trove's own limits keep queries clear of it; this is for a
    project that lifted them."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except DatabaseError as error:
            if not exceeds_database_limits(error):
                raise
            logger.info("storage-orm database %r refused a query: %s", self.alias, error)
            raise QueryError(QUERY_TOO_LARGE) from error

    return wrapper


def _adapter(field, connection) -> Callable[[Any], Any] | None:
    """How ``field.get_db_prep_save`` changes a value of the field's Python type for
    ``connection``, or ``None`` where it passes it through (text, numbers, booleans)."""
    if isinstance(field, UUIDField):
        return None if connection.features.has_native_uuid_field else operator.attrgetter("hex")
    if isinstance(field, DateTimeField):
        adapt_datetime = connection.ops.adapt_datetimefield_value
        if connection.vendor != "sqlite" or connection.timezone is not UTC:
            return adapt_datetime

        def adapt_utc(value: datetime) -> Any:
            # SQLite's adapter makes an aware time naive in the connection's zone, then
            # ``str``: for the UTC times Trove stamps that is the time without its zone
            # (its ISO form but the "+00:00"), at a fifth of the cost of its checks.
            if value.tzinfo is UTC:
                return value.isoformat(" ")[:-6]
            return adapt_datetime(value)

        return adapt_utc
    if isinstance(field, JSONField):
        # Imported here: this module is imported by system checks, before Django's models.
        from django.db.backends.base.operations import BaseDatabaseOperations

        adapt: Callable[[Any], Any]
        base = BaseDatabaseOperations.adapt_json_value  # json.dumps; SQLite's backend keeps it
        if field.encoder is None and type(connection.ops).adapt_json_value is base:
            adapt = json.dumps  # what the base adapter calls, without its two calls around
        else:
            adapt = functools.partial(connection.ops.adapt_json_value, encoder=field.encoder)
        empty: dict[type, Any] = {dict: adapt({}), list: adapt([])}  # most metadata, files, links

        def adapt_json(value: Any) -> Any:
            if not value and type(value) in empty:
                return empty[type(value)]
            return adapt(value)

        return adapt_json
    return None


def _unchanged(value: Any) -> Any:
    """The adapter of a field whose values the database takes as they are."""
    return value


class ORMEventStorage(EventStorage, EventStatistics, LinkStorage, TransactionalStorage):
    """Events, their versions and links as rows of ``trove.models``."""

    roles: ClassVar[frozenset[str]] = frozenset({"events", "links"})
    stores_links: ClassVar[bool] = True
    option_defaults: ClassVar[dict[str, Any]] = {"database": "default", "payloadIndexes": []}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.alias: str = self.options.get("database", "default")
        self.payload_indexes = self._index_paths(self.options["payloadIndexes"])
        self._atomics = threading.local()
        self._plans: dict[tuple, tuple[str, str, list]] = {}
        self._conversions: dict[tuple, list] = {}
        self._encoders: dict[Any, Callable[[Event, bool, int | None], list]] = {}
        self._readers: dict[Any, Reader] = {}

    @staticmethod
    def _index_paths(paths: Any) -> list[tuple[str, ...]]:
        """``payloadIndexes`` as paths, each a dotted run of identifier keys."""
        if isinstance(paths, str) or not isinstance(paths, list | tuple):
            raise ImproperlyConfigured(
                f"payloadIndexes must be a list of dotted payload paths, not {paths!r}."
            )
        invalid = [
            path
            for path in paths
            if not isinstance(path, str)
            or not all(IDENTIFIER.fullmatch(key) for key in path.split("."))
        ]
        if invalid:
            raise ImproperlyConfigured(
                f"payloadIndexes: {', '.join(map(repr, invalid))} must be dotted paths of "
                "keys made of letters, digits and underscores (e.g. 'customer.id')."
            )
        return [tuple(path.split(".")) for path in paths]

    def initialize(self) -> None:
        if self.alias not in connections.settings:
            raise ImproperlyConfigured(f"storage-orm: no database {self.alias!r} in DATABASES.")
        self._create_payload_indexes()
        self._repair_word_index()

    def shutdown(self) -> None:
        from trove.storage.notifications import stop_listeners

        stop_listeners()

    @translate_errors
    def _create_payload_indexes(self) -> None:
        """An expression index per ``payloadIndexes`` path, on latest versions.

        The indexed expression is the one the dialect writes for that path, so the planner
        can match the two: on SQLite ``json_extract`` (equality, ``in``, ranges), on
        PostgreSQL the ``->`` chain of literal keys (ranges; equality has the GIN index),
        which the dialect writes the same way, so prepared statements match it too.
        """
        connection = connections[self.alias]
        if not self.payload_indexes:
            return
        quote = connection.ops.quote_name
        meta = self.models.Event._meta
        with connection.cursor() as cursor:
            for path in self.payload_indexes:
                dialect = self.dialect
                if isinstance(dialect, SQLiteDialect):
                    literal, _ = dialect.path_sql(path)
                    expression = f"json_extract({quote('payload')}, {literal})"
                else:  # the keys are identifiers (checked): safe as literals
                    literal = ".".join(path)
                    keys = "".join(f" -> '{key}'::text" for key in path)
                    expression = f"({quote('payload')}{keys})"
                name = "trove_payload_" + hashlib.sha1(literal.encode()).hexdigest()[:12]
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(meta.db_table)} "
                    f"({expression}) WHERE {quote('is_latest')}"
                )

    @translate_errors
    def _repair_word_index(self) -> None:
        """Recreate the triggers of SQLite's word index (migration 0005) if they are gone,
        and re-read the words into it: Django's SQLite schema editor remakes a table it
        alters, which drops the table's triggers, so a later migration of ``trove_event``
        would otherwise leave the index behind the table."""
        connection = connections[self.alias]
        if connection.vendor != "sqlite":
            return
        with connection.cursor() as cursor:
            whole = {WORD_INDEX.table, WORD_INDEX.mark, *WORD_INDEX.triggers()}
            marks = ", ".join(["%s"] * len(whole))
            cursor.execute(f"SELECT name FROM sqlite_master WHERE name IN ({marks})", list(whole))
            found = {name for (name,) in cursor.fetchall()}
            if WORD_INDEX.table not in found or found >= whole:
                return  # not migrated yet (0005 creates it all), or whole
            with transaction.atomic(using=self.alias):
                for statement in [*WORD_INDEX.statements(), *WORD_INDEX.rebuild()]:
                    cursor.execute(statement)
            logger.warning("storage-orm database %r: the words index was rebuilt", self.alias)

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

    def on_commit(self, callback: Callable[[], None]) -> bool:
        """Django's ``on_commit``: after the outermost atomic block, the caller's included."""
        transaction.on_commit(callback, using=self.alias)
        return True

    # Events --------------------------------------------------------------------------

    def _rows(self) -> QuerySet:
        return self.models.Event.objects.using(self.alias)

    #: Fields read to rebuild an event, in the order
    #: :class:`~trove.storage.orm_reader.Reader` takes them.
    READ_FIELDS = (
        "event_id",
        "version",
        "created_at",
        "producer",
        "schema_id",
        "schema_version",
        "payload",
        "files",
        "links",
        "metadata",
        "position",
    )

    #: Columns written for each model, in the order of :meth:`_event_values` and of
    #: :meth:`_link_and_file_rows`' tuples.
    EVENT_COLUMNS = (
        "event_id",
        "version",
        "is_latest",
        "created_at",
        "producer",
        "schema_id",
        "schema_version",
        "payload",
        "metadata",
        "files",
        "links",
        "words",
        "position",
    )
    LINK_COLUMNS = (
        "source_event_id",
        "source_version",
        "position",
        "type",
        "target_event_id",
        "target_version",
        "metadata",
    )
    FILE_COLUMNS = (
        "event_id",
        "version",
        "position",
        "file_id",
        "content_type",
        "filename",
        "size",
        "hash",
        "is_reference",
        "uri",
    )

    def _event_values(self, event: Event, is_latest: bool, position: int | None) -> list:
        """The values of the event's row as the database takes them, in
        :data:`EVENT_COLUMNS` order (see :meth:`_event_encoder`)."""
        return self._encoder()(event, is_latest, position)

    def _encoder(self, connection=None) -> Callable[[Event, bool, int | None], list]:
        """:meth:`_event_encoder` for this thread's connection (adapters belong to it)."""
        connection = connections[self.alias] if connection is None else connection
        encode = self._encoders.get(connection)
        if encode is None:
            encode = self._encoders[connection] = self._event_encoder(connection)
        return encode

    def _event_encoder(self, connection) -> Callable[[Event, bool, int | None], list]:
        """Event → its row's values for ``connection``, each field's value converted by
        the adapter ``get_db_prep_save`` would apply (see :func:`_adapter`), in one step:
        every write goes through it, and building the model values first and converting
        them after cost as much again."""
        fields = {name: self.models.Event._meta.get_field(name) for name in self.EVENT_COLUMNS}

        def adapter(name: str) -> Callable[[Any], Any]:
            return _adapter(fields[name], connection) or _unchanged

        event_id, created_at = adapter("event_id"), adapter("created_at")
        payload, metadata = adapter("payload"), adapter("metadata")
        files, links = adapter("files"), adapter("links")

        def encode(event: Event, is_latest: bool, position: int | None) -> list:
            identifier = event.id
            return [
                event_id(identifier.id),
                identifier.version,
                is_latest,
                created_at(event.created_at),
                event.producer,
                event.schema.id,
                event.schema.version,
                payload(event.payload),
                metadata(event.metadata),
                files([f.to_dict() for f in event.files]),
                links([link.to_dict() for link in event.links]),
                " ".join(payload_words(event.payload)),
                position,
            ]

        return encode

    @staticmethod
    def _link_and_file_rows(event: Event) -> tuple[list[tuple], list[tuple]]:
        """The values of the event's link rows and file rows, as model field values."""
        event_id, version = event.id.id, event.id.version
        links = [
            (
                event_id,
                version,
                position,
                link.type,
                link.target.id,
                link.target.version,
                link.metadata,
            )
            for position, link in enumerate(event.links)
        ]
        files = [
            (
                event_id,
                version,
                position,
                f.id,
                f.content_type,
                f.filename,
                f.size,
                f.hash,
                f.is_reference,
                f.uri,
            )
            for position, f in enumerate(event.files)
        ]
        return links, files

    def _insert_plan(self, model, columns: tuple[str, ...]) -> tuple[str, str, list]:
        """(INSERT statement, COPY statement, fields whose values the database converts)."""
        key = (model, columns)
        if key not in self._plans:
            connection = connections[self.alias]
            quote = connection.ops.quote_name
            fields = [model._meta.get_field(name) for name in columns]
            table = quote(model._meta.db_table)
            names = ", ".join(quote(field.column) for field in fields)
            converted = [
                (index, field)
                for index, field in enumerate(fields)
                if _adapter(field, connection) is not None
            ]
            self._plans[key] = (
                f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(fields))})",
                f"COPY {table} ({names}) FROM STDIN",
                converted,
            )
        return self._plans[key]

    def _adapted(self, model, columns: tuple[str, ...], rows: list[tuple]) -> list[list]:
        """The rows with the values this database needs converted (see :meth:`_insert`)."""
        connection = connections[self.alias]
        _, _, converted = self._insert_plan(model, columns)
        key = (model, columns, connection)  # adapters belong to this thread's connection
        if key not in self._conversions:
            self._conversions[key] = [(i, _adapter(field, connection)) for i, field in converted]
        conversions = self._conversions[key]
        values = []
        for row in rows:
            adapted = list(row)
            for index, convert in conversions:
                if adapted[index] is not None:
                    adapted[index] = convert(adapted[index])
            values.append(adapted)
        return values

    def _insert(self, model, columns: tuple[str, ...], rows: list, *, adapted: bool = False) -> int:
        """Insert rows in one statement (``COPY`` for many rows on PostgreSQL, ``VALUES``
        lists on SQLite); the count.

        ``bulk_create`` builds a model instance per row and runs every field's
        ``get_db_prep_save``; on rows this small that Python work costs several times the
        database's own. The values from :meth:`_link_and_file_rows` already have their
        fields' Python types, so only the conversions that change them for this database
        are applied: the same ``connection.ops`` adapters Django's fields call, hence the
        same rows. ``adapted``: the rows are converted already (:meth:`_event_values`).
        """
        connection = connections[self.alias]
        statement, copy, _ = self._insert_plan(model, columns)
        values: list = rows if adapted else self._adapted(model, columns, rows)
        with connection.cursor() as cursor:
            if len(values) == 1:
                cursor.execute(statement, values[0])
                return cursor.rowcount
            if connection.vendor == "postgresql" and len(values) >= COPY_FROM:
                with connection.wrap_database_errors:
                    with cursor.copy(copy) as stream:
                        for row in values:
                            stream.write_row(row)
                return len(values)
            if connection.vendor == "sqlite":
                return self._insert_values(connection, cursor, statement, values)
            cursor.executemany(statement, values)
            return len(values)

    @staticmethod
    def _insert_values(connection, cursor, statement: str, values: list) -> int:
        """Insert SQLite rows :data:`SQLITE_ROWS_PER_INSERT` to a statement (fewer where
        the statement would have more parameters than SQLite allows).

        Once a table has a trigger (``trove_event`` has the word index's, migration 0005)
        every statement writing it costs about 10 µs more, whatever the trigger does (the
        statement journal SQLite keeps for a statement that fires triggers): with
        ``executemany``, one statement per row, that was more than the row itself cost.
        """
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per_statement = max(1, min(SQLITE_ROWS_PER_INSERT, limit // len(values[0])))
        head, row = statement.split(" VALUES ", 1)
        for start in range(0, len(values), per_statement):
            chunk = values[start : start + per_statement]
            cursor.execute(
                f"{head} VALUES {', '.join([row] * len(chunk))}", list(chain.from_iterable(chunk))
            )
        return len(values)

    @translate_errors
    def save_event(self, event: Event) -> Event:
        if event.id.version == 1:
            return self._save_new_event(event)
        return self.save_events([event])[0]

    @translate_errors
    def save_events(self, events) -> list[Event]:
        """Save a batch atomically, with one statement per table whatever its size."""
        events = list(events)
        if not events:
            return events
        if len(events) == 1 and events[0].version == 1:
            return [self._save_new_event(events[0])]
        m = self.models
        latest: dict[uuid.UUID, int] = {}  # several versions of one event: the last is latest
        appended = [event.id.id for event in events if event.id.version != 1]
        if appended:
            for event in events:
                latest[event.uuid] = max(latest.get(event.uuid, 0), event.version)
        try:
            with transaction.atomic(using=self.alias):
                # Positions first: the counter's lock is the first this write takes, so two
                # writers appending to the same events queue on it instead of deadlocking.
                first = self._take_positions(len(events))
                encode = self._encoder()
                if latest:
                    rows = [
                        encode(event, latest[event.uuid] == event.version, first + offset)
                        for offset, event in enumerate(events)
                    ]
                else:
                    rows = [
                        encode(event, True, first + offset) for offset, event in enumerate(events)
                    ]
                links, files = [], []
                for event in events:
                    if event.links or event.files:
                        event_links, event_files = self._link_and_file_rows(event)
                        links.extend(event_links)
                        files.extend(event_files)
                if appended:
                    self._rows().filter(event_id__in=appended, is_latest=True).update(
                        is_latest=False
                    )
                self._insert(m.Event, self.EVENT_COLUMNS, rows, adapted=True)
                if links:
                    self._insert(m.EventLink, self.LINK_COLUMNS, links)
                if files:
                    self._insert(m.EventFile, self.FILE_COLUMNS, files)
        except IntegrityError as error:
            names = ", ".join(f"{e.uuid} v{e.version}" for e in events[:3])
            raise VersionConflict(f"Event version already exists: {names}.") from error
        return [event.with_position(first + i) for i, event in enumerate(events)]

    # Positions -----------------------------------------------------------------------

    #: The PostgreSQL channel told of each commit (the payload: its last position).
    NOTIFY_CHANNEL = "trove_feed"

    def _counter_statement(self, count: int) -> tuple[str, list[Any]]:
        """SQL that takes ``count`` positions and returns the last, and its parameters.

        It upserts :class:`~trove.models.PositionCounter`'s row, a write that takes the
        database's write lock (SQLite) or the row's lock (PostgreSQL) before anything is
        read. On PostgreSQL the counter is what keeps positions in commit order: a missing
        row (a new or flushed database) starts after the highest stored position, and the
        statement also sends ``NOTIFY trove_feed`` with that position, delivered only if
        the write commits. On SQLite the write lock alone serialises writers, so positions
        continue after the highest stored one, read under that lock: the single-event
        insert (:meth:`_sqlite_statement`) reads it in its own statement and never writes
        the counter row (one page less in every commit), so the row is only the lock and
        the place of the answer here.
        """
        connection = connections[self.alias]
        quote = connection.ops.quote_name
        counter = quote(self.models.PositionCounter._meta.db_table)
        table = quote(self.models.Event._meta.db_table)
        last, position = quote("last"), quote("position")
        sql = (
            f"INSERT INTO {counter} (id, {last}) VALUES "
            f"(1, (SELECT coalesce(max({position}), 0) FROM {table}) + %s) ON CONFLICT (id) "
        )
        if connection.vendor != "postgresql":
            return sql + f"DO UPDATE SET {last} = excluded.{last} RETURNING {last}", [count]
        sql += (
            f"DO UPDATE SET {last} = {counter}.{last} + %s "
            f"RETURNING {last}, pg_notify(%s, {last}::text)"
        )
        return sql, [count, count, self.NOTIFY_CHANNEL]

    def _take_positions(self, count: int) -> int:
        """Reserve ``count`` consecutive positions until the open transaction ends; the first.

        The caller must be inside an atomic block: the lock the counter statement takes is
        held until it commits, which is what keeps positions in commit order (see
        ``PositionCounter``).
        """
        sql, params = self._counter_statement(count)
        with connections[self.alias].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0] - count + 1

    def _insert_counted(self, values: list) -> int | None:
        """PostgreSQL: take a position and insert the event row (its values from
        :meth:`_event_values`) in one statement (so one round trip, atomic on its own);
        the position, or ``None`` if the id exists."""
        m = self.models
        counter, params = self._counter_statement(1)
        statement, _, _ = self._insert_plan(m.Event, self.EVENT_COLUMNS)
        statement = statement.rsplit("%s)", 1)[0] + '(SELECT "last" FROM counter))'
        values = values[:-1]
        sql = f'WITH counter AS ({counter}) {statement} ON CONFLICT DO NOTHING RETURNING "position"'
        connection = connections[self.alias]
        connection.ensure_connection()
        connection.validate_no_broken_transaction()
        # psycopg's own cursor, the one Django's wraps: its wrappers cost more than the
        # Python side of the statement (errors are still Django's).
        with connection.wrap_database_errors, connection.connection.cursor() as cursor:
            cursor.execute(sql, [*params, *values])
            found = cursor.fetchone()
        return None if found is None else found[0]

    def folds_schema_stamp(self, registry_alias: str) -> bool:
        """Whether :meth:`save_new_event_at_stamp` checks the schema registry in the same
        statement as the insert: on PostgreSQL, when the registry is in this database."""
        return registry_alias == self.alias and connections[self.alias].vendor == "postgresql"

    @translate_errors
    def save_new_event_at_stamp(self, event: Event, schema_id: str, stamp: tuple) -> Event | None:
        """Save version 1 of an event without links or files only if the registry's stamp
        of ``schema_id`` (:func:`trove.schemas._stamp`) is still ``stamp``; ``None``, with
        nothing written, if it is not.

        One statement, so one round trip and atomic on its own, where the stamp query and
        then the insert would be two: the stamp is read in the insert's own snapshot, and
        the position is taken only when it matches. A registration committed before the
        statement began is seen, so it still applies to the very next event.
        """
        assert event.version == 1 and not (event.links or event.files)
        connection = connections[self.alias]
        values = self._event_values(event, True, None)[:-1]
        sql = self._stamped_insert_sql
        connection.ensure_connection()
        connection.validate_no_broken_transaction()
        with self._savepoint_in_callers_transaction(connection):
            with connection.wrap_database_errors, connection.connection.cursor() as cursor:
                cursor.execute(sql, [schema_id, 1, *stamp, 1, self.NOTIFY_CHANNEL, *values])
                position, counted = cursor.fetchone()
        if not counted:
            return None
        if position is None:
            raise VersionConflict(f"Event version already exists: {event.uuid} v1.")
        return event.with_position(position)

    @functools.cached_property
    def _stamped_insert_sql(self) -> str:
        """The statement of :meth:`save_new_event_at_stamp`. Params: schema id, count,
        the stamp's three values, count, the notify channel, the event row but its
        position. Returns (position or NULL on a duplicate id, 1 or 0 for a stale stamp)."""
        m = self.models
        quote = connections[self.alias].ops.quote_name
        registry, counter = m.EventSchema._meta, m.PositionCounter._meta
        event = m.Event._meta
        statement, _, _ = self._insert_plan(m.Event, self.EVENT_COLUMNS)
        columns = statement.split(" VALUES ")[0]
        selected = ", ".join(["%s"] * (len(self.EVENT_COLUMNS) - 1))
        table, last = quote(counter.db_table), quote("last")
        sql = (
            f"WITH stamp AS (SELECT COUNT(*) AS n, MAX({quote('id')}) AS i, "
            f"MAX({quote('updated_at')}) AS u FROM {quote(registry.db_table)} "
            f"WHERE {quote('schema_id')} = %s), "
            f"counter AS (INSERT INTO {table} (id, {last}) "
            f"SELECT 1, (SELECT coalesce(max({quote('position')}), 0) "
            f"FROM {quote(event.db_table)}) + %s FROM stamp "
            "WHERE (n, i, u) IS NOT DISTINCT FROM (%s::bigint, %s::bigint, %s::timestamptz) "
            f"ON CONFLICT (id) DO UPDATE SET {last} = {table}.{last} + %s "
            f"RETURNING {last}, pg_notify(%s, {last}::text)), "
            f"inserted AS ({columns} SELECT {selected}, {last} FROM counter "
            f"ON CONFLICT DO NOTHING RETURNING {quote('position')}) "
            f"SELECT (SELECT {quote('position')} FROM inserted), (SELECT COUNT(*) FROM counter)"
        )
        return sql

    def _insert_counted_sqlite(self, values: list, connection) -> int | None:
        """SQLite: insert the event row (its values from :meth:`_event_values`) at the
        next position, straight on the DB-API connection; the position, or ``None`` if the
        id exists.

        One statement (:meth:`_sqlite_statement`) with the values Django's cursor would
        bind (the same adapted values, ``?`` placeholders), without its per-statement
        wrappers, which cost as much as SQLite's own work on rows this small. It is a
        write, so it takes the write lock before it reads the highest position, and the
        lock is held until its transaction commits: the next writer reads that position
        only once this one is visible, so positions follow commit order. Outside any
        transaction the statement is its own, committed (and fsynced) as it completes,
        which reading its ``RETURNING`` row to the end does; a failure rolls it back.
        """
        statement = self._sqlite_statement
        connection.ensure_connection()
        with connection.wrap_database_errors:
            found = connection.connection.execute(statement, values[:-1]).fetchall()
        return found[0][0] if found else None

    @functools.cached_property
    def _sqlite_statement(self) -> str:
        """The event insert at the next position (one after the highest stored, read
        through the position index), skipping an existing id and returning the position,
        in ``sqlite3``'s own ``?`` placeholders. Params: the event row but its position."""
        quote = connections[self.alias].ops.quote_name
        table, position = quote(self.models.Event._meta.db_table), quote("position")
        statement, _, _ = self._insert_plan(self.models.Event, self.EVENT_COLUMNS)
        statement = statement.rsplit("%s)", 1)[0] + (
            f"(SELECT coalesce(max({position}), 0) + 1 FROM {table})) "
            f"ON CONFLICT DO NOTHING RETURNING {position}"
        )
        return statement.replace("%s", "?")

    def _savepoint_in_callers_transaction(self, connection) -> Any:
        """A savepoint shielding a caller's own open transaction from a failed write; none
        outside any transaction (a statement is atomic on its own) or in this storage's
        scope (``trove.transaction`` rolls it back whole)."""
        stack = self._stack()
        if not connection.in_atomic_block or (stack and connection.atomic_blocks[-1] is stack[-1]):
            return nullcontext()
        return transaction.atomic(using=self.alias)

    def _save_new_event(self, event: Event) -> Event:
        """Save version 1 of one event, the common write, in as few statements as can be.

        A duplicate id inserts nothing rather than failing, so no savepoint is needed to
        keep a transaction usable after a :class:`VersionConflict`. Outside any
        transaction an event without link or file rows is one statement, atomic on its
        own (on SQLite, unless Django's autocommit was turned off). In a caller's own
        transaction a savepoint still shields it from any other failure.
        """
        m = self.models
        connection = connections[self.alias]
        values = self._encoder(connection)(event, True, None)
        links, files = self._link_and_file_rows(event) if event.links or event.files else ((), ())
        postgresql = connection.vendor == "postgresql"
        if not connection.in_atomic_block:
            single = not (links or files) and (postgresql or connection.get_autocommit())
            scope = nullcontext() if single else transaction.atomic(using=self.alias)
        else:
            scope = self._savepoint_in_callers_transaction(connection)
        with scope:
            if postgresql:
                position = self._insert_counted(values)
            else:
                position = self._insert_counted_sqlite(values, connection)
            if position is not None:
                if links:
                    self._insert(m.EventLink, self.LINK_COLUMNS, links)
                if files:
                    self._insert(m.EventFile, self.FILE_COLUMNS, files)
        if position is None:
            raise VersionConflict(f"Event version already exists: {event.uuid} v1.")
        return event.with_position(position)

    @translate_errors
    def read_feed(
        self,
        after: int = 0,
        limit: int = 1000,
        schemas: Collection[str] = (),
        producers: Collection[str] = (),
    ) -> list[Event]:
        reader = self._reader()
        meta, quote = self.models.Event._meta, reader.connection.ops.quote_name

        def column(name: str) -> str:
            return f"{reader.table}.{quote(meta.get_field(name).column)}"

        position = column("position")
        condition = f"{position} > %s"
        params: list[Any] = [after]
        for name, values in (("schema_id", list(schemas)), ("producer", list(producers))):
            if values:
                marks = ", ".join(["%s"] * len(values))
                condition += f" AND {column(name)} IN ({marks})"
                params.extend(values)
        return reader.fetch(f"{condition} ORDER BY {position} LIMIT %s", [*params, limit])

    @translate_errors
    def last_position(self) -> int:
        return self._rows().aggregate(last=Max("position"))["last"] or 0

    def wait_for_position(self, after: int, timeout: float) -> bool:
        """On PostgreSQL, woken by ``NOTIFY`` through this process's one listening
        connection (:mod:`trove.storage.notifications`); elsewhere, by polling."""
        connection = connections[self.alias]
        if connection.vendor != "postgresql":
            return super().wait_for_position(after, timeout)
        from trove.storage.notifications import listener_for

        def peek() -> int:
            """The last position. A caller that closed its connection before waiting (the
            event stream, so as not to hold one per open stream) does not get one back."""
            was_open = connection.connection is not None
            try:
                return self.last_position()
            finally:
                if not was_open and not connection.in_atomic_block:
                    connection.close()

        listener = listener_for(connection.get_connection_params(), self.NOTIFY_CHANNEL)
        return listener.wait(after, timeout, peek, self.poll_interval)

    @translate_errors
    def get_event(self, event_id: uuid.UUID, version: int | None = None) -> Event | None:
        reader = self._reader()
        c = reader.columns
        if version is None:
            sql, params = f"{c['id']} = %s AND {c['latest']}", [reader.uuid_value(event_id)]
        else:
            sql, params = (
                f"{c['id']} = %s AND {c['version']} = %s",
                [
                    reader.uuid_value(event_id),
                    version,
                ],
            )
        found = reader.fetch(sql, params)
        return found[0] if found else None

    @translate_errors
    def get_latest(self, event_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Event]:
        if not event_ids:
            return {}
        reader = self._reader()
        marks = ", ".join(["%s"] * len(event_ids))
        found = reader.fetch(
            f"{reader.columns['id']} IN ({marks}) AND {reader.columns['latest']}",
            [reader.uuid_value(event_id) for event_id in event_ids],
        )
        return {event.uuid: event for event in found}

    @translate_errors
    def get_versions(self, event_id: uuid.UUID) -> list[Event]:
        reader = self._reader()
        c = reader.columns
        return reader.fetch(
            f"{c['id']} = %s ORDER BY {c['version']}", [reader.uuid_value(event_id)]
        )

    @property
    def compiler(self) -> Compiler:
        """The query compiler for this database's dialect and Trove's tables."""
        return self._reader().compiler

    def _reader(self) -> Reader:
        """What reading events takes on this thread's connection, prepared once for it."""
        connection = connections[self.alias]
        reader = self._readers.get(connection)
        if reader is None:
            reader = self._readers[connection] = Reader(self, connection)
        return reader

    def matching_rows(self, query: EventQuery) -> QuerySet:
        """Latest versions matching ``query``, filtered by the one SQL compiler."""
        reader = self._reader()
        reader.prepare_connection()
        sql, params = reader.compiler.where(query)
        return self._rows().filter(is_latest=True).filter(RawSQL(sql, params, BooleanField()))

    def _ordering(self, query: EventQuery) -> list[Any]:
        return [
            RawSQL(sql, params).desc() if descending else RawSQL(sql, params).asc()
            for sql, params, descending in self.compiler.order_by(query)
        ]

    @translate_errors
    @refuse_queries_past_limits
    def query_events(self, query: EventQuery) -> list[Event]:
        """The compiler's SQL run on the connection's cursor, rows decoded as the ORM
        would: no queryset is built or compiled per query."""
        reader = self._reader()
        return reader.fetch(*reader.latest(query))

    @translate_errors
    @refuse_queries_past_limits
    def count_events(self, query: EventQuery) -> int:
        reader = self._reader()
        where, params = reader.compiler.where(query)
        latest = reader.columns["latest"]
        sql = f"SELECT count(*) FROM {reader.table} WHERE {latest} AND ({where})"
        return reader.rows(sql, params)[0][0]

    # Statistics (EventStatistics) ------------------------------------------------------

    #: The model field of each field :class:`EventStatistics` counts by.
    STATISTICS_COLUMNS: ClassVar[dict[str, str]] = {
        "schema": "schema_id",
        "producer": "producer",
        "schemaVersion": "schema_version",
    }

    @translate_errors
    @refuse_queries_past_limits
    def count_by_field(self, field: str, query: EventQuery) -> list[tuple[str, int]]:
        column = self.STATISTICS_COLUMNS[field]
        rows = self.matching_rows(query).order_by().values_list(column).annotate(n=Count("pk"))
        # Ordered here: by code point whatever the database's collation, NULL as "".
        return sorted(((value or "", n) for value, n in rows), key=lambda row: (-row[1], row[0]))

    @translate_errors
    def count_per_day(self, start: datetime, end: datetime, zone: tzinfo) -> dict[date, int]:
        rows = self.matching_rows(EventQuery(start=start, end=end)).order_by()
        days = rows.annotate(day=TruncDate("created_at", tzinfo=zone)).values_list("day")
        return dict(days.annotate(n=Count("pk")))

    @translate_errors
    def distinct_values(self, field: str, limit: int) -> list[str]:
        connection = connections[self.alias]
        quote = connection.ops.quote_name
        meta = self.models.Event._meta
        sql, params = distinct_values(
            quote(meta.db_table),
            quote(self.STATISTICS_COLUMNS[field]),
            quote("is_latest"),
            limit,
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return sorted(value for (value,) in cursor.fetchall())

    @translate_errors
    @refuse_queries_past_limits
    def estimate_count(self, query: EventQuery) -> int | None:
        """On PostgreSQL past :data:`EXACT_COUNT_BELOW` rows, the planner's estimate."""
        if connections[self.alias].vendor != "postgresql":
            return None
        plan = self.matching_rows(query).order_by().explain(format="json")
        estimate = int(json.loads(plan)[0]["Plan"]["Plan Rows"])
        return estimate if estimate >= EXACT_COUNT_BELOW else None

    @translate_errors
    def schema_version_in_use(self, schema_id: str, version: str) -> bool:
        """Every stored version counts, not only the latest. The latest versions are asked
        first (indexed); only a version none of them uses costs a look at older rows."""
        used = {"schema_id": schema_id, "schema_version": version}
        if self._rows().filter(is_latest=True, **used).exists():
            return True
        return self._rows().filter(**used).exists()

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

    option_defaults: ClassVar[dict[str, Any]] = {"payloadIndexes": []}
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
                # Each thread keeps its connection, as the example project does for its
                # SQLite file: reopening the file and running the pragmas per request
                # cost more than the request's own write, and there is no server to exhaust.
                "CONN_MAX_AGE": None,
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
        self._create_payload_indexes()
        self._repair_word_index()

    def shutdown(self) -> None:
        super().shutdown()
        if self.alias in connections.settings:
            connections[self.alias].close()
