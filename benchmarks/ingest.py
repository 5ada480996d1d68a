"""Ingest: ~300-byte events through Trove's Python API beside raw drivers and ``eventsourcing``.

Every event has a 5-key payload (one of them nested) validated against a registered schema.
Trove writes them one per transaction (``trove.create_event``) and as one batch in one
transaction (``trove.create_events``) on ``storage-sqlite``, ``storage-orm`` on PostgreSQL
and ``storage-json-file``. The references write the same rows at the same durability:

- raw ``sqlite3`` into the same table of the same file (WAL, ``synchronous=FULL``): one
  insert per transaction, then ``executemany`` in one transaction;
- raw ``psycopg`` into the same table of the same database: one insert per transaction,
  ``executemany`` and ``COPY`` in one transaction;
- a JSON file per event written to a temporary name, fsynced, renamed and the directory
  fsynced (a batch fsyncs the directory once);
- the ``eventsourcing`` library saving as many new aggregates, one per ``save`` and all in
  one ``save``, on SQLite and on PostgreSQL (with its database insert function).

The raw loops do what any application must (a UUID, a timestamp, JSON encoding) and
nothing more: no validation, no hooks. Each side starts every round on an empty table (and,
on SQLite, an empty write-ahead log).
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from benchmarks.measure import alternating, seconds
from benchmarks.report import figure
from benchmarks.routers import schema_registry_on
from trove.query import payload_words

SCHEMA_ID = "bench.document"
SCHEMA_VERSION = "1.0"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "author", "amount", "tags", "status"],
    "properties": {
        "title": {"type": "string", "maxLength": 200},
        "author": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
        },
        "amount": {"type": "number", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
        "status": {"enum": ["draft", "open", "closed"]},
    },
}
PRODUCER = "bench"
#: Run after emptying a SQLite table, so that each side starts with an empty write-ahead
#: log rather than paying, by chance, for a checkpoint of the other side's writes.
CHECKPOINT = "PRAGMA wal_checkpoint(TRUNCATE)"
COLUMNS = (
    "event_id, version, is_latest, created_at, producer, schema_id, schema_version, "
    "payload, metadata, files, links, position, words"
)
#: The raw references number their rows from a counter in this process (no lock: one
#: writer), as the position column needs; Trove's own writers serialise on the database's
#: write lock (SQLite) or a counter row (PostgreSQL).
_positions = itertools.count(1)


def payload(i: int) -> dict[str, Any]:
    """The payload of the ``i``-th event: about 300 bytes of JSON, 5 keys, one nested."""
    return {
        "title": f"Quarterly report {i:08d} for the finance team (second revision, approved)",
        "author": {"name": "Jane Doe", "email": "jane.doe@example.com", "team": "finance"},
        "amount": 1234.5 + i,
        "tags": ["finance", "quarterly", "report", "approved"],
        "status": "open",
    }


def sizes(full: bool) -> tuple[int, int, int]:
    """(events written one per transaction, events per batch, rounds)."""
    return (2000, 50_000, 5) if full else (300, 5000, 3)


def file_sizes(full: bool) -> tuple[int, int, int]:
    """:func:`sizes` for a JSON directory, where each event is a file and an fsync."""
    return (500, 10_000, 3) if full else (300, 5000, 3)


def per_second(count: int, work: Callable[[], object]) -> float:
    return count / seconds(work)


# Trove ------------------------------------------------------------------------------


class TroveIngest:
    """Trove's Python API on one storage configuration, each round from an empty store."""

    def __init__(self, storage: Callable[[], dict[str, Any]], clear: Callable[[], None]):
        self.storage = storage
        self.clear = clear

    def _measure(self, count: int, batched: bool) -> float:
        from django.test import override_settings

        import trove
        from trove.storage.handler import storages

        payloads = [payload(i) for i in range(count)]
        with override_settings(TROVE={"storage": self.storage()}):
            try:
                storages.events  # noqa: B018 - built and initialized outside the timing
                self.clear()
                if batched:
                    items = [
                        {"schema": SCHEMA_ID, "payload": p, "producer": PRODUCER} for p in payloads
                    ]
                    return per_second(count, lambda: trove.create_events(items))

                def singles() -> None:
                    for p in payloads:
                        trove.create_event(SCHEMA_ID, p, producer=PRODUCER)

                return per_second(count, singles)
            finally:
                storages.close_all()

    def single(self, count: int) -> Callable[[], float]:
        return lambda: self._measure(count, batched=False)

    def batch(self, count: int) -> Callable[[], float]:
        return lambda: self._measure(count, batched=True)


def register_schema(alias: str = "default") -> None:
    """Register the benchmark's schema in the registry on database ``alias``."""
    import trove

    with schema_registry_on(alias):
        trove.register_schema(SCHEMA_ID, SCHEMA_VERSION, SCHEMA)


def clear_tables(alias: str) -> Callable[[], None]:
    """Empty Trove's tables on a database alias."""

    def clear() -> None:
        from django.db import connections

        connection = connections[alias]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("TRUNCATE trove_event, trove_eventlink, trove_eventfile")
            else:
                for table in ("trove_event", "trove_eventlink", "trove_eventfile"):
                    cursor.execute(f"DELETE FROM {table}")
                cursor.execute(CHECKPOINT)

    return clear


# SQLite -----------------------------------------------------------------------------


def sqlite_row(p: dict[str, Any]) -> tuple:
    """A row as Django stores it in SQLite: hex UUID, naive UTC text timestamp, JSON text."""
    created = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    return (uuid.uuid4().hex, 1, 1, created, PRODUCER, SCHEMA_ID, SCHEMA_VERSION) + (
        json.dumps(p),
        "{}",
        "[]",
        "[]",
        next(_positions),
        " ".join(payload_words(p)),
    )


class RawSQLite:
    """``sqlite3`` on the same file as ``storage-sqlite``, with its durability settings."""

    insert = f"INSERT INTO trove_event ({COLUMNS}) VALUES ({', '.join(['?'] * 13)})"

    def __init__(self, path: Path) -> None:
        import sqlite3

        self.connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")

    def clear(self) -> None:
        self.connection.execute("DELETE FROM trove_event")
        self.connection.execute(CHECKPOINT)

    def single(self, count: int) -> Callable[[], float]:
        def measure() -> float:
            payloads = [payload(i) for i in range(count)]
            self.clear()

            def work() -> None:
                for p in payloads:  # each INSERT its own (autocommitted) transaction
                    self.connection.execute(self.insert, sqlite_row(p))

            return per_second(count, work)

        return measure

    def executemany(self, count: int) -> Callable[[], float]:
        def measure() -> float:
            payloads = [payload(i) for i in range(count)]
            self.clear()

            def work() -> None:
                self.connection.execute("BEGIN IMMEDIATE")
                self.connection.executemany(self.insert, (sqlite_row(p) for p in payloads))
                self.connection.execute("COMMIT")

            return per_second(count, work)

        return measure

    def close(self) -> None:
        self.connection.close()


# PostgreSQL -------------------------------------------------------------------------


def postgres_row(p: dict[str, Any]) -> tuple:
    from psycopg.types.json import Jsonb

    return (uuid.uuid4(), 1, True, datetime.now(UTC), PRODUCER, SCHEMA_ID, SCHEMA_VERSION) + (
        Jsonb(p),
        Jsonb({}),
        Jsonb([]),
        Jsonb([]),
        next(_positions),
        " ".join(payload_words(p)),
    )


class RawPostgreSQL:
    """``psycopg`` on the same database and table as ``storage-orm``."""

    insert = f"INSERT INTO trove_event ({COLUMNS}) VALUES ({', '.join(['%s'] * 13)})"

    def __init__(self, url: str) -> None:
        import psycopg

        self.connection = psycopg.connect(url)

    def clear(self) -> None:
        self.connection.execute("TRUNCATE trove_event")
        self.connection.commit()

    def _measure(self, count: int, work: Callable[[list[dict[str, Any]]], None]) -> float:
        payloads = [payload(i) for i in range(count)]
        self.clear()
        return per_second(count, lambda: work(payloads))

    def single(self, count: int) -> Callable[[], float]:
        def work(payloads: list[dict[str, Any]]) -> None:
            with self.connection.cursor() as cursor:
                for p in payloads:
                    cursor.execute(self.insert, postgres_row(p))
                    self.connection.commit()

        return lambda: self._measure(count, work)

    def executemany(self, count: int) -> Callable[[], float]:
        def work(payloads: list[dict[str, Any]]) -> None:
            with self.connection.cursor() as cursor:
                cursor.executemany(self.insert, [postgres_row(p) for p in payloads])
            self.connection.commit()

        return lambda: self._measure(count, work)

    def copy(self, count: int) -> Callable[[], float]:
        def work(payloads: list[dict[str, Any]]) -> None:
            with self.connection.cursor() as cursor:
                with cursor.copy(f"COPY trove_event ({COLUMNS}) FROM STDIN") as copy:
                    for p in payloads:
                        copy.write_row(postgres_row(p))
            self.connection.commit()

        return lambda: self._measure(count, work)

    def close(self) -> None:
        self.connection.close()


# Files ------------------------------------------------------------------------------


class DurableFiles:
    """One JSON document per event: write to a temporary name, fsync, rename, fsync dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.round = 0

    def _directory(self) -> Path:
        self.round += 1
        directory = self.root / f"round-{self.round}"
        directory.mkdir(parents=True)
        return directory

    @staticmethod
    def _write(directory: Path, p: dict[str, Any]) -> None:
        identifier = uuid.uuid4()
        document = {
            "id": {"id": str(identifier), "version": 1},
            "createdAt": datetime.now(UTC).isoformat(),
            "producer": PRODUCER,
            "schema": {"id": SCHEMA_ID, "version": SCHEMA_VERSION},
            "payload": p,
            "files": [],
            "links": [],
            "metadata": {},
        }
        final = directory / f"{identifier}.json"
        temporary = directory / f".{identifier}.tmp"
        with open(temporary, "wb") as stream:
            stream.write(json.dumps(document).encode())
            stream.flush()
            os.fsync(stream.fileno())
        os.rename(temporary, final)

    @staticmethod
    def _sync_directory(directory: Path) -> None:
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def single(self, count: int) -> Callable[[], float]:
        def measure() -> float:
            payloads = [payload(i) for i in range(count)]
            directory = self._directory()

            def work() -> None:
                for p in payloads:
                    self._write(directory, p)
                    self._sync_directory(directory)

            return per_second(count, work)

        return measure

    def batch(self, count: int) -> Callable[[], float]:
        def measure() -> float:
            payloads = [payload(i) for i in range(count)]
            directory = self._directory()

            def work() -> None:
                for p in payloads:
                    self._write(directory, p)
                self._sync_directory(directory)

            return per_second(count, work)

        return measure


# eventsourcing ----------------------------------------------------------------------


class Document(Aggregate):
    """The ``eventsourcing`` aggregate holding the benchmark's payload."""

    def __init__(self, title, author, amount, tags, status):
        self.title = title
        self.author = author
        self.amount = amount
        self.tags = tags
        self.status = status


class DocumentApplication(Application):
    def create(self, p: dict[str, Any]) -> None:
        self.save(Document(**p))

    def create_many(self, payloads: list[dict[str, Any]]) -> None:
        self.save(*(Document(**p) for p in payloads))


class EventSourcing:
    """``eventsourcing`` saving new aggregates; a fresh store each round."""

    def __init__(self, env: Callable[[], dict[str, str]], clear: Callable[[Any], None]):
        self.env = env
        self.clear = clear

    def _measure(self, count: int, batched: bool) -> float:
        payloads = [payload(i) for i in range(count)]
        app = DocumentApplication(env=self.env())
        try:
            self.clear(app)
            if batched:
                return per_second(count, lambda: app.create_many(payloads))

            def work() -> None:
                for p in payloads:
                    app.create(p)

            return per_second(count, work)
        finally:
            app.close()

    def single(self, count: int) -> Callable[[], float]:
        return lambda: self._measure(count, batched=False)

    def batch(self, count: int) -> Callable[[], float]:
        return lambda: self._measure(count, batched=True)


def eventsourcing_sqlite(root: Path) -> EventSourcing:
    counter = iter(range(1_000_000))

    def env() -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(root / f"eventsourcing-{next(counter)}.sqlite3"),
        }

    return EventSourcing(env, lambda app: None)


def eventsourcing_postgres(url: str) -> EventSourcing:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info["dbname"]),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        # Its insert function, one statement per save: the default pipelined statements
        # stall here now and then (the server waits for the client, forever).
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    }

    def clear(app) -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"TRUNCATE {app.recorder.events_table_name}")

    return EventSourcing(lambda: env, clear)


# The figures ------------------------------------------------------------------------


def sqlite_figures(root: Path, single: int, batch: int, rounds: int) -> list[dict[str, Any]]:
    from trove.storage.orm import SQLiteEventStorage

    path = root / "storage-sqlite" / "events.sqlite3"
    storage = {"events": {"plugin": "storage-sqlite", "options": {"path": str(path)}}}
    trove_ingest = TroveIngest(lambda: storage, clear_tables(SQLiteEventStorage.alias_for(path)))
    trove_ingest.batch(1)()  # creates the file and its tables
    raw = RawSQLite(path)
    peer = eventsourcing_sqlite(root)
    try:
        singles = alternating(
            {
                "trove": trove_ingest.single(single),
                "raw": raw.single(single),
                "eventsourcing": peer.single(single),
            },
            rounds,
        )
        batches = alternating(
            {
                "trove": trove_ingest.batch(batch),
                "raw": raw.executemany(batch),
                "eventsourcing": peer.batch(batch),
            },
            rounds,
        )
    finally:
        raw.close()
    rate = "events/s"
    return [
        figure(
            "ingest 1/transaction, storage-sqlite",
            singles["trove"],
            rate,
            "sqlite3 1 insert/transaction, WAL, synchronous=FULL",
            singles["raw"],
        ),
        figure(
            f"ingest batch of {batch:,}, storage-sqlite",
            batches["trove"],
            rate,
            "sqlite3 executemany, 1 transaction",
            batches["raw"],
        ),
        figure(
            "ingest 1/transaction, storage-sqlite",
            singles["trove"],
            rate,
            "eventsourcing on SQLite, 1 aggregate/save",
            singles["eventsourcing"],
        ),
        figure(
            f"ingest batch of {batch:,}, storage-sqlite",
            batches["trove"],
            rate,
            f"eventsourcing on SQLite, {batch:,} aggregates/save",
            batches["eventsourcing"],
        ),
    ]


def postgres_figures(url: str, single: int, batch: int, rounds: int) -> list[dict[str, Any]]:
    storage = {"events": {"plugin": "storage-orm", "options": {"database": "postgres"}}}
    trove_ingest = TroveIngest(lambda: storage, clear_tables("postgres"))
    raw = RawPostgreSQL(url)
    peer = eventsourcing_postgres(url)
    register_schema("postgres")
    try:
        with schema_registry_on("postgres"):
            singles = alternating(
                {
                    "trove": trove_ingest.single(single),
                    "raw": raw.single(single),
                    "eventsourcing": peer.single(single),
                },
                rounds,
            )
            batches = alternating(
                {
                    "trove": trove_ingest.batch(batch),
                    "raw": raw.executemany(batch),
                    "copy": raw.copy(batch),
                    "eventsourcing": peer.batch(batch),
                },
                rounds,
            )
    finally:
        raw.close()
    rate = "events/s"
    return [
        figure(
            "ingest 1/transaction, storage-orm PostgreSQL",
            singles["trove"],
            rate,
            "psycopg 1 insert/transaction",
            singles["raw"],
        ),
        figure(
            f"ingest batch of {batch:,}, storage-orm PostgreSQL",
            batches["trove"],
            rate,
            "psycopg executemany, 1 transaction",
            batches["raw"],
        ),
        figure(
            f"ingest batch of {batch:,}, storage-orm PostgreSQL",
            batches["trove"],
            rate,
            "psycopg COPY, 1 transaction",
            batches["copy"],
        ),
        figure(
            "ingest 1/transaction, storage-orm PostgreSQL",
            singles["trove"],
            rate,
            "eventsourcing on PostgreSQL, 1 aggregate/save",
            singles["eventsourcing"],
        ),
        figure(
            f"ingest batch of {batch:,}, storage-orm PostgreSQL",
            batches["trove"],
            rate,
            f"eventsourcing on PostgreSQL, {batch:,} aggregates/save",
            batches["eventsourcing"],
        ),
    ]


def jsonfile_figures(root: Path, single: int, batch: int, rounds: int) -> list[dict[str, Any]]:
    counter = iter(range(1_000_000))

    def storage() -> dict[str, Any]:
        directory = root / "storage-json-file" / f"round-{next(counter)}"
        return {"events": {"plugin": "storage-json-file", "options": {"directory": str(directory)}}}

    trove_ingest = TroveIngest(storage, lambda: None)
    raw = DurableFiles(root / "durable-files")
    singles = alternating({"trove": trove_ingest.single(single), "raw": raw.single(single)}, rounds)
    batches = alternating({"trove": trove_ingest.batch(batch), "raw": raw.batch(batch)}, rounds)
    rate = "events/s"
    return [
        figure(
            "ingest 1/transaction, storage-json-file",
            singles["trove"],
            rate,
            "file per event: write, fsync, rename, fsync dir",
            singles["raw"],
        ),
        figure(
            f"ingest batch of {batch:,}, storage-json-file",
            batches["trove"],
            rate,
            "file per event: write, fsync, rename; 1 dir fsync",
            batches["raw"],
        ),
    ]


def run(full: bool) -> list[dict[str, Any]]:
    from django.conf import settings

    single, batch, rounds = sizes(full)
    root = Path(tempfile.mkdtemp(prefix="ingest-", dir=settings.BENCH_DIR))
    register_schema()
    figures = sqlite_figures(root, single, batch, rounds)
    postgres = settings.DATABASES.get("postgres")
    if postgres:
        figures += postgres_figures(os.environ["TROVE_BENCH_POSTGRES_URL"], single, batch, rounds)
    else:
        print("[ingest] PostgreSQL figures skipped: no PostgreSQL server")
    try:
        import trove.storage.jsonfile  # noqa: F401 - present once the JSON backend lands
    except ImportError as error:
        print(f"[ingest] storage-json-file figures skipped: {error}")
    else:
        figures += jsonfile_figures(root, *file_sizes(full))
    return figures
