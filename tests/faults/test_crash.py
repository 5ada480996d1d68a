"""A server killed with SIGKILL in the middle of a stream of creates (files and links, from
several client threads) loses no acknowledged event, leaves no partial document and no
bytes that ``tests.faults.audit`` cannot explain, and serves again after a restart; on
every event backend, with files on the file system and on S3."""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time

import pytest
import requests

from tests.faults.audit import (
    StoreAudit,
    digest,
    json_directory_problems,
    list_file_objects,
    unexplained_objects,
)
from tests.faults.conftest import (
    EVENT_BACKENDS,
    FIGURES,
    api_session,
    backend_environment,
    prepare,
)

CLIENTS = 4
KILLS = 2
#: Bytes several events share, so that a kill may land on content that is stored already.
SHARED = b"shared logo " * 200


class CreateStream:
    """Client threads posting events with files and links until the server goes away.

    ``acknowledged`` maps each event id to the document of its 201 answer; ``unanswered``
    holds the requests sent that never got an answer (by payload), with their files'
    hashes."""

    def __init__(self, server, token: str, acknowledged: dict[str, dict], round_: int) -> None:
        self.server = server
        self.token = token
        self.acknowledged = acknowledged
        self.round = round_
        self.unanswered: dict[str, dict] = {}
        self.refused: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(c,)) for c in range(CLIENTS)]

    def body(self, client: int, n: int, rng: random.Random) -> tuple[dict, list[str]]:
        text = f"note {self.round}/{client}/{n} " + os.urandom(8).hex()
        binary = os.urandom(rng.randint(1, 48 * 1024))
        files = [
            {"contentType": "text/plain", "filename": "note.txt", "data": text},
            {
                "contentType": "application/octet-stream",
                "data": base64.b64encode(binary).decode(),
                "encoding": "base64",
            },
        ]
        digests = [digest(text.encode()), digest(binary)]
        if n % 3 == 0:
            files.append({"contentType": "image/png", "data": SHARED.decode()})
            digests.append(digest(SHARED))
        with self.lock:
            targets = rng.sample(sorted(self.acknowledged), min(2, len(self.acknowledged)))
        body = {
            "schema": "crash.test",
            "producer": f"client-{client}",
            "payload": {"round": self.round, "client": client, "n": n},
            "metadata": {"sent": time.time()},
            "files": files,
            "links": [{"type": "follows", "targetEvent": {"id": t}} for t in targets],
        }
        return body, digests

    def client(self, client: int) -> None:
        rng = random.Random()
        with api_session(self.token) as session:
            for n in range(10_000):
                body, digests = self.body(client, n, rng)
                key = json.dumps(body["payload"], sort_keys=True)
                try:
                    response = session.post(self.server.url("/api/events/"), json=body, timeout=60)
                except requests.RequestException:
                    with self.lock:
                        self.unanswered[key] = {"body": body, "digests": digests}
                    return
                with self.lock:
                    if response.status_code == 201:
                        document = response.json()
                        self.acknowledged[document["id"]["id"]] = document
                    else:
                        self.refused.append(f"{response.status_code} {response.text[:300]}")
                        return

    def run_until_killed(self, rng: random.Random) -> None:
        """Stream, and SIGKILL the server after a random number of acknowledged creates."""
        start = len(self.acknowledged)
        target = start + rng.randint(5, 20)
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(self.acknowledged) < target and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))  # anywhere inside the next writes
        self.server.kill()
        for thread in self.threads:
            thread.join(60)


#: Every event backend with files on the file system; S3 under the scale-out pair
#: (PostgreSQL) and under the JSON directory, the two that share nothing with SQLite.
DEPLOYMENTS = [(events, "fs") for events in EVENT_BACKENDS] + [
    ("orm-postgres", "s3"),
    ("storage-json-file", "s3"),
]


@pytest.mark.parametrize("events, files", DEPLOYMENTS)
def test_sigkill_during_a_stream_of_creates_loses_no_acknowledged_event(
    events, files, tmp_path, request, servers
):
    environment = backend_environment(events, files, tmp_path, request)
    files_role = json.loads(environment["TROVE_STORAGE"])["files"]
    s3 = request.getfixturevalue("seaweedfs").client() if files == "s3" else None
    token = prepare(environment)
    rng = random.Random()
    acknowledged: dict[str, dict] = {}
    server = servers(environment, workers=1)
    unanswered: dict[str, dict] = {}  # across the kills: their orphans stay explainable
    for round_ in range(KILLS):
        stream = CreateStream(server, token, acknowledged, round_)
        stream.run_until_killed(rng)
        assert not stream.refused, stream.refused
        unanswered.update(stream.unanswered)

        server = servers(environment, workers=1)  # the restart, on the same store
        with api_session(token) as session:
            findings = StoreAudit(session, server.url("")).audit(acknowledged, unanswered)
        in_flight = [d for sent in unanswered.values() for d in sent["digests"]]
        objects = list_file_objects(files_role, s3)
        problems = findings.problems + unexplained_objects(
            objects,
            findings.stored,
            killed=True,
            lost=len(findings.lost),
            in_flight_digests=in_flight,
        )
        if events == "storage-json-file":
            problems += json_directory_problems(tmp_path / "events")
        assert findings.lost == [], f"acknowledged events lost: {findings.lost}"
        assert problems == []
        # What got through of the unanswered requests counts as acknowledged from now on.
        acknowledged.update(
            (event_id, doc)
            for event_id, doc in findings.stored.items()
            if event_id not in acknowledged
        )
    FIGURES.append(
        f"{events:18} files={files:3} killed gunicorn {KILLS}x with SIGKILL: "
        f"{findings.checked} acknowledged events checked, {len(findings.lost)} lost, "
        f"{len(unanswered)} requests in flight at the kills"
    )

    with api_session(token) as session:  # and the store is fully usable
        target = next(iter(acknowledged))
        created = session.post(
            server.url("/api/events/"),
            json={
                "schema": "crash.after",
                "payload": {"after": "restart"},
                "files": [{"contentType": "text/plain", "data": "after"}],
                "links": [{"type": "follows", "targetEvent": {"id": target}}],
            },
        )
        assert created.status_code == 201, created.text
        found = session.post(
            server.url("/api/query/"), json={"payload": {"after": "restart"}}
        ).json()
        assert [doc["id"]["id"] for doc in found["results"]] == [created.json()["id"]["id"]]
        assert (
            session.get(server.url("/api/events/?limit=0")).json()["count"] == len(acknowledged) + 1
        )
