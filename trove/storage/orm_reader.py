"""How ``storage-orm`` and ``storage-sqlite`` read events: the compiler's SQL run on the
connection's cursor and each row turned into an :class:`~trove.documents.Event` as the ORM
would (``from_db_value`` and the backend's converters), without a queryset per query."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.backends import utils as backend_utils

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


#: The C scanner under ``json.loads``, called without the checks around it.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _json_text(text: Any) -> Any:
    """``json.loads(text)``: the scanner's value when it reads the whole text from its first
    character, as it does the JSON Django writes; anything else (leading or trailing
    whitespace, a byte-order mark, an error, not text) goes to ``json.loads`` itself, so
    the value or the error is the same. A third of the cost of the wrapper's checks."""
    try:
        value, end = _scan_json(text, 0)
    except (StopIteration, ValueError, TypeError):
        return json.loads(text)
    if end == len(text):
        return value
    return json.loads(text)


def _json_value(text: str) -> Any:
    """``JSONField.from_db_value`` of a whole column: the JSON text decoded (the empty
    object and array, most metadata, files and links, without parsing)."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return _json_text(text)


#: The slot setters of the immutable ids and links a row holds: built as their frozen
#: ``__init__`` builds them (they have no ``__post_init__``), without its
#: ``object.__setattr__`` per field, as :func:`~trove.documents.new_event` builds events.
_new = object.__new__
_set_id, _set_version = EventId.__dict__["id"].__set__, EventId.__dict__["version"].__set__
_set_type, _set_target, _set_metadata = (
    Link.__dict__[name].__set__ for name in ("type", "target", "metadata")
)
_set_uuid_int, _set_uuid_safe = (
    uuid.UUID.__dict__["int"].__set__,
    uuid.UUID.__dict__["is_safe"].__set__,
)
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown
_from_iso = datetime.fromisoformat


def _event_id(value: uuid.UUID, version: int | None) -> EventId:
    """``EventId(value, version)``."""
    event_id = _new(EventId)
    _set_id(event_id, value)
    _set_version(event_id, version)
    return event_id


def _cursor_wrapper_patched() -> bool:
    """Whether a tool replaced ``CursorWrapper.execute``, as APM integrations (Sentry's)
    do to see every query: its code then comes from outside Django's module, even when
    ``functools.wraps`` gave it the original's name."""
    execute = backend_utils.CursorWrapper.execute
    return getattr(execute, "__code__", None) is None or (
        execute.__code__.co_filename != backend_utils.__file__
    )


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

        prepare_instant, sqlite = adapter(event, "created_at"), connection.vendor == "sqlite"

        def instant_value(value: Any) -> Any:
            """``DateTimeField.get_db_prep_value`` of a query's time: for the aware UTC
            times ``EventQuery`` holds, the value itself on PostgreSQL, and on SQLite
            with ``USE_TZ`` and a UTC connection its naive text, at a tenth of the cost
            of the field's checks and the backend's conversion."""
            if type(value) is datetime and value.tzinfo is UTC:
                if not sqlite:
                    return value
                if connection.timezone is UTC and settings.USE_TZ:
                    return value.isoformat(" ")[:-6]  # str() of the naive time: no "+00:00"
            return prepare_instant(value)

        prepare_uuid = adapter(event, "event_id")
        native_uuid = connection.features.has_native_uuid_field

        def uuid_value(value: Any) -> Any:
            """``UUIDField.get_db_prep_value``: a UUID as it is, or its hex digits."""
            if type(value) is uuid.UUID:
                return value if native_uuid else value.hex
            return prepare_uuid(value)

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
            instant=instant_value,
            uuid=uuid_value,
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
            # times the cost of :meth:`instant`'s ``fromisoformat`` (``+`` changes no
            # value, only leaves the result without a declared type).
            created = storage.READ_FIELDS.index("created_at")
            selected[created] = f"+{selected[created]}"
        self.head = f"SELECT {', '.join(selected)} FROM {self.table} WHERE "
        self.registered: Any = None
        self.sqlite = connection.vendor == "sqlite"
        # The converters Django would apply: on PostgreSQL psycopg gives UUIDs and aware
        # datetimes as they are; SQLite stores hex UUIDs and naive UTC (connection time
        # zone) text, which Django's converters turn into the same objects as these.
        self.uuid: Callable[[Any], uuid.UUID] = _stored_uuid if self.sqlite else _same
        #: The schema references met so far, shared by the events of every row that
        #: names them (immutable, so one object serves them all).
        self.schemas: dict[tuple[str, str | None], SchemaRef] = {}
        #: The converters of stored times, by whether Django's settings are those of the
        #: fast case (:meth:`instant`); the same on PostgreSQL.
        self.instants: tuple[Callable[[Any], datetime], Callable[[Any], datetime]] = (
            _same,
            _same,
        )
        if self.sqlite:
            convert = connection.ops.convert_datetimefield_value

            def django_instant(value: Any) -> datetime:
                return convert(value, None, connection)

            def utc_text(value: Any) -> datetime:
                """``django_instant`` with ``USE_TZ`` and a UTC connection, in the case it
                always meets: naive UTC text (as ``str(datetime)`` wrote it), that time in
                UTC by one ``fromisoformat``."""
                if type(value) is str and len(value) in (19, 26):
                    return _from_iso(value + "+00:00")
                return convert(value, None, connection)

            self.instants = (django_instant, utc_text)

    def instant(self) -> Callable[[Any], datetime]:
        """The converter of the stored times, as Django's settings now say: on PostgreSQL
        psycopg gives aware datetimes; SQLite stores text in the connection's zone."""
        fast = self.connection.timezone is UTC and settings.USE_TZ
        return self.instants[1] if fast else self.instants[0]

    def prepare_connection(self) -> None:
        """Register the SQL functions the compiler's SQLite conditions call, once for each
        driver connection (Django may replace it)."""
        if self.sqlite:
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
        return self.events(self.rows(self.head + condition, params))

    def rows(self, sql: str, params: list[Any]) -> list[tuple]:
        """The rows of ``sql`` (``%s`` placeholders), on the driver's cursor.

        Django's cursor wrapper costs as much as a one-row SELECT on SQLite (the wrapper,
        its placeholder rewriting by regular expression, the execute wrappers); this makes
        the checks it makes (a usable connection in this thread, no broken transaction)
        and translates the driver's errors as it does. Whenever anything watches
        Django's cursor (the query log of ``DEBUG``, an execute wrapper, a replaced
        ``cursor`` method) the query goes through it instead."""
        connection = self.connection
        if (
            connection.queries_logged
            or connection.execute_wrappers
            or "cursor" in vars(connection)
            or _cursor_wrapper_patched()
        ):
            self.prepare_connection()
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        connection.validate_thread_sharing()
        connection.validate_no_broken_transaction()
        driver = connection.connection
        with connection.wrap_database_errors:
            if self.sqlite:
                if driver is not self.registered:
                    register_functions(driver)
                    self.registered = driver
                # The compiler writes no ``%`` but its placeholders, so this is what
                # Django's ``convert_query`` makes of the text.
                return driver.execute(sql.replace("%s", "?"), params).fetchall()
            cursor = connection.create_cursor()
            try:
                cursor.execute(sql, params)
                return cursor.fetchall()
            finally:
                cursor.close()

    def events(self, rows: list[tuple]) -> list[Event]:
        """The event of each row of :meth:`select` (``READ_FIELDS``)."""
        instant, stored_uuid, schemas = self.instant(), self.uuid, self.schemas
        found: list[Event] = []
        append = found.append
        for (
            event_id,
            version,
            created_at,
            producer,
            schema_id,
            schema_version,
            payload,
            files,
            links,
            metadata,
            position,
        ) in rows:
            schema = schemas.get((schema_id, schema_version))
            if schema is None:
                if len(schemas) >= SCHEMA_REFS_KEPT:
                    schemas.clear()
                schema = schemas[schema_id, schema_version] = SchemaRef(schema_id, schema_version)
            append(
                new_event(
                    _event_id(stored_uuid(event_id), version),
                    instant(created_at),
                    schema,
                    _json_value(payload),
                    producer,
                    () if files == "[]" else tuple(map(FileRecord.from_dict, _json_text(files))),
                    () if links == "[]" else tuple(map(_stored_link, _json_text(links))),
                    _json_value(metadata),
                    position,
                )
            )
        return found


def _stored_link(data: dict[str, Any]) -> Link:
    """A link as ``Link.to_dict`` stored it, without the checks of a link from a client
    (:meth:`Link.from_dict`, still used for any other shape)."""
    target, link_type, metadata = data.get("targetEvent"), data.get("type"), data.get("metadata")
    if type(target) is dict and type(link_type) is str and link_type and type(metadata) is dict:
        version = target.get("version")
        if version is None or (type(version) is int and version >= 1):
            link = _new(Link)
            _set_type(link, link_type)
            _set_target(link, _event_id(_stored_uuid(target["id"]), version))
            _set_metadata(link, metadata)
            return link
    return Link.from_dict(data)


def _same(value: Any) -> Any:
    return value


def _stored_uuid(text: str) -> uuid.UUID:
    """``uuid.UUID(text)`` of the 32 hex digits Trove stores on SQLite (or the 36 of the
    canonical form in a stored link), built as its constructor builds it, without the
    clean-up of other spellings that it tries first (anything else goes to it)."""
    digits = text.replace("-", "") if len(text) == 36 else text
    if len(digits) == 32 and digits.isalnum():
        value = _new(uuid.UUID)
        _set_uuid_int(value, int(digits, 16))
        _set_uuid_safe(value, _UNKNOWN_SAFETY)
        return value
    return uuid.UUID(text)
