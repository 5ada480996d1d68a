"""REST ingest under load: 8 concurrent clients against gunicorn with 1, 2 and 4 workers.

Events go to ``storage-orm`` on this run's throwaway PostgreSQL database, the schema
registry too; users and tokens stay in the default SQLite database, which the requests
only read. Each server is ``benchmarks.api_ingest.Server`` (gthread workers of 2 threads,
each thread keeping its database connections); one client process runs ``CLIENTS``
threads, each with its own keep-alive connection, posting one event per request. The
servers take turns, round after round, each round on an empty table. Each figure is
beside the 1-worker server under the same load, so the ratios show how far more workers
help on this machine: up to its cores (2 here), where the workers start to share them.
The 1-worker figure itself is beside one client alone on that server.
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
    return (4000, 5) if full else (400, 3)


def run(full: bool) -> list[dict[str, Any]]:
    import statistics

    from django.conf import settings

    from benchmarks.routers import schema_registry_on

    if not settings.DATABASES.get("postgres"):
        raise Skip("no PostgreSQL server")
    count, rounds = sizes(full)
    storage = {"events": {"plugin": "storage-orm", "options": {"database": "postgres"}}}
    register_schema("postgres")
    token = api_token()
    clear = clear_tables("postgres")
    os.environ["TROVE_BENCH_SCHEMA_REGISTRY"] = "postgres"
    servers: dict[int, Server] = {}
    results: dict[str, list[float]] = {"alone": [], **{str(w): [] for w in WORKERS}}
    try:
        for workers in WORKERS:
            servers[workers] = Server(storage, workers=workers)
        with (
            schema_registry_on("postgres"),
            progress.steps("8 clients", rounds * (len(WORKERS) + 1)) as step,
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
    finally:
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
    return figures
