"""Several gunicorn workers writing the same events at once: appended versions are 1..N
with no gap and no duplicate, a losing writer gets a clear 409 (never a silent overwrite),
and concurrent creates of one client-chosen id store it once (a repeat answers the stored
event)."""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.audit import list_file_objects, unexplained_objects
from tests.faults.conftest import (
    EVENT_BACKENDS,
    FIGURES,
    api_session,
    backend_environment,
    prepare,
)

WORKERS, THREADS = 3, 4
WRITERS, ROUNDS, EVENTS = 9, 4, 3


@pytest.fixture(scope="module", params=EVENT_BACKENDS)
def deployment(request, tmp_path_factory, module_servers):
    data_dir = tmp_path_factory.mktemp(request.param)
    environment = backend_environment(
        request.param, "fs", data_dir, request, database_fixture="module_postgres_url"
    )
    token = prepare(environment)
    server = module_servers(environment, workers=WORKERS, threads=THREADS)
    files_role = json.loads(environment["TROVE_STORAGE"])["files"]
    return request.param, server, token, files_role


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_racing_appends_give_versions_one_to_n_and_clear_conflicts(deployment):
    backend, server, token, files_role = deployment
    with api_session(token) as session:
        ids = [
            session.post(
                server.url("/api/events/"), json={"schema": "race", "payload": {"v": 1}}
            ).json()["id"]["id"]
            for _ in range(EVENTS)
        ]
    start = threading.Barrier(WRITERS)

    def writer(w: int) -> list[tuple[str, int, dict | None, int]]:
        answers = []
        with api_session(token) as session:
            start.wait()
            for k in range(ROUNDS):
                for event_id in ids:
                    payload = {"writer": w, "k": k}
                    note = {"contentType": "text/plain", "data": f"{event_id} {w} {k}"}
                    response = session.post(
                        server.url(f"/api/events/{event_id}/versions/"),
                        json={"payload": payload, "files": [note]},
                    )
                    if response.status_code == 201:
                        document = response.json()
                        assert document["payload"] == payload
                        answers.append((event_id, document["id"]["version"], payload, 201))
                    else:
                        assert response.status_code == 409, response.text
                        assert error_code(response) == "version_conflict"
                        answers.append((event_id, 0, None, 409))
        return answers

    with ThreadPoolExecutor(WRITERS) as pool:
        answers = [a for result in pool.map(writer, range(WRITERS)) for a in result]
    acknowledged: dict[str, dict[int, dict]] = defaultdict(dict)
    for event_id, version, payload, status in answers:
        if status == 201:
            assert version not in acknowledged[event_id], f"version {version} given twice"
            acknowledged[event_id][version] = payload
    with api_session(token) as session:
        for event_id in ids:
            versions = session.get(server.url(f"/api/events/{event_id}/versions/")).json()
            numbers = [doc["id"]["version"] for doc in versions]
            assert numbers == list(range(1, len(numbers) + 1)), "a gap or a duplicate"
            assert sorted(acknowledged[event_id]) == numbers[1:], "an acknowledged version lost"
            for doc in versions[1:]:
                assert doc["payload"] == acknowledged[event_id][doc["id"]["version"]]
            # Each version keeps the files before it and adds its own; a loser's are gone.
            assert [len(doc["files"]) for doc in versions] == list(range(len(versions)))
    conflicts = sum(1 for *_, status in answers if status == 409)
    assert len(answers) == WRITERS * ROUNDS * EVENTS
    assert sum(len(v) for v in acknowledged.values()) + conflicts == len(answers)
    FIGURES.append(
        f"{backend:18} racing appends, {WORKERS} gunicorn workers: {len(answers) - conflicts} "
        f"acknowledged versions checked, 0 lost, {conflicts} answered 409"
    )
    with api_session(token) as session:
        stored = {i: session.get(server.url(f"/api/events/{i}/")).json() for i in ids}
    objects = list_file_objects(files_role)
    assert unexplained_objects(objects, stored, killed=False, lost=0, in_flight_digests=[]) == []


def test_concurrent_creates_of_one_client_chosen_id_store_it_once(deployment):
    _backend, server, token, files_role = deployment
    racers = 8
    ids = [str(uuid.uuid4()) for _ in range(4)]

    def author_of(racer: int) -> int:
        """Even racers send one shared body (repeats), odd ones a body of their own."""
        return 0 if racer % 2 == 0 else racer

    def create(event_id: str, racer: int, start: threading.Barrier):
        author = author_of(racer)
        with api_session(token) as session:
            body = {
                "id": event_id,
                "schema": "race.create",
                "payload": {"racer": author},
                "files": [{"contentType": "text/plain", "data": f"{event_id} by {author}"}],
            }
            start.wait()
            return session.post(server.url("/api/events/"), json=body)

    for event_id in ids:
        start = threading.Barrier(racers)
        with ThreadPoolExecutor(racers) as pool:
            responses = list(pool.map(create, [event_id] * racers, range(racers), [start] * racers))
        created = [r for r in responses if r.status_code == 201]
        assert len(created) == 1, [r.status_code for r in responses]
        winner = created[0].json()
        for racer, repeat in enumerate(responses):
            if repeat.status_code == 201:
                continue
            if author_of(racer) == winner["payload"]["racer"]:  # a repeat: the stored event
                assert repeat.status_code == 200, repeat.text
                assert repeat.json() == winner
            else:
                assert repeat.status_code == 409 and error_code(repeat) == "version_conflict"
        with api_session(token) as session:
            versions = session.get(server.url(f"/api/events/{event_id}/versions/")).json()
        assert [doc["id"]["version"] for doc in versions] == [1]
        assert versions[0]["payload"] == created[0].json()["payload"]
        assert versions[0]["files"] == created[0].json()["files"]
    with api_session(token) as session:
        stored = {
            doc["id"]["id"]: doc
            for doc in session.get(server.url("/api/events/?limit=1000")).json()["results"]
        }
    objects = list_file_objects(files_role)
    assert unexplained_objects(objects, stored, killed=False, lost=0, in_flight_digests=[]) == []
