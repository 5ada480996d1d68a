"""The client side of ``benchmarks.api_ingest``, run as its own process.

``python -m benchmarks.api_client URL TOKEN COUNT BATCH`` posts COUNT benchmark events to
``URL`` one per request, then (unless BATCH is 0) COUNT more in requests of BATCH events,
and prints ``{"single": events/s, "batch": events/s}`` as JSON. With a fifth argument
CLIENTS, that many threads (each with its own session, so its own connection) post the
COUNT events one per request between them, and it prints ``{"single": events/s}`` of all
of them together. ``python -m benchmarks.api_client --alternate URL,URL… TOKEN COUNT
CHUNK`` posts COUNT events one per request to each URL (a session each), CHUNK requests
to one, then CHUNK to the next, and prints each URL's rate as ``{"single": [events/s,
…]}``: the servers take turns every few milliseconds, so a burst of load elsewhere on
the machine hits all of them alike. Every response must be 201.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import requests

from benchmarks.ingest import PRODUCER, SCHEMA_ID, payload


def post(session: requests.Session, url: str, body: object) -> None:
    response = session.post(url, json=body)
    if response.status_code != 201:
        raise SystemExit(f"POST {url} answered {response.status_code}: {response.text[:500]}")


def main(url: str, token: str, count: int, batch: int) -> dict[str, float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    items = [
        {"schema": SCHEMA_ID, "payload": payload(i), "producer": PRODUCER} for i in range(count)
    ]
    start = time.perf_counter()
    for item in items:
        post(session, url, item)
    rates = {"single": count / (time.perf_counter() - start)}
    if batch:
        start = time.perf_counter()
        for first in range(0, count, batch):
            post(session, url, items[first : first + batch])
        rates["batch"] = count / (time.perf_counter() - start)
    return rates


def alternate(urls: list[str], token: str, count: int, chunk: int) -> dict[str, list[float]]:
    """Each URL's single-event rate, the URLs taking turns every ``chunk`` requests."""
    sessions = []
    for _ in urls:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        sessions.append(session)
    items = [
        {"schema": SCHEMA_ID, "payload": payload(i), "producer": PRODUCER} for i in range(count)
    ]
    elapsed = [0.0] * len(urls)
    for first in range(0, count, chunk):
        for index, (url, session) in enumerate(zip(urls, sessions, strict=True)):
            start = time.perf_counter()
            for item in items[first : first + chunk]:
                post(session, url, item)
            elapsed[index] += time.perf_counter() - start
    return {"single": [count / seconds for seconds in elapsed]}


def concurrent(url: str, token: str, count: int, clients: int) -> dict[str, float]:
    """``clients`` threads posting ``count`` events between them, one per request."""
    items = [
        {"schema": SCHEMA_ID, "payload": payload(i), "producer": PRODUCER} for i in range(count)
    ]
    failures: list[BaseException] = []
    ready = threading.Barrier(clients + 1)

    def client(share: list[dict]) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        session.get(url.replace("/events/", "/"))  # connected before the clock starts
        ready.wait()
        try:
            for item in share:
                post(session, url, item)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    threads = [
        threading.Thread(target=client, args=(items[index::clients],)) for index in range(clients)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} client(s) failed; the first: {failures[0]}")
    return {"single": count / elapsed}


if __name__ == "__main__":
    if sys.argv[1] == "--alternate":
        urls, key, events, size = sys.argv[2].split(","), sys.argv[3], sys.argv[4], sys.argv[5]
        print(json.dumps(alternate(urls, key, int(events), int(size))))
        sys.exit()
    address, key, events, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if len(sys.argv) > 5:
        print(json.dumps(concurrent(address, key, events, int(sys.argv[5]))))
    else:
        print(json.dumps(main(address, key, events, size)))
