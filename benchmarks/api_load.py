"""REST ingest under load: 8 concurrent clients against gunicorn with 1, 2 and 4 workers.

Events go to ``storage-orm`` on this run's throwaway PostgreSQL database, the schema
registry too; users and tokens stay in the default SQLite database, which the requests
only read. Each server is ``benchmarks.api_ingest.Server`` (gthread workers of 2 threads,
each thread keeping its database connections); one client process runs ``CLIENTS``
threads, each with its own keep-alive connection, posting one event per request. The
servers take turns, round after round, each round on an empty table. Each figure is
beside the 1-worker server under the same load, so the ratios show how far more workers
help on this machine: up to its cores (2 here), where the workers start to share them.
The 1-worker figure itself is beside one client alone on that server, and the 2-worker
figure also beside ``CLIENTS`` threads of this process calling ``trove.create_event``
on the same database: what the storage itself allows with that many writers at once
(each event takes the position counter's row lock until it commits, so concurrent
writers queue on each other's commits).
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks import progress
from benchmarks.api_ingest import Server, api_token, client_round
from benchmarks.ingest import clear_tables, register_schema
from benchmarks.report import Skip, figure

CLIENTS = 8
WORKERS = (1, 2, 4)


def sizes(full: bool) -> tuple[int, int]:
    """(events per measurement, rounds)."""
    return (4000, 5) if full else (300, 3)


def python_threads(count: int) -> float:
    """Events/s of ``CLIENTS`` threads calling ``trove.create_event``, ``count`` between them."""
    import threading
    import time

    from django.db import connections

    import trove
    from benchmarks.ingest import PRODUCER, SCHEMA_ID, payload

    ready = threading.Barrier(CLIENTS + 1)

    def writer(first: int) -> None:
        try:
            trove.count_events()  # connected before the clock starts
            ready.wait()
            for i in range(first, count, CLIENTS):
                trove.create_event(SCHEMA_ID, payload(i), producer=PRODUCER)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - start)


def run(full: bool) -> list[dict[str, Any]]:
    import statistics

    from django.conf import settings
    from django.test import override_settings

    from benchmarks.routers import schema_registry_on
    from trove.storage.handler import storages

    if not settings.DATABASES.get("postgres"):
        raise Skip("no PostgreSQL server")
    count, rounds = sizes(full)
    storage = {"events": {"plugin": "storage-orm", "options": {"database": "postgres"}}}
    register_schema("postgres")
    token = api_token()
    clear = clear_tables("postgres")
    os.environ["TROVE_BENCH_SCHEMA_REGISTRY"] = "postgres"
    servers: dict[int, Server] = {}
    results: dict[str, list[float]] = {
        "alone": [],
        "threads": [],
        **{str(w): [] for w in WORKERS},
    }
    try:
        for workers in WORKERS:
            servers[workers] = Server(storage, workers=workers)
        with (
            schema_registry_on("postgres"),
            override_settings(TROVE={"storage": storage}),
            progress.steps("8 clients", rounds * (len(WORKERS) + 2)) as step,
        ):
            for index in range(rounds):
                for workers, server in servers.items():
                    step(f"round {index + 1}/{rounds}, {workers} worker(s)")
                    clear()
                    rate = client_round(server.url, token, count, 0, clients=CLIENTS)["single"]
                    results[str(workers)].append(rate)
                step(f"round {index + 1}/{rounds}, 1 client, 1 worker")
                clear()
                results["alone"].append(
                    client_round(servers[1].url, token, count // 2, 0)["single"]
                )
                step(f"round {index + 1}/{rounds}, {CLIENTS} threads, Python API")
                clear()
                results["threads"].append(python_threads(count))
    finally:
        storages.close_all()
        del os.environ["TROVE_BENCH_SCHEMA_REGISTRY"]
        for server in servers.values():
            server.stop()
    median = {key: statistics.median(values) for key, values in results.items()}
    name = (
        "REST POST /api/events/, {clients} client(s), {workers} worker(s), storage-orm PostgreSQL"
    )
    figures = [
        figure(
            name.format(clients=CLIENTS, workers=1),
            median["1"],
            "events/s",
            "1 client, same server",
            median["alone"],
            key="api_load.workers-1.one-client",
        )
    ]
    for workers in WORKERS[1:]:
        figures.append(
            figure(
                name.format(clients=CLIENTS, workers=workers),
                median[str(workers)],
                "events/s",
                f"{CLIENTS} clients, 1 worker",
                median["1"],
                key=f"api_load.workers-{workers}.one-worker",
            )
        )
    figures.append(
        figure(
            name.format(clients=CLIENTS, workers=2),
            median["2"],
            "events/s",
            f"trove.create_event from {CLIENTS} threads, same database",
            median["threads"],
            key="api_load.workers-2.python-threads",
        )
    )
    return figures
