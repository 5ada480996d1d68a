"""Queries: Trove's EventQuery beside the same question in hand-written SQL, on the same data.

``storage-sqlite`` holds 100,000 events; ``storage-orm`` on PostgreSQL holds 1,000,000 in
full mode (100,000 in quick mode, as the figure names say). The events are loaded with the
storage's own bulk path (``save_events``, no validation or hooks), then ``ANALYZE`` runs so
both sides plan with statistics (on PostgreSQL ``VACUUM ANALYZE``, which also merges the GIN
index's pending entries, as autovacuum does). On SQLite the payload-equality shapes run a
second time with the option ``payloadIndexes`` naming their paths (and the range's). Seven
query shapes, each answered by 1–50 events:

- payload equality on a top-level key (``order``, unique) and on a nested key
  (``customer.id``, 10 events each);
- producer + time range, newest first, 50 events; a schema, newest first, 50 events;
- events linking to a target (10 each);
- the 50 highest ``payload.amount``;
- a ``where`` range on ``amount`` (about 20 events);
- ``text``: two words of one event's title (the GIN index of the words on PostgreSQL,
  their FTS5 index on SQLite), beside a ``LIKE`` scan of the title and beside the raw SQL
  of the same words index.

Trove's side is ``trove.query_events`` (parse, SQL, rows → events); the reference runs
the SQL a developer would write on the raw driver, selecting the columns Trove reads
(``COLUMNS``) and decoding the JSON ones into dicts and lists as Trove does (``json.loads``
on SQLite, psycopg's ``jsonb`` loader on PostgreSQL). Each run asks for
a different value; p50 and p95 are over all runs, the two sides in alternation (at least
10 runs; a shape stops after ``BUDGET`` seconds).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.measure import latencies
from benchmarks.report import figure

PRODUCERS = [f"producer-{n:02d}" for n in range(20)]
SCHEMAS = ["order.placed", "order.paid", "order.shipped", "order.closed"]
STATUSES = ["new", "paid", "shipped", "closed", "refunded"]
START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(milliseconds=10)
#: Every LINK_EVERY-th event links to the event that starts its block of LINK_BLOCK.
LINK_EVERY, LINK_BLOCK = 10, 100
LIMIT = 50
#: What Trove reads of each event, and the hand-written side selects.
COLUMNS = (
    "event_id, version, created_at, producer, schema_id, schema_version, payload, files, "
    "links, metadata, position"
)
#: The indexes of ``COLUMNS`` holding JSON: the reference decodes them as Trove does.
JSON_COLUMNS = (6, 7, 8, 9)
#: Seconds of measuring per query shape, after at least 10 runs (a scan of 1,000,000 rows
#: takes about a second).
BUDGET = 30.0


def sizes(full: bool) -> tuple[int, int, int]:
    """(events on SQLite, events on PostgreSQL, runs per query)."""
    return (100_000, 1_000_000, 100) if full else (100_000, 100_000, 30)


class Dataset:
    """Deterministic events: ids, times and payloads derived from their position."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.customers = max(1, count // 10)
        seed = random.Random(7)
        self.ids = [uuid.UUID(int=seed.getrandbits(128), version=4) for _ in range(count)]
        self.amounts = [round(seed.uniform(1, 100_000), 2) for _ in range(count)]

    def payload(self, i: int) -> dict[str, Any]:
        return {
            "order": f"ORD-{i:08d}",
            "customer": {"id": f"C{i % self.customers:07d}", "tier": "gold" if i % 7 else "std"},
            "amount": self.amounts[i],
            "status": STATUSES[i % len(STATUSES)],
            "title": f"Order {i} placed through the web shop with standard delivery",
        }

    def created_at(self, i: int) -> datetime:
        return START + i * STEP

    def link_target(self, i: int) -> int | None:
        if i % LINK_EVERY or i < LINK_BLOCK:
            return None
        return (i // LINK_BLOCK) * LINK_BLOCK - LINK_BLOCK

    def events(self, start: int, stop: int):
        from trove.documents import Event, EventId, Link, SchemaRef

        for i in range(start, stop):
            target = self.link_target(i)
            links = () if target is None else (Link("parent", EventId(self.ids[target], 1)),)
            yield Event(
                id=EventId(self.ids[i], 1),
                created_at=self.created_at(i),
                schema=SchemaRef(SCHEMAS[i % len(SCHEMAS)], "1"),
                payload=self.payload(i),
                producer=PRODUCERS[i % len(PRODUCERS)],
                links=links,
            )

    def load(self, chunk: int = 10_000) -> None:
        """Save every event through the configured storage's bulk path."""
        from trove.storage.handler import storages

        for start in range(0, self.count, chunk):
            storages.events.save_events(self.events(start, min(start + chunk, self.count)))

    # Parameters of successive runs -------------------------------------------------

    def sample(self, runs: int) -> list[int]:
        return random.Random(11).sample(range(self.count), runs)

    def time_window(self, i: int) -> tuple[datetime, datetime]:
        """A window holding a tenth of the events, ending at event ``i``."""
        end = self.created_at(i)
        return end - self.count * STEP / 10, end

    def linked_target(self, i: int) -> uuid.UUID:
        block = (i % max(1, self.count // LINK_BLOCK - 1)) * LINK_BLOCK
        return self.ids[block]


class Shape:
    """One query shape: Trove's query and the raw SQL for the ``i``-th parameter."""

    def __init__(
        self,
        name: str,
        trove_query: Callable[[int], dict[str, Any]],
        raw: Callable[[int], tuple[str, list[Any]]],
    ) -> None:
        self.name = name
        self.trove_query = trove_query
        self.raw = raw


def shapes(data: Dataset, vendor: str) -> list[Shape]:
    """The query shapes, with raw SQL for ``vendor`` ("sqlite" or "postgresql")."""
    import json

    def iso(value: datetime) -> str:
        return value.isoformat()

    def raw_time(value: datetime) -> Any:
        return value.replace(tzinfo=None).isoformat(" ") if vendor == "sqlite" else value

    def raw_id(value: uuid.UUID) -> Any:
        return value.hex if vendor == "sqlite" else value

    width = 20 * 100_000 / data.count  # amounts are spread over 1..100,000

    def bounds(i: int) -> tuple[float, float]:
        return data.amounts[i], data.amounts[i] + width

    def words(i: int) -> str:
        return f"order {i}"

    if vendor == "sqlite":
        top = "json_extract(payload, '$.order') = ?"
        nested = "json_extract(payload, '$.customer.id') = ?"
        amount = "json_extract(payload, '$.amount')"
        title = "json_extract(payload, '$.title') LIKE ?"
        mark = "?"
    else:
        top = nested = "payload @> %s::jsonb"
        amount = "(payload ->> 'amount')::numeric"
        title = "payload ->> 'title' ILIKE %s"
        mark = "%s"
    select = f"SELECT {COLUMNS} FROM trove_event WHERE is_latest AND "
    joined = ", ".join(f"e.{column}" for column in COLUMNS.split(", "))

    def top_params(i: int) -> list[Any]:
        order = data.payload(i)["order"]
        return [order if vendor == "sqlite" else json.dumps({"order": order})]

    def nested_params(i: int) -> list[Any]:
        customer = data.payload(i)["customer"]["id"]
        return [customer if vendor == "sqlite" else json.dumps({"customer": {"id": customer}})]

    def window(i: int) -> dict[str, Any]:
        start, end = data.time_window(i)
        return {
            "producer": PRODUCERS[i % len(PRODUCERS)],
            "timeRange": {"start": iso(start), "end": iso(end)},
            "sort": [{"field": "createdAt", "direction": "desc"}],
            "limit": LIMIT,
        }

    def newest(i: int) -> dict[str, Any]:
        return {
            "schema": SCHEMAS[i % len(SCHEMAS)],
            "sort": [{"field": "createdAt", "direction": "desc"}],
            "limit": LIMIT,
        }

    def raw_newest(i: int) -> tuple[str, list[Any]]:
        return (
            select + f"schema_id = {mark} ORDER BY created_at DESC LIMIT {LIMIT}",
            [SCHEMAS[i % len(SCHEMAS)]],
        )

    if vendor == "sqlite":
        indexed_words = (
            "id IN (SELECT rowid FROM trove_event_words WHERE trove_event_words MATCH ?)"
        )
    else:
        indexed_words = "string_to_array(words, ' ') @> %s::text[]"

    def words_params(i: int) -> list[Any]:
        wanted = words(i).split()
        return [" ".join(f'"{w}"' for w in wanted) if vendor == "sqlite" else wanted]

    def raw_window(i: int) -> tuple[str, list[Any]]:
        start, end = data.time_window(i)
        return (
            select + f"producer = {mark} AND created_at >= {mark} AND created_at <= {mark} "
            f"ORDER BY created_at DESC LIMIT {LIMIT}",
            [PRODUCERS[i % len(PRODUCERS)], raw_time(start), raw_time(end)],
        )

    return [
        Shape(
            "payload equality, top-level key",
            lambda i: {"payload": {"order": data.payload(i)["order"]}},
            lambda i: (select + top, top_params(i)),
        ),
        Shape(
            "payload equality, nested key",
            lambda i: {"payload": {"customer.id": data.payload(i)["customer"]["id"]}},
            lambda i: (select + nested, nested_params(i)),
        ),
        Shape("producer + time range, newest 50", window, raw_window),
        Shape("schema, newest 50", newest, raw_newest),
        Shape(
            "link target",
            lambda i: {"links": [{"targetEvent": str(data.linked_target(i))}]},
            lambda i: (
                f"SELECT {joined} FROM trove_eventlink l JOIN trove_event e "
                "ON e.event_id = l.source_event_id AND e.version = l.source_version "
                f"WHERE l.target_event_id = {mark} AND e.is_latest",
                [raw_id(data.linked_target(i))],
            ),
        ),
        Shape(
            "sort by payload.amount, top 50",
            lambda i: {"sort": [{"field": "payload.amount", "direction": "desc"}], "limit": LIMIT},
            lambda i: (select + f"TRUE ORDER BY {amount} DESC LIMIT {LIMIT}", []),
        ),
        Shape(
            "payload range on amount",
            lambda i: {
                "where": [
                    {"path": "amount", "op": "gte", "value": bounds(i)[0]},
                    {"path": "amount", "op": "lt", "value": bounds(i)[1]},
                ]
            },
            lambda i: (select + f"{amount} >= {mark} AND {amount} < {mark}", list(bounds(i))),
        ),
        Shape(
            "text, two words",
            lambda i: {"text": words(i)},
            lambda i: (select + title, [f"%{words(i)} %"]),
        ),
        Shape(
            "text, two words, raw SQL on the words index",
            lambda i: {"text": words(i)},
            lambda i: (select + indexed_words, words_params(i)),
        ),
    ]


def measure(
    label: str,
    data: Dataset,
    vendor: str,
    raw_execute: Callable[[str, list[Any]], list],
    runs: int,
    only: tuple[str, ...] = ("",),
) -> list[dict[str, Any]]:
    """p50 and p95 of every shape (whose name starts with one of ``only``), Trove beside
    raw SQL."""
    import trove

    figures = []
    sample = data.sample(runs + 3)
    for shape in shapes(data, vendor):
        if not shape.name.startswith(only):
            continue
        trove_params, raw_params = iter(sample * 2), iter(sample * 2)
        results = latencies(
            {
                "trove": lambda s=shape, p=trove_params: trove.query_events(s.trove_query(next(p))),
                "raw": lambda s=shape, p=raw_params: raw_execute(*s.raw(next(p))),
            },
            runs=runs,
            budget=BUDGET,
        )
        (trove_p50, trove_p95), (raw_p50, raw_p95) = results["trove"], results["raw"]
        name = f"query {shape.name}, {label}"
        figures.append(figure(f"{name}, p50", trove_p50, "ms", "raw SQL, p50", raw_p50))
        figures.append(figure(f"{name}, p95", trove_p95, "ms", "raw SQL, p95", raw_p95))
    return figures


def check_answers(data: Dataset, vendor: str, raw_execute: Callable[[str, list[Any]], list]):
    """Both sides find the same number of events, so the figures compare the same work."""
    import trove

    i = data.sample(1)[0]
    for shape in shapes(data, vendor):
        found, expected = (
            len(trove.query_events(shape.trove_query(i))),
            len(raw_execute(*shape.raw(i))),
        )
        if found != expected:
            raise AssertionError(f"{shape.name}: Trove found {found} events, raw SQL {expected}.")


def sqlite_figures(root: Path, count: int, runs: int) -> list[dict[str, Any]]:
    """Every shape on storage-sqlite; payload equality again with ``payloadIndexes``."""
    import json
    import sqlite3

    from django.db import connections
    from django.test import override_settings

    from trove.storage.handler import storages
    from trove.storage.orm import SQLiteEventStorage

    path = root / "events.sqlite3"
    data = Dataset(count)
    label = f"storage-sqlite, {count:,} events"
    options: dict[str, Any] = {"path": str(path)}
    raw = sqlite3.connect(path)

    def execute(sql: str, params: list[Any]) -> list:
        """The rows with their JSON columns decoded, as psycopg decodes ``jsonb``."""
        rows = []
        for row in raw.execute(sql, params).fetchall():
            values = list(row)
            for index in JSON_COLUMNS:
                values[index] = json.loads(values[index])
            rows.append(values)
        return rows

    def analyze() -> None:
        with connections[SQLiteEventStorage.alias_for(path)].cursor() as cursor:
            cursor.execute("ANALYZE")

    try:
        with override_settings(
            TROVE={"storage": {"events": {"plugin": "storage-sqlite", "options": options}}}
        ):
            data.load()
            analyze()
            check_answers(data, "sqlite", execute)
            figures = measure(label, data, "sqlite", execute, runs)
        indexed = {**options, "payloadIndexes": ["order", "customer.id", "amount"]}
        with override_settings(
            TROVE={"storage": {"events": {"plugin": "storage-sqlite", "options": indexed}}}
        ):
            storages.events  # noqa: B018 - initializing creates the indexes
            analyze()
            figures += measure(
                f"{label}, payloadIndexes",
                data,
                "sqlite",
                execute,
                runs,
                ("payload equality", "payload range"),
            )
        return figures
    finally:
        raw.close()
        storages.close_all()


def postgres_figures(url: str, count: int, runs: int, full: bool) -> list[dict[str, Any]]:
    import psycopg
    from django.db import connections
    from django.test import override_settings

    from benchmarks.ingest import clear_tables
    from trove.storage.handler import storages

    data = Dataset(count)
    storage = {"events": {"plugin": "storage-orm", "options": {"database": "postgres"}}}
    with override_settings(TROVE={"storage": storage}):
        try:
            clear_tables("postgres")()
            data.load()
            # As autovacuum would: statistics, and the GIN index's pending entries merged.
            with connections["postgres"].cursor() as cursor:
                cursor.execute("VACUUM ANALYZE trove_event")
                cursor.execute("VACUUM ANALYZE trove_eventlink")
            with psycopg.connect(url, autocommit=True) as raw:

                def execute(sql: str, params: list[Any]) -> list:
                    return raw.execute(sql, params).fetchall()

                check_answers(data, "postgresql", execute)
                label = f"storage-orm PostgreSQL, {count:,} events" + ("" if full else " (quick)")
                figures = measure(label, data, "postgresql", execute, runs)
                storages.close_all()
                indexed = {"database": "postgres", "payloadIndexes": ["amount"]}
                with override_settings(
                    TROVE={"storage": {"events": {"plugin": "storage-orm", "options": indexed}}}
                ):
                    storages.events  # noqa: B018 - initializing creates the index
                    with connections["postgres"].cursor() as cursor:
                        cursor.execute("ANALYZE trove_event")  # the expression's statistics
                    figures += measure(
                        f"{label}, payloadIndexes",
                        data,
                        "postgresql",
                        execute,
                        runs,
                        ("payload range",),
                    )
                return figures
        finally:
            clear_tables("postgres")()
            with connections["postgres"].cursor() as cursor:
                cursor.execute(
                    "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'trove_payload_%'"
                )
                for (name,) in cursor.fetchall():
                    cursor.execute(f'DROP INDEX "{name}"')
            storages.close_all()


def run(full: bool) -> list[dict[str, Any]]:
    import os
    import tempfile

    from django.conf import settings

    sqlite_count, postgres_count, runs = sizes(full)
    root = Path(tempfile.mkdtemp(prefix="queries-", dir=settings.BENCH_DIR))
    figures = sqlite_figures(root, sqlite_count, runs)
    if settings.DATABASES.get("postgres"):
        url = os.environ["TROVE_BENCH_POSTGRES_URL"]
        figures += postgres_figures(url, postgres_count, runs, full)
    else:
        print("[queries] PostgreSQL figures skipped: no PostgreSQL server")
    return figures
