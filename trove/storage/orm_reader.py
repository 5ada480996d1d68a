"""How ``storage-orm`` and ``storage-sqlite`` read events: the compiler's SQL run on the
connection's cursor and each row turned into an :class:`~trove.documents.Event` as the ORM
would (``from_db_value`` and the backend's converters), without a queryset per query."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from django.conf import settings

from trove.documents import Event, EventId, FileRecord, Link, SchemaRef, new_event
from trove.query import EventQuery
from trove.storage.sql import Compiler, Table, WordIndex, register_functions

if TYPE_CHECKING:
    from trove.storage.orm import ORMEventStorage

#: The model field of each top-level field of a query (SPEC §3's sort fields).
SORT_COLUMNS = {
    "createdAt": "created_at",
    "producer": "producer",
    "schema": "schema_id",
    "id": "event_id",
    "version": "version",
}
#: Distinct schema references a reader keeps to share among the events it decodes.
SCHEMA_REFS_KEPT = 1024
#: On SQLite, the FTS5 index of the events' words (migration 0005).
WORD_INDEX = WordIndex("trove_event_words", "trove_event", content_rowid="id", catch_up_every=256)


def _json_value(text: str) -> Any:
    """``JSONField.from_db_value`` of a whole column: the JSON text decoded (the empty
    object and array, most metadata, files and links, without parsing)."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return json.loads(text)


class Reader:
    """The read path of one storage on one connection, prepared once: the compiler (its
    value adapters belong to the connection), the SELECT of ``READ_FIELDS`` and the
    converters turning a row into the values the ORM would give (``from_db_value`` and
    the backend's own)."""

    def __init__(self, storage: ORMEventStorage, connection) -> None:
        self.connection = connection
        quote = connection.ops.quote_name
        m = storage.models
        event, link = m.Event._meta, m.EventLink._meta
        self.table = quote(event.db_table)

        def column(meta, name: str) -> str:
            return f"{quote(meta.db_table)}.{quote(meta.get_field(name).column)}"

        def adapter(meta, name: str) -> Callable[[Any], Any]:
            return functools.partial(meta.get_field(name).get_db_prep_value, connection=connection)

        table = Table(
            columns={field: column(event, name) for field, name in SORT_COLUMNS.items()},
            words=column(event, "words"),
            links=quote(link.db_table),
            link_columns={
                "source": column(link, "source_event_id"),
                "source_version": column(link, "source_version"),
                "type": column(link, "type"),
                "target": column(link, "target_event_id"),
                "target_version": column(link, "target_version"),
            },
            instant=adapter(event, "created_at"),
            uuid=adapter(event, "event_id"),
            word_index=WORD_INDEX if connection.vendor == "sqlite" else None,
            row_id=column(event, "id"),
        )
        self.compiler = Compiler(storage.dialect, table)
        self.columns = {
            "id": column(event, "event_id"),
            "version": column(event, "version"),
            "latest": column(event, "is_latest"),
        }
        self.uuid_value = table.uuid
        selected = [column(event, name) for name in storage.READ_FIELDS]
        if connection.vendor == "sqlite":
            # The time as its stored text: a bare column of a declared timestamp type
            # would be parsed by the converter Django registers in the driver, several
            # times the cost of ``_sqlite_instant``'s ``fromisoformat`` (``+`` changes no
            # value, only leaves the result without a declared type).
            created = storage.READ_FIELDS.index("created_at")
            selected[created] = f"+{selected[created]}"
        self.head = f"SELECT {', '.join(selected)} FROM {self.table} WHERE "
        # The converters Django would apply: on PostgreSQL psycopg gives UUIDs and aware
        # datetimes as they are; SQLite stores hex UUIDs and naive UTC (connection time
        # zone) text, which Django's converters turn into the same objects as these.
        self.registered: Any = None
        self.uuid: Callable[[Any], uuid.UUID] = _same
        self.instant: Callable[[Any], datetime] = _same
        #: The schema references met so far, shared by the events of every row that
        #: names them (immutable, so one object serves them all).
        self.schemas: dict[tuple[str, str | None], SchemaRef] = {}
        if connection.vendor == "sqlite":
            self.uuid = _stored_uuid
            self.instant = functools.partial(
                _sqlite_instant, connection=connection, zone=connection.timezone
            )

    def prepare_connection(self) -> None:
        """Register the SQL functions the compiler's SQLite conditions call, once for each
        driver connection (Django may replace it)."""
        if self.connection.vendor == "sqlite":
            self.connection.ensure_connection()
            if self.connection.connection is not self.registered:
                register_functions(self.connection.connection)
                self.registered = self.connection.connection

    def select(self, query: EventQuery) -> tuple[str, list[Any]]:
        """The SELECT of the latest versions matching ``query``, ordered and paged."""
        condition, params = self.latest(query)
        return self.head + condition, params

    def latest(self, query: EventQuery) -> tuple[str, list[Any]]:
        """What follows ``WHERE`` to select the latest versions matching ``query``: the
        compiled filters, order and paging."""
        where, params = self.compiler.where(query)
        terms = []
        for term, term_params, descending in self.compiler.order_by(query):
            terms.append(f"{term} {'DESC' if descending else 'ASC'}")
            params += term_params
        sql = f"{self.columns['latest']} AND ({where}) ORDER BY {', '.join(terms)}"
        if query.limit is not None:
            sql += " LIMIT %s"
            params.append(query.limit)
        elif query.offset and self.connection.vendor == "sqlite":
            sql += " LIMIT -1"  # SQLite's OFFSET needs a LIMIT
        if query.offset:
            sql += " OFFSET %s"
            params.append(query.offset)
        return sql, params

    def fetch(self, condition: str, params: list[Any]) -> list[Event]:
        """The events of the rows meeting ``condition`` (SQL after ``WHERE``)."""
        self.prepare_connection()
        with self.connection.cursor() as cursor:
            cursor.execute(self.head + condition, params)
            rows = cursor.fetchall()
        return [self.event(row) for row in rows]

    def event(self, row: tuple) -> Event:
        """The event of a row of :meth:`select` (``READ_FIELDS``)."""
        event_id, version, created_at, producer, schema_id, schema_version = row[:6]
        payload, files, links, metadata, position = row[6:]
        schema = self.schemas.get((schema_id, schema_version))
        if schema is None:
            if len(self.schemas) >= SCHEMA_REFS_KEPT:
                self.schemas.clear()
            schema = self.schemas[schema_id, schema_version] = SchemaRef(schema_id, schema_version)
        return new_event(
            EventId(self.uuid(event_id), version),
            self.instant(created_at),
            schema,
            _json_value(payload),
            producer,
            () if files == "[]" else tuple(map(FileRecord.from_dict, json.loads(files))),
            () if links == "[]" else tuple(map(_stored_link, json.loads(links))),
            _json_value(metadata),
            position,
        )


def _stored_link(data: dict[str, Any]) -> Link:
    """A link as ``Link.to_dict`` stored it, without the checks of a link from a client
    (:meth:`Link.from_dict`, still used for any other shape)."""
    target, link_type, metadata = data.get("targetEvent"), data.get("type"), data.get("metadata")
    if type(target) is dict and type(link_type) is str and link_type and type(metadata) is dict:
        version = target.get("version")
        if version is None or (type(version) is int and version >= 1):
            return Link(link_type, EventId(_stored_uuid(target["id"]), version), metadata)
    return Link.from_dict(data)


def _same(value: Any) -> Any:
    return value


def _stored_uuid(text: str) -> uuid.UUID:
    """``uuid.UUID(text)`` of the 32 hex digits Trove stores on SQLite (or the 36 of the
    canonical form in a stored link), built as its constructor builds it, without the
    clean-up of other spellings that it tries first (anything else goes to it)."""
    digits = text.replace("-", "") if len(text) == 36 else text
    if len(digits) == 32 and digits.isalnum():
        value = object.__new__(uuid.UUID)
        object.__setattr__(value, "int", int(digits, 16))
        object.__setattr__(value, "is_safe", uuid.SafeUUID.unknown)
        return value
    return uuid.UUID(text)


def _sqlite_instant(value: Any, *, connection, zone: tzinfo) -> datetime:
    """Django's ``convert_datetimefield_value`` on SQLite for the stored text of a time, in
    the case it always meets: naive UTC text (as ``str(datetime)`` wrote it) read with
    ``USE_TZ`` and a UTC connection, parsed as that time in UTC in one ``fromisoformat``."""
    if type(value) is str and zone is UTC and settings.USE_TZ and len(value) in (19, 26):
        return datetime.fromisoformat(value + "+00:00")
    return connection.ops.convert_datetimefield_value(value, None, connection)
