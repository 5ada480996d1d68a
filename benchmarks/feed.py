"""The feed: reading it in pages, and how soon a commit reaches a follower.

- Read rate: ``trove.read_feed`` paging through every version (pages of 1,000, each after
  the last position of the one before) on ``storage-sqlite`` and ``storage-orm`` on
  PostgreSQL, beside the raw driver running the same ``SELECT … WHERE position > ? ORDER BY
  position LIMIT 1000`` of the same columns on the same table (rows fetched, not decoded).
- Commit-to-delivery latency, p50 and p95: an event is created every 20 ms in this
  process and the time from ``create_event`` returning to its arrival is measured, for
  ``trove.follow`` in a thread of this process and for ``GET /api/feed/stream/`` served by
  gunicorn and read by a client thread here. The reference of ``follow`` is the raw way of
  waiting on that database: on PostgreSQL a ``LISTEN`` connection woken by the committing
  transaction's ``NOTIFY``; on SQLite a loop asking ``max(position)`` at Trove's polling
  interval. The reference of the stream is ``follow`` on the same storage.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.ingest import PRODUCER, SCHEMA_ID, clear_tables, payload, register_schema
from benchmarks.measure import percentile, seconds
from benchmarks.report import figure

PAGE = 1000
#: Seconds between two writes while latency is measured.
INTERVAL = 0.02
READ_COLUMNS = (
    "event_id, version, created_at, producer, schema_id, schema_version, payload, files, "
    "links, metadata, position"
)


def sizes(full: bool) -> tuple[int, int, int]:
    """(events read, rounds of reading, events whose delivery is timed)."""
    return (200_000, 5, 300) if full else (20_000, 3, 60)


def fill(count: int) -> None:
    import trove

    items = [
        {"schema": SCHEMA_ID, "payload": payload(i), "producer": PRODUCER} for i in range(count)
    ]
    for first in range(0, count, 5000):
        trove.create_events(items[first : first + 5000])


def trove_read_rate(count: int) -> float:
    import trove

    def work() -> None:
        after, seen = 0, 0
        while page := trove.read_feed(after=after, limit=PAGE):
            after, seen = page[-1].position, seen + len(page)
        assert seen == count, (seen, count)

    return count / seconds(work)


def raw_read_rate(count: int, alias: str) -> float:
    """The same pages through the raw driver connection of ``alias``."""
    from django.db import connections

    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    mark = "?" if connection.vendor == "sqlite" else "%s"
    sql = (
        f"SELECT {READ_COLUMNS} FROM trove_event WHERE position > {mark} "
        f"ORDER BY position LIMIT {PAGE}"
    )

    def work() -> None:
        after, seen = 0, 0
        cursor = raw.cursor()
        while rows := cursor.execute(sql, (after,)).fetchall():
            after, seen = rows[-1][-1], seen + len(rows)
        assert seen == count, (seen, count)

    return count / seconds(work)


def delivery_latencies(receive, count: int) -> tuple[float, float]:
    """p50 and p95 in ms from ``create_event`` returning to ``receive`` seeing the event.

    ``receive(after, deliver)`` runs in a thread and calls ``deliver(position)`` for each
    event it gets, until it returns True (enough)."""
    import trove

    committed: dict[int, float] = {}
    delivered: dict[int, float] = {}
    after = _last_position()
    done = threading.Event()

    def deliver(position: int) -> bool:
        delivered[position] = time.perf_counter()
        return len(delivered) >= count

    thread = threading.Thread(target=lambda: (receive(after, deliver), done.set()), daemon=True)
    thread.start()
    time.sleep(1.0)  # the receiver is connected and waiting
    for i in range(count):
        event = trove.create_event(SCHEMA_ID, payload(i), producer=PRODUCER)
        committed[event.position] = time.perf_counter()
        time.sleep(INTERVAL)
    done.wait(30)
    samples = [max(delivered[p] - committed[p], 0.0) * 1000 for p in committed if p in delivered]
    assert len(samples) == count, f"{len(samples)} of {count} delivered"
    return percentile(samples, 50), percentile(samples, 95)


def _last_position() -> int:
    from trove.storage.handler import storages

    return storages.events.last_position()


def follow_receiver(after: int, deliver) -> None:
    from django.db import connections

    import trove

    try:
        for event in trove.follow(after=after):
            if deliver(event.position):
                return
    finally:
        connections.close_all()


def postgres_listen_receiver(url: str):
    """The raw PostgreSQL way: LISTEN on Trove's channel, woken by its NOTIFY."""

    def receive(after: int, deliver) -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("LISTEN trove_feed")
            for notice in connection.notifies():
                if deliver(int(notice.payload)):
                    return

    return receive


def sqlite_poll_receiver(path: Path, interval: float):
    """The raw SQLite way: ask for new rows every ``interval`` seconds."""

    def receive(after: int, deliver) -> None:
        import sqlite3

        connection = sqlite3.connect(path)
        try:
            while True:
                rows = connection.execute(
                    "SELECT position FROM trove_event WHERE position > ? ORDER BY position",
                    (after,),
                ).fetchall()
                for (position,) in rows:
                    after = position
                    if deliver(position):
                        return
                time.sleep(interval)
        finally:
            connection.close()

    return receive


def stream_receiver(url: str, token: str):
    def receive(after: int, deliver) -> None:
        import requests

        with requests.get(
            f"{url}/api/feed/stream/",
            params={"after": after, "timeout": 120},
            headers={"Accept": "text/event-stream", "Authorization": f"Token {token}"},
            stream=True,
            timeout=(5, 60),
        ) as response:
            pending = b""
            for chunk in response.iter_content(chunk_size=None):  # as the bytes arrive
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.startswith(b"id: ") and deliver(int(line[4:])):
                        return

    return receive


def storage_figures(
    label: str, storage: dict[str, Any], alias: str, reference: str, raw_receiver, full: bool
) -> list[dict[str, Any]]:
    import statistics

    from django.test import override_settings

    from benchmarks.api_ingest import Server, api_token
    from trove.storage.handler import storages

    count, rounds, timed = sizes(full)
    figures = []
    with override_settings(TROVE={"storage": storage}):
        storages.close_all()
        clear_tables(alias)()
        try:
            fill(count)
            trove_rates, raw_rates = [], []
            for _ in range(rounds):
                trove_rates.append(trove_read_rate(count))
                raw_rates.append(raw_read_rate(count, alias))
            figures.append(
                figure(
                    f"trove.read_feed, pages of {PAGE}, {label}",
                    statistics.median(trove_rates),
                    "events/s",
                    f"raw SELECT … ORDER BY position LIMIT {PAGE}, same rows",
                    statistics.median(raw_rates),
                )
            )
            follow = delivery_latencies(follow_receiver, timed)
            raw = delivery_latencies(raw_receiver, timed)
            for index, quantile in ((0, "p50"), (1, "p95")):
                figures.append(
                    figure(
                        f"trove.follow commit-to-delivery {quantile}, {label}",
                        follow[index],
                        "ms",
                        reference,
                        raw[index],
                    )
                )
            server = Server(storage)
            try:
                receiver = stream_receiver(f"http://127.0.0.1:{server.port}", api_token())
                stream = delivery_latencies(receiver, timed)
            finally:
                server.stop()
            for index, quantile in ((0, "p50"), (1, "p95")):
                figures.append(
                    figure(
                        f"SSE /api/feed/stream/ commit-to-delivery {quantile}, {label}",
                        stream[index],
                        "ms",
                        "trove.follow, same storage",
                        follow[index],
                    )
                )
        finally:
            storages.close_all()
    return figures


def run(full: bool) -> list[dict[str, Any]]:
    import os

    from django.conf import settings

    from trove.storage.base import EventStorage
    from trove.storage.orm import SQLiteEventStorage

    register_schema()
    path = Path(settings.BENCH_DIR) / "feed" / "events.sqlite3"
    sqlite = {"events": {"plugin": "storage-sqlite", "options": {"path": str(path)}}}
    with_sqlite = {**sqlite, "files": {"plugin": "storage-memory"}}
    from django.test import override_settings

    with override_settings(TROVE={"storage": with_sqlite}):
        from trove.storage.handler import storages

        storages.events  # noqa: B018 - creates the file and its tables
        storages.close_all()
    figures = storage_figures(
        "storage-sqlite",
        with_sqlite,
        SQLiteEventStorage.alias_for(path),
        f"raw sqlite3 polling every {EventStorage.poll_interval} s",
        sqlite_poll_receiver(path, EventStorage.poll_interval),
        full,
    )
    url = os.environ.get("TROVE_BENCH_POSTGRES_URL")
    if url:
        postgres = {
            "events": {"plugin": "storage-orm", "options": {"database": "postgres"}},
            "files": {"plugin": "storage-memory"},
        }
        register_schema("postgres")
        figures += storage_figures(
            "storage-orm on PostgreSQL",
            postgres,
            "postgres",
            "raw psycopg LISTEN woken by the commit's NOTIFY",
            postgres_listen_receiver(url),
            full,
        )
    return figures
