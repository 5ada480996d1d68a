"""Database connections of the example project on PostgreSQL stay within the configured
bound, under ``runserver`` (a thread per request) and under gunicorn (workers × threads),
and every request is answered (no 500)."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.faults.conftest import ConnectionWatch, api_session, prepare


def event_body(n: int) -> str:
    return json.dumps({"schema": "conn.test", "payload": {"n": n}})


def one_request(server, token: str, n: int) -> int:
    """A create or a query on a connection of its own, as independent clients would."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if n % 3:
        response = requests.post(
            server.url("/api/events/"), data=event_body(n), headers=headers, timeout=60
        )
    else:
        response = requests.get(server.url("/api/events/?limit=5"), headers=headers, timeout=60)
    return response.status_code


def test_runserver_on_postgresql_keeps_a_bounded_number_of_connections(
    tmp_path, postgres_url, servers
):
    database = postgres_url.rsplit("/", 1)[1]
    environment = {
        "TROVE_DATA_DIR": str(tmp_path),
        "DATABASE_URL": postgres_url,
        "TROVE_DB_POOL_MAX": "3",
    }
    token = prepare(environment)
    server = servers(environment, kind="runserver")
    statuses = []
    with ConnectionWatch(database) as watch:
        for n in range(60):  # one after the other: a thread each, none left holding on
            statuses.append(one_request(server, token, n))
        with ThreadPoolExecutor(12) as pool:  # then a dozen at a time
            statuses += pool.map(lambda n: one_request(server, token, n), range(60, 300))
    assert len(statuses) == 300
    assert {status for status in statuses} <= {200, 201}, sorted(set(statuses))
    assert watch.samples > 10
    assert watch.peak <= 3, f"{watch.peak} connections to {database} at once"
    with api_session(token) as session:
        assert session.get(server.url("/api/events/?limit=0")).json()["count"] == 200


def test_gunicorn_4x4_with_200_clients_stays_within_its_connections(
    tmp_path, postgres_url, servers
):
    database = postgres_url.rsplit("/", 1)[1]
    workers, threads, pool_max = 4, 4, 3
    environment = {
        "TROVE_DATA_DIR": str(tmp_path),
        "DATABASE_URL": postgres_url,
        "TROVE_DB_POOL_MAX": str(pool_max),
    }
    token = prepare(environment)
    server = servers(environment, workers=workers, threads=threads)

    def client(n: int) -> list[int]:
        statuses = []
        with api_session(token) as session:
            for k in range(3):
                if k == 1:
                    response = session.get(
                        server.url(f"/api/events/?payload.client={n}"), timeout=60
                    )
                else:
                    response = session.post(
                        server.url("/api/events/"),
                        json={"schema": "conn.load", "payload": {"client": n, "k": k}},
                        timeout=60,
                    )
                statuses.append(response.status_code)
        return statuses

    with ConnectionWatch(database) as watch, ThreadPoolExecutor(200) as pool:
        results = list(pool.map(client, random.sample(range(200), 200)))
    statuses = [status for result in results for status in result]
    assert len(statuses) == 600
    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    assert watch.peak <= workers * pool_max, f"{watch.peak} connections at once"
    with api_session(token) as session:
        assert session.get(server.url("/api/events/?limit=0")).json()["count"] == 400
