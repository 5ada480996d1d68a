"""Queries on ``storage-json-file`` beside the same queries on ``storage-sqlite``.

Both stores get the same events (100,000 full, 10,000 quick), loaded through each
storage's own batch method (``save_events``, 10,000 per commit) so that loading takes
seconds rather than the better part of an hour through the Python API's one transaction
per event. Then two queries run in alternation on the two stores, and each reports p50
and p95 latency:

- payload equality: ``{"payload": {"customer": "customer-0042"}}``, one event in 1,000;
- producer and time range: one producer of ten over a window holding 1,000 events,
  so about 100 match.

The load rate of both stores is reported too. Every event is a ~350-byte document
(the ingest benchmark's payload plus a ``customer`` key), created one minute apart.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.ingest import payload
from benchmarks.measure import latencies, seconds
from benchmarks.report import figure

PRODUCERS = [f"producer-{n}" for n in range(10)]
START = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 10_000


def sizes(full: bool) -> tuple[int, int]:
    """(events, timed runs of each query)."""
    return (100_000, 60) if full else (10_000, 30)


def events(count: int) -> list[Any]:
    from trove.documents import Event, EventId, SchemaRef

    return [
        Event(
            id=EventId(uuid.uuid4(), 1),
            created_at=START + timedelta(minutes=i),
            schema=SchemaRef("bench.order", "1.0"),
            payload={**payload(i), "customer": f"customer-{i % 1000:04d}"},
            producer=PRODUCERS[i % len(PRODUCERS)],
        )
        for i in range(count)
    ]


def queries(count: int) -> dict[str, dict[str, Any]]:
    from trove.documents import format_instant

    middle = START + timedelta(minutes=count // 2)
    return {
        "payload equality": {"payload": {"customer": "customer-0042"}},
        "producer + time range": {
            "producer": PRODUCERS[3],
            "timeRange": {
                "start": format_instant(middle),
                "end": format_instant(middle + timedelta(minutes=999)),
            },
        },
    }


def load(storage: Any, batch: list[Any]) -> float:
    """Events per second for ``save_events`` in batches of :data:`BATCH`."""

    def work() -> None:
        for start in range(0, len(batch), BATCH):
            storage.save_events(batch[start : start + BATCH])

    return len(batch) / seconds(work)


def run(full: bool) -> list[dict[str, Any]]:
    from trove.query import EventQuery
    from trove.storage.jsonfile import JSONFileEventStorage
    from trove.storage.orm import SQLiteEventStorage

    count, runs = sizes(full)
    directory = Path(os.environ.get("TROVE_BENCH_DIR") or "/tmp/trove-bench") / "jsonfile-queries"
    json_file = JSONFileEventStorage(directory=str(directory / "json"))
    sqlite = SQLiteEventStorage(path=str(directory / "events.sqlite3"))
    json_file.initialize()
    sqlite.initialize()
    try:
        data = events(count)
        loaded = {"storage-json-file": load(json_file, data), "storage-sqlite": load(sqlite, data)}
        measured = {}
        for label, spec in queries(count).items():
            query = EventQuery.parse(spec)
            json_matches = json_file.query_events(query)
            sqlite_matches = sqlite.query_events(query)
            if [e.id for e in json_matches] != [e.id for e in sqlite_matches]:
                raise AssertionError(f"The two stores disagree on the {label} query.")
            measured[label] = (
                len(json_matches),
                latencies(
                    {
                        "storage-json-file": lambda q=query: json_file.query_events(q),
                        "storage-sqlite": lambda q=query: sqlite.query_events(q),
                    },
                    runs,
                ),
            )
    finally:
        json_file.shutdown()
        sqlite.shutdown()

    size = f"{count:,} events"
    results = [
        figure(
            f"load save_events by {BATCH:,}, storage-json-file ({size})",
            loaded["storage-json-file"],
            "events/s",
            "storage-sqlite save_events, same events",
            loaded["storage-sqlite"],
        )
    ]
    for label, (matches, timing) in measured.items():
        for index, percentile in ((0, "p50"), (1, "p95")):
            results.append(
                figure(
                    f"query {label} ({matches} hits) {percentile}, storage-json-file ({size})",
                    timing["storage-json-file"][index],
                    "ms",
                    "storage-sqlite, same query",
                    timing["storage-sqlite"][index],
                )
            )
    return results
