"""Ingest through the REST API beside Trove's own Python API and beside a bare Django view.

gunicorn serves the example project's URLs on loopback (2 workers of 2 threads, keep-alive, the
benchmark settings, events in ``storage-sqlite``); a second process (``benchmarks.api_client``)
posts the benchmark's events with token authentication, one per ``POST /api/events/``,
then in lists of ``BATCH``. The references, in alternation with the API rounds:

- ``trove.create_event`` / ``trove.create_events`` in this process, on the same storage
  file: what the REST layer adds to Trove's own cost;
- the bare Django view of ``benchmarks.bare_view`` (one raw ``sqlite3`` insert of the same
  row into a copy of the same empty file), served by the same gunicorn command and called
  by the same client process, the two servers taking turns every ``CHUNK`` requests: what
  Trove costs beyond the framework's own cost, the limit for any Django view.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import progress
from benchmarks.ingest import PRODUCER, SCHEMA_ID, clear_tables, payload, per_second
from benchmarks.report import Skip, figure

#: Events per list in the batched requests (the API accepts up to 1,000).
BATCH = 500
#: Requests to one server before the other's turn, when they alternate.
CHUNK = 20


def sizes(full: bool) -> tuple[int, int]:
    """(events per round, rounds)."""
    return (3000, 5) if full else (300, 5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoint_exists() -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve("/api/events/")
    except Resolver404:
        return False
    return True


def api_token() -> str:
    """A token of a user allowed to create events (the default database holds users)."""
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    user, _ = User.objects.get_or_create(username="bench")
    user.user_permissions.add(
        Permission.objects.get(codename="add_event", content_type__app_label="trove")
    )
    return Token.objects.get_or_create(user=user)[0].key


class Server:
    """gunicorn on a free loopback port, with the Django ``settings`` module (this run's by
    default) and ``storage``; ``workers`` processes of 2 threads each."""

    def __init__(
        self,
        storage: dict[str, Any],
        settings: str = "benchmarks.settings",
        workers: int = 2,
    ) -> None:
        self.port = free_port()
        environment = {
            **os.environ,
            "TROVE_BENCH_STORAGE": json.dumps(storage),
            "DJANGO_SETTINGS_MODULE": settings,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "trove_project.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                "2",
                "--log-level",
                "warning",
            ],
            env=environment,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self._wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/events/"

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {self.process.returncode}.")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start within 30 s.")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def client_round(
    url: str, token: str, count: int, batch: int = BATCH, clients: int | None = None
) -> dict[str, float]:
    """One round of the client process: its single and (unless ``batch`` is 0) batched
    rates; with ``clients``, the single rate of that many concurrent clients."""
    arguments = [url, token, str(count), str(batch)]
    return _client([*arguments, *([str(clients)] if clients else [])])


def alternating_rounds(urls: list[str], token: str, count: int) -> list[float]:
    """The single-event rates of the servers at ``urls``, taking turns in one client."""
    return _client(["--alternate", ",".join(urls), token, str(count), str(CHUNK)])["single"]


def _client(arguments: list[str]) -> dict[str, Any]:
    """What the client process (``benchmarks.api_client``) printed, run with ``arguments``."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.api_client", *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode != 0:
        raise RuntimeError(f"The API client failed: {result.stderr or result.stdout}")
    return json.loads(result.stdout)


def python_round(count: int) -> dict[str, float]:
    """The same events through the Python API, in this process."""
    import trove

    payloads = [payload(i) for i in range(count)]
    items = [{"schema": SCHEMA_ID, "payload": p, "producer": PRODUCER} for p in payloads]

    def singles() -> None:
        for p in payloads:
            trove.create_event(SCHEMA_ID, p, producer=PRODUCER)

    def batches() -> None:
        for first in range(0, count, BATCH):
            trove.create_events(items[first : first + BATCH])

    return {"single": per_second(count, singles), "batch": per_second(count, batches)}


def copy_empty_database(source: Path, target: Path) -> None:
    """``target``: a copy of the SQLite file ``source`` (its tables), for the bare view."""
    import sqlite3

    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy)
    origin.close()
    copy.close()


def clear_copy(path: Path) -> None:
    """Empty the bare view's table, and its write-ahead log, as :func:`clear_tables` does."""
    import sqlite3

    from benchmarks.ingest import CHECKPOINT

    database = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        database.execute("DELETE FROM trove_event")
        database.execute(CHECKPOINT)
    finally:
        database.close()


def run(full: bool) -> list[dict[str, Any]]:
    import statistics

    from django.conf import settings
    from django.test import override_settings

    from benchmarks.ingest import register_schema
    from trove.storage.handler import storages
    from trove.storage.orm import SQLiteEventStorage

    if not endpoint_exists():
        raise Skip("POST /api/events/ is not routed yet (trove.api.urls)")
    count, rounds = sizes(full)
    path = settings.API_EVENTS_PATH
    storage = {"events": {"plugin": "storage-sqlite", "options": {"path": str(path)}}}
    bare_path = path.with_name("bare-view.sqlite3")
    bare_storage = {"events": {"plugin": "storage-sqlite", "options": {"path": str(bare_path)}}}
    register_schema()
    token = api_token()
    clear = clear_tables(SQLiteEventStorage.alias_for(path))
    results: dict[str, list[float]] = {
        "api single": [],
        "api batch": [],
        "single": [],
        "batch": [],
        "bare": [],
    }
    with override_settings(TROVE={"storage": storage}):
        storages.events  # noqa: B018 - creates the file and its tables before gunicorn starts
        copy_empty_database(path, bare_path)
        server = Server(storage)
        bare = Server(bare_storage, settings="benchmarks.bare_view")
        try:
            with progress.steps("REST ingest", rounds * 3) as step:
                for index in range(rounds):
                    step(f"round {index + 1}/{rounds}, REST API and bare Django view in turns")
                    clear()
                    clear_copy(bare_path)
                    single, bare_rate = alternating_rounds([server.url, bare.url], token, count)
                    step(f"round {index + 1}/{rounds}, REST API batches")
                    clear()
                    batch = client_round(server.url, token, count)["batch"]
                    step(f"round {index + 1}/{rounds}, Python API")
                    clear()
                    local = python_round(count)
                    results["api single"].append(single)
                    results["api batch"].append(batch)
                    results["bare"].append(bare_rate)
                    for key in ("single", "batch"):
                        results[key].append(local[key])
        finally:
            bare.stop()
            server.stop()
            storages.close_all()
    median = {key: statistics.median(values) for key, values in results.items()}
    rate = "events/s"
    return [
        figure(
            "REST POST /api/events/, 1 event/request, storage-sqlite",
            median["api single"],
            rate,
            "trove.create_event, same storage",
            median["single"],
            key="api_ingest.single.python-api",
        ),
        figure(
            "REST POST /api/events/, 1 event/request, storage-sqlite",
            median["api single"],
            rate,
            "bare Django view, 1 sqlite3 insert (WAL, FULL), same server and client",
            median["bare"],
            key="api_ingest.single.bare-view",
        ),
        figure(
            f"REST POST /api/events/, {BATCH} events/request, storage-sqlite",
            median["api batch"],
            rate,
            f"trove.create_events of {BATCH}, same storage",
            median["batch"],
            key="api_ingest.batch.python-api",
        ),
    ]
