"""The SQLite index of ``storage-json-file``: what reads use instead of opening documents.

Per event it keeps the latest version's filter and sort columns, its payload and the rest
of its document, so a query is answered without opening a file; per link of every
version it keeps a row, so link filters and backlinks need no scan; per version, by
position, the feed (SPEC §9) keeps its schema, producer and document. It is a cache of the
documents: the storage rebuilds it whenever it is missing, damaged, of another format, or
out of step with the write journal (see ``trove.storage.jsonfile``), so nothing here is
ever the only copy. ``text`` queries find their candidates in an FTS5 index of each
event's words (:class:`~trove.storage.sql.WordIndex`), kept in step by triggers.

The SQL of a query is built by the same :class:`~trove.storage.sql.Compiler` the ORM
backends use (its ``%s`` placeholders become ``?``), so this backend answers every query
exactly as they do. Paths and values
travel as parameters, never as SQL text.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from trove.documents import Event, EventId, Link, format_instant
from trove.exceptions import QueryError, StorageError
from trove.query import EventQuery, payload_words
from trove.storage.sql import (
    QUERY_TOO_LARGE,
    Compiler,
    SQLiteDialect,
    Table,
    WordIndex,
    distinct_values,
    exceeds_database_limits,
    register_functions,
)

#: Bumped when the tables change; an index of another format is rebuilt, not migrated.
FORMAT = 4
#: The FTS5 index of ``events.words``, kept in step by triggers, for ``text`` queries.
WORDS = WordIndex("events_words", "events")
SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        producer TEXT NOT NULL,
        schema_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        envelope TEXT NOT NULL,
        words TEXT NOT NULL
    )""",
    "CREATE INDEX events_by_time ON events (created_at, event_id)",
    "CREATE INDEX events_by_producer ON events (producer, created_at)",
    "CREATE INDEX events_by_schema ON events (schema_id, created_at)",
    """CREATE TABLE links (
        source_id TEXT NOT NULL,
        source_version INTEGER NOT NULL,
        position INTEGER NOT NULL,
        type TEXT NOT NULL,
        target_id TEXT NOT NULL,
        target_version INTEGER,
        metadata TEXT NOT NULL,
        PRIMARY KEY (source_id, source_version, position)
    ) WITHOUT ROWID""",
    "CREATE INDEX links_by_target ON links (target_id, type)",
    """CREATE TABLE feed (
        position INTEGER PRIMARY KEY,
        schema_id TEXT NOT NULL,
        producer TEXT NOT NULL,
        document TEXT NOT NULL
    )""",
    "CREATE INDEX feed_by_schema ON feed (schema_id, position)",
    "CREATE INDEX feed_by_producer ON feed (producer, position)",
    *WORDS.statements(),
)
#: Rows per upsert statement: one statement for many rows, as the words index's triggers
#: write the index once per statement (see ``WordIndex``); 8 parameters a row.
UPSERT_ROWS = 500
UPSERT_EVENT = """
    INSERT INTO events
        (event_id, version, created_at, producer, schema_id, payload, envelope, words)
    VALUES {rows}
    ON CONFLICT (event_id) DO UPDATE SET
        version = excluded.version, created_at = excluded.created_at,
        producer = excluded.producer, schema_id = excluded.schema_id,
        payload = excluded.payload, envelope = excluded.envelope, words = excluded.words
    WHERE excluded.version > events.version
"""
INSERT_LINK = "INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_FEED = "INSERT OR REPLACE INTO feed VALUES (?, ?, ?, ?)"
SET_GENERATION = "INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?)"

# The payload has a column of its own: JSON functions then parse only it, not the whole
# document (a third less time on payload filters); the envelope is the rest of it. Its
# keys are written as they are, not escaped (see _compact). Created timestamps are stored
# as format_instant() text: fixed width UTC, so text order is time order; ids are
# canonical UUID text, so text order is the reference's str order.
COMPILER = Compiler(
    SQLiteDialect("e.payload", ascii_keys=False),
    Table(
        columns={
            "createdAt": "e.created_at",
            "producer": "e.producer",
            "schema": "e.schema_id",
            "id": "e.event_id",
            "version": "e.version",
        },
        words="e.words",
        links="links",
        link_columns={
            "source": "links.source_id",
            "source_version": "links.source_version",
            "type": "links.type",
            "target": "links.target_id",
            "target_version": "links.target_version",
        },
        instant=format_instant,
        uuid=str,
        word_index=WORDS,
        row_id="e.rowid",
    ),
)
COLUMNS = "e.payload, e.envelope"
DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
BATCH = 1000


class IndexDamaged(StorageError):
    """The index file is not a readable SQLite database; it is thrown away and rebuilt."""

    code = "index_damaged"


def is_damage(error: sqlite3.Error) -> bool:
    """Whether a SQLite error means the file itself is broken (as opposed to busy or I/O)."""
    return getattr(error, "sqlite_errorname", None) in DAMAGED


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode: readers never block the writer, commits are fsynced."""
    connection = sqlite3.connect(
        str(path), timeout=30, isolation_level=None, check_same_thread=False
    )
    register_functions(connection)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
    except sqlite3.DatabaseError as error:
        connection.close()
        if is_damage(error):
            raise IndexDamaged(f"The index {path} is damaged ({error}).") from error
        raise
    return connection


@contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def generation(connection: sqlite3.Connection) -> int | None:
    """The journal generation the index reflects; ``None`` if it is empty or another format."""
    try:
        if connection.execute("PRAGMA user_version").fetchone()[0] != FORMAT:
            return None
        row = connection.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    except sqlite3.DatabaseError as error:
        if is_damage(error):
            raise IndexDamaged(f"The index is damaged ({error}).") from error
        raise
    return None if row is None else int(row[0])


def apply(connection: sqlite3.Connection, events: list[Event], generation: int) -> None:
    """Record committed versions (each becomes the latest unless a newer one is indexed)."""
    with write_transaction(connection):
        _insert(connection, events)
        connection.execute(SET_GENERATION, (str(generation),))


def replace_all(
    connection: sqlite3.Connection,
    events: Iterable[Event],
    generation: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rebuild from scratch in one transaction (readers see the old index until it commits).

    Returns how many events (distinct ids) the new index holds.
    """
    with write_transaction(connection):
        for table in (WORDS.table, "feed", "links", "events", "meta"):
            connection.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in SCHEMA:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {FORMAT}")
        batch: list[Event] = []
        done = 0
        for event in events:
            batch.append(event)
            if len(batch) == BATCH:
                _insert(connection, batch)
                done += len(batch)
                batch = []
                if progress is not None:
                    progress(done)
        _insert(connection, batch)
        connection.execute(SET_GENERATION, (str(generation),))
        return connection.execute("SELECT count(*) FROM events").fetchone()[0]


def _insert(connection: sqlite3.Connection, events: list[Event]) -> None:
    rows = [
        (
            str(event.uuid),
            event.version,
            format_instant(event.created_at),
            event.producer,
            event.schema.id,
            *_split(event),
            " ".join(payload_words(event.payload)),
        )
        for event in events
    ]
    for start in range(0, len(rows), UPSERT_ROWS):
        chunk = rows[start : start + UPSERT_ROWS]
        marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        connection.execute(
            UPSERT_EVENT.format(rows=marks), [value for row in chunk for value in row]
        )
    connection.executemany(
        INSERT_LINK,
        [
            (
                str(event.uuid),
                event.version,
                position,
                link.type,
                str(link.target.id),
                link.target.version,
                _compact(link.metadata),
            )
            for event in events
            for position, link in enumerate(event.links)
        ],
    )
    connection.executemany(
        INSERT_FEED,
        [
            (event.position, event.schema.id, event.producer, _compact(event.to_dict()))
            for event in events
        ],
    )


def _split(event: Event) -> tuple[str, str]:
    """(payload, envelope) as compact JSON: the document in two parts."""
    envelope = event.to_dict()
    payload = envelope.pop("payload")
    return _compact(payload), _compact(envelope)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode(payload: str, envelope: str) -> Event:
    document = json.loads(envelope)
    document["payload"] = json.loads(payload)
    return Event.from_dict(document)


def latest(connection: sqlite3.Connection, event_id: uuid.UUID) -> Event | None:
    """The latest committed version of an event, from its indexed document."""
    row = connection.execute(
        f"SELECT {COLUMNS} FROM events e WHERE event_id = ?", (str(event_id),)
    ).fetchone()
    return None if row is None else decode(*row)


def last_position(connection: sqlite3.Connection) -> int:
    """The highest position indexed (0 when there is none)."""
    return connection.execute("SELECT coalesce(max(position), 0) FROM feed").fetchone()[0]


def feed(
    connection: sqlite3.Connection,
    after: int,
    limit: int,
    schemas: Collection[str],
    producers: Collection[str],
) -> list[Event]:
    """Up to ``limit`` versions after position ``after``, in position order."""
    sql = "SELECT document FROM feed WHERE position > ?"
    params: list[Any] = [after]
    for column, values in (("schema_id", schemas), ("producer", producers)):
        if values:
            sql += f" AND {column} IN ({', '.join('?' * len(values))})"
            params.extend(values)
    sql += " ORDER BY position LIMIT ?"
    params.append(limit)
    return [Event.from_dict(json.loads(row[0])) for row in connection.execute(sql, params)]


def backlinks(
    connection: sqlite3.Connection, target: uuid.UUID, type: str | None
) -> list[tuple[EventId, Link]]:
    """Every (source version, link) pointing at ``target``, by source then position."""
    sql = (
        "SELECT source_id, source_version, type, target_id, target_version, metadata "
        "FROM links WHERE target_id = ?"
    )
    params: list[Any] = [str(target)]
    if type is not None:
        sql += " AND type = ?"
        params.append(type)
    sql += " ORDER BY source_id, source_version, position"
    return [
        (
            EventId(uuid.UUID(source), version),
            Link(link_type, EventId(uuid.UUID(target_id), target_version), json.loads(metadata)),
        )
        for source, version, link_type, target_id, target_version, metadata in connection.execute(
            sql, params
        )
    ]


def select(connection: sqlite3.Connection, query: EventQuery) -> list[Event]:
    """The latest versions matching ``query``, ordered and paged as SPEC §3 says."""
    where, params = _where(query)
    order, order_params = _order(query)
    sql = f"SELECT {COLUMNS} FROM events e {where} ORDER BY {order}"
    params += order_params
    if query.limit is not None or query.offset:
        sql += " LIMIT ? OFFSET ?"
        params += [-1 if query.limit is None else query.limit, query.offset]
    with _refused_as_bad_query():
        return [decode(*row) for row in connection.execute(sql, params)]


def count(connection: sqlite3.Connection, query: EventQuery) -> int:
    where, params = _where(query)
    with _refused_as_bad_query():
        return connection.execute(f"SELECT count(*) FROM events e {where}", params).fetchone()[0]


#: The SQL of each field :class:`~trove.storage.base.EventStatistics` counts by.
STATISTICS_COLUMNS = {
    "schema": "e.schema_id",
    "producer": "e.producer",
    "schemaVersion": "json_extract(e.envelope, '$.schema.version')",
}


def count_by_field(
    connection: sqlite3.Connection, field: str, query: EventQuery
) -> list[tuple[str, int]]:
    """``(value, events)`` per value of ``field`` among the matches, most first."""
    column = STATISTICS_COLUMNS[field]
    where, params = _where(query)
    sql = (
        f"SELECT coalesce({column}, '') AS value, count(*) AS n FROM events e {where} "
        "GROUP BY value ORDER BY n DESC, value"
    )
    with _refused_as_bad_query():
        return [(value, n) for value, n in connection.execute(sql, params)]


def created_between(connection: sqlite3.Connection, start: datetime, end: datetime) -> list[str]:
    """The ``createdAt`` text of each latest version created from ``start`` to ``end``
    (read off the time index alone)."""
    sql = "SELECT created_at FROM events WHERE created_at >= ? AND created_at <= ?"
    rows = connection.execute(sql, (format_instant(start), format_instant(end)))
    return [created for (created,) in rows]


def distinct(connection: sqlite3.Connection, field: str, limit: int) -> list[str]:
    """Up to ``limit`` distinct schemas or producers, by a loose scan of their index."""
    column = {"schema": "schema_id", "producer": "producer"}[field]
    sql, params = distinct_values("events", column, "1 = 1", limit)
    return sorted(value for (value,) in connection.execute(_qmark(sql), params))


@contextmanager
def _refused_as_bad_query() -> Iterator[None]:
    """A query SQLite cannot plan for its size or depth is a bad query, not an outage."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if not exceeds_database_limits(error):
            raise
        raise QueryError(QUERY_TOO_LARGE) from error


def _qmark(sql: str) -> str:
    return sql.replace("%s", "?")


def _where(query: EventQuery) -> tuple[str, list[Any]]:
    sql, params = COMPILER.where(query)
    return "WHERE " + _qmark(sql), params


def _order(query: EventQuery) -> tuple[str, list[Any]]:
    terms: list[str] = []
    params: list[Any] = []
    for sql, term_params, descending in COMPILER.order_by(query):
        terms.append(f"{_qmark(sql)} {'DESC' if descending else 'ASC'}")
        params.extend(term_params)
    return ", ".join(terms), params
