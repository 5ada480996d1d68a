"""Interchange: ``trove_export``, ``trove_import`` and ``trove_copy`` beside raw drivers.

The source holds N single-version events of the ingest benchmark's ~300-byte payload: on
``storage-orm`` on PostgreSQL when a server answers, else on ``storage-sqlite``. Each
figure has a same-run reference moving the same rows at the same durability:

- export (every version to a JSON Lines file) beside a raw ``COPY (SELECT …) TO STDOUT``
  on PostgreSQL, or a raw ``sqlite3`` ``SELECT`` written line by line;
- import of that file into a new ``storage-sqlite`` file beside raw ``sqlite3`` parsing
  the same lines and ``executemany`` into a table of the same columns (WAL, full fsync);
- copy from the source to a new ``storage-sqlite`` file (which ends by reading and
  digesting both sides) beside a raw ``SELECT`` from the source and ``executemany`` into
  SQLite.

Peak RSS is measured on separate processes exporting and importing N and N/10 events:
equal figures mean memory does not grow with the size of the store.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from benchmarks.ingest import payload
from benchmarks.measure import alternating, seconds
from benchmarks.report import figure

COLUMNS = (
    "event_id, version, is_latest, created_at, producer, schema_id, schema_version, "
    "payload, metadata, files, links, position"
)
RAW_TABLE = (
    "CREATE TABLE raw_event (event_id TEXT, version INTEGER, is_latest INTEGER, "
    "created_at TEXT, producer TEXT, schema_id TEXT, schema_version TEXT, payload TEXT, "
    "metadata TEXT, files TEXT, links TEXT, position INTEGER, UNIQUE (event_id, version))"
)
INSERT_RAW = f"INSERT INTO raw_event VALUES ({', '.join('?' * 12)})"


def sizes(full: bool) -> tuple[int, int]:
    """(events in the source, rounds)."""
    return (100_000, 1) if full else (3000, 3)


def _directory() -> Path:
    from django.conf import settings

    return Path(settings.BENCH_DIR) / "interchange"


def _source() -> tuple[dict[str, Any], str]:
    from django.conf import settings

    if "postgres" in settings.DATABASES:
        return {"plugin": "storage-orm", "options": {"database": "postgres"}}, "postgres"
    path = _directory() / "source.db"
    return {"plugin": "storage-sqlite", "options": {"path": str(path)}}, "sqlite"


def _storage(events: dict[str, Any], files: str) -> dict[str, Any]:
    return {
        "events": events,
        "files": {"plugin": "storage-file-system", "options": {"directory": files}},
    }


def _fill(storage: dict[str, Any], count: int) -> None:
    from django.test import override_settings

    import trove
    from trove.storage.handler import storages

    with override_settings(TROVE={"storage": storage}):
        for start in range(0, count, 10_000):
            trove.create_events(
                [
                    {"schema": "bench.document", "payload": payload(i), "producer": "bench"}
                    for i in range(start, min(count, start + 10_000))
                ]
            )
        storages.close_all()


def _command(storage: dict[str, Any], *args: str) -> None:
    from django.core.management import call_command
    from django.test import override_settings

    from trove.storage.handler import storages

    with override_settings(TROVE={"storage": storage}):
        try:
            storages.events  # noqa: B018 - built (and migrated) outside the timing
            call_command(*args, "--quiet", stdout=io.StringIO(), stderr=io.StringIO())
        finally:
            storages.close_all()


def _target(directory: Path) -> dict[str, Any]:
    name = uuid.uuid4().hex[:8]
    return _storage(
        {"plugin": "storage-sqlite", "options": {"path": str(directory / f"{name}.db")}},
        str(directory / f"{name}-files"),
    )


def _raw_sqlite(directory: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(directory / f"raw-{uuid.uuid4().hex[:8]}.db")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(RAW_TABLE)
    return connection


def _raw_rows(backend: str, source_path: str | None) -> list[tuple] | Any:
    """The source's rows by position, from the raw driver (a cursor to iterate)."""
    from django.db import connections

    if backend == "postgres":
        cursor = connections["postgres"].connection.cursor()
        cursor.execute(f"SELECT {COLUMNS} FROM trove_event ORDER BY position")
        return cursor
    connection = sqlite3.connect(source_path)
    return connection.execute(f"SELECT {COLUMNS} FROM trove_event ORDER BY position")


def _text(row: tuple) -> tuple:
    return tuple(
        json.dumps(value) if isinstance(value, dict | list) else str(value) for value in row
    )


def run(full: bool) -> list[dict[str, Any]]:
    from django.db import connections

    count, rounds = sizes(full)
    directory = _directory()
    directory.mkdir(parents=True, exist_ok=True)
    events, backend = _source()
    source = _storage(events, str(directory / "source-files"))
    _fill(source, count)
    source_path = events["options"].get("path")
    export_file = directory / "export.jsonl"

    def trove_export() -> float:
        return count / seconds(
            lambda: _command(source, "trove_export", "--all-versions", "-o", str(export_file))
        )

    def raw_export() -> float:
        def work() -> None:
            with open(directory / "raw.tsv", "wb") as out:
                if backend == "postgres":
                    connections["postgres"].ensure_connection()
                    cursor = connections["postgres"].connection.cursor()
                    with cursor.copy(
                        f"COPY (SELECT {COLUMNS} FROM trove_event ORDER BY position) TO STDOUT"
                    ) as copy:
                        for block in copy:
                            out.write(block)
                    return
                for row in _raw_rows(backend, source_path):
                    out.write(("\t".join(map(str, row)) + "\n").encode())

        return count / seconds(work)

    exported = alternating({"trove": trove_export, "raw": raw_export}, rounds)

    def trove_import() -> float:
        target = _target(directory)
        return count / seconds(lambda: _command(target, "trove_import", str(export_file)))

    def raw_import() -> float:
        connection = _raw_sqlite(directory)

        def work() -> None:
            with open(export_file, "rb") as lines, connection:
                rows = []
                for line in lines:
                    doc = json.loads(line)
                    rows.append(
                        (
                            doc["id"]["id"],
                            doc["id"]["version"],
                            1,
                            doc["createdAt"],
                            doc["producer"],
                            doc["schema"]["id"],
                            doc["schema"]["version"],
                            json.dumps(doc["payload"]),
                            json.dumps(doc["metadata"]),
                            json.dumps(doc["files"]),
                            json.dumps(doc["links"]),
                            doc["position"],
                        )
                    )
                    if len(rows) == 1000:
                        connection.executemany(INSERT_RAW, rows)
                        rows = []
                connection.executemany(INSERT_RAW, rows)

        return count / seconds(work)

    imported = alternating({"trove": trove_import, "raw": raw_import}, rounds)

    def trove_copy() -> float:
        target = _target(directory)
        return count / seconds(lambda: _command(source, "trove_copy", "--to", json.dumps(target)))

    def raw_copy() -> float:
        connection = _raw_sqlite(directory)

        def work() -> None:
            if backend == "postgres":
                connections["postgres"].ensure_connection()
            with connection:
                rows = []
                for row in _raw_rows(backend, source_path):
                    rows.append(_text(row))
                    if len(rows) == 1000:
                        connection.executemany(INSERT_RAW, rows)
                        rows = []
                connection.executemany(INSERT_RAW, rows)

        return count / seconds(work)

    copied = alternating({"trove": trove_copy, "raw": raw_copy}, rounds)
    where = "storage-orm PostgreSQL" if backend == "postgres" else "storage-sqlite"
    raw = "psycopg COPY TO" if backend == "postgres" else "sqlite3 SELECT"
    figures = [
        figure(
            f"trove_export, {where}, {count:,} events",
            exported["trove"],
            "events/s",
            f"raw {raw}",
            exported["raw"],
        ),
        figure(
            f"trove_import into storage-sqlite, {count:,} events",
            imported["trove"],
            "events/s",
            "raw sqlite3 executemany of the same lines",
            imported["raw"],
        ),
        figure(
            f"trove_copy {where} → storage-sqlite (with digests), {count:,} events",
            copied["trove"],
            "events/s",
            "raw SELECT + sqlite3 executemany",
            copied["raw"],
        ),
    ]
    figures.extend(_peak_rss(export_file, count, directory))
    return figures


def _peak_rss(export_file: Path, count: int, directory: Path) -> list[dict[str, Any]]:
    """Peak RSS of processes importing, then exporting, N events and N/10 events: the
    import targets (storage-sqlite files) are the export sources."""
    small = directory / "export-small.jsonl"
    with open(export_file, "rb") as whole, open(small, "wb") as part:
        for number, line in enumerate(whole):
            if number >= count // 10:
                break
            part.write(line)
    big_store, small_store = _target(directory), _target(directory)
    imports = [
        _child_rss(big_store, ["trove_import", "--quiet", str(export_file)]),
        _child_rss(small_store, ["trove_import", "--quiet", str(small)]),
    ]
    out = str(directory / "rss.jsonl")
    exports = [
        _child_rss(store, ["trove_export", "--all-versions", "--quiet", "-o", out])
        for store in (big_store, small_store)
    ]
    return [
        figure(
            f"peak RSS, {label} of {count:,} events",
            big,
            "MB",
            f"{label} of {count // 10:,} events",
            little,
        )
        for label, (big, little) in (("import", imports), ("export", exports))
    ]


def _child_rss(storage: dict[str, Any], args: list[str]) -> float:
    """Peak RSS in MB of the management command ``args`` run in a new process on ``storage``."""
    env = {**os.environ, "TROVE_BENCH_STORAGE": json.dumps(storage)}
    # VmHWM, not getrusage's ru_maxrss: that one starts at the parent's size when forked.
    code = (
        "import sys, django; django.setup(); "
        "from django.core.management import call_command; call_command(*sys.argv[1:]); "
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    return int(result.stdout.split()[-1]) / 1024
