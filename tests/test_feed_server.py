"""The feed against real servers: gunicorn with 4 worker processes on the ORM (SQLite and
PostgreSQL) and on a shared JSON directory.

- Writers post concurrently while a reader tails ``GET /api/feed/?after=``: it sees every
  acknowledged version exactly once, in strictly increasing positions.
- A server-sent events client disconnects mid-stream and reconnects with
  ``Last-Event-ID``: it gets exactly the versions it missed, then live ones; an idle stream
  sends keep-alives and ends after its ``timeout``.
- ``manage.py trove_process`` killed with SIGKILL mid-run: after a restart no version is
  skipped and the handler's effects (a database row, a derived event) are not doubled, on
  every backend: with a JSON directory too, whose events commit apart from the database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.servers import BASE_ENV, free_port, gunicorn_command

from .conftest import require

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "feed-Pass-9-writer"


class Project:
    """The example project on one backend: its environment, a gunicorn, manage.py."""

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend = backend
        self.directory = directory
        self.database: str | None = None
        env = {
            **BASE_ENV,
            "DJANGO_SETTINGS_MODULE": "tests.server_settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "feed-tests-" + uuid.uuid4().hex,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "TROVE_DATA_DIR": str(directory),
        }
        if backend == "postgresql":
            self.database = f"trove_feed_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            self._postgres(f'CREATE DATABASE "{self.database}"')
            config = settings.POSTGRES_CONFIG
            env["DATABASE_URL"] = (
                f"postgresql://{config['USER']}@{config['HOST']}:{config['PORT']}/{self.database}"
            )
        if backend == "json-file":
            env["TROVE_STORAGE"] = json.dumps(
                {
                    "events": {
                        "plugin": "storage-json-file",
                        "options": {"directory": str(directory / "events")},
                    },
                    "files": {
                        "plugin": "storage-file-system",
                        "options": {"directory": str(directory / "files")},
                    },
                    "links": "useEventStorage",
                }
            )
        self.env = env
        self.server: subprocess.Popen | None = None
        self.url = ""

    @staticmethod
    def _postgres(statement: str) -> None:
        import psycopg

        config = settings.POSTGRES_CONFIG
        with psycopg.connect(
            host=config["HOST"],
            port=config["PORT"],
            user=config["USER"],
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(statement)

    def manage(self, *args: str, env: dict | None = None, check: bool = True):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode:
            raise AssertionError(f"manage.py {args} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        self.manage("migrate", "--noinput")
        self.manage(
            "createsuperuser",
            "--noinput",
            env={
                "DJANGO_SUPERUSER_USERNAME": "writer",
                "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
                "DJANGO_SUPERUSER_EMAIL": "writer@example.com",
            },
        )
        # A token, not the password: checking a password hash per request costs ~1 s here.
        token = self.manage("drf_create_token", "writer").stdout.split()[2]
        self.auth = f"Token {token}"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(self.directory / "gunicorn.log", "w")  # noqa: SIM115 - closed in stop
        self.server = subprocess.Popen(
            gunicorn_command(
                port, "--workers=4", "--worker-class=gthread", "--threads=4", "--timeout=60"
            ),
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/api/feed/?limit=1", timeout=30).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise AssertionError((self.directory / "gunicorn.log").read_text())
            time.sleep(0.2)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
            self.log.close()
        if self.database:
            self._postgres(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def post(self, session: requests.Session, path: str, body) -> dict | list:
        response = session.post(
            self.url + path, json=body, headers={"Authorization": self.auth}, timeout=30
        )
        assert response.status_code == 201, response.text
        return response.json()

    def feed(self, after: int = 0, **params) -> dict:
        response = requests.get(
            f"{self.url}/api/feed/", params={"after": after, **params}, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "json-file"])
def project(request, tmp_path_factory) -> Iterator[Project]:
    if request.param == "postgresql":
        require(
            "TROVE_REQUIRE_POSTGRES",
            settings.POSTGRES_CONFIG is not None,
            settings.POSTGRES_UNAVAILABLE_REASON or "PostgreSQL is not configured",
        )
    project = Project(request.param, tmp_path_factory.mktemp(f"feed-{request.param}"))
    try:
        project.start()
        yield project
    finally:
        project.stop()


def test_concurrent_writers_and_a_tailing_reader_see_each_version_once(project):
    acknowledged: list[tuple[str, int]] = []
    seen: list[dict] = []
    failures: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def write(writer: int) -> None:
        try:
            with requests.Session() as session:
                previous = None
                for i in range(15):
                    if i % 5 == 4:
                        batch = [
                            {"schema": "load", "payload": {"w": writer, "i": i, "b": b}}
                            for b in range(3)
                        ]
                        created = project.post(session, "/api/events/", batch)
                    elif i % 4 == 3 and previous is not None:
                        path = f"/api/events/{previous['id']['id']}/versions/"
                        created = [project.post(session, path, {"payload": {"w": writer, "i": i}})]
                    else:
                        body = {"schema": "load", "payload": {"w": writer, "i": i}}
                        created = [project.post(session, "/api/events/", body)]
                    acknowledged.extend((e["id"]["id"], e["id"]["version"]) for e in created)
                    previous = created[-1]
        except BaseException as error:
            failures.append(error)

    def read() -> None:
        try:
            position = 0
            while True:
                finished = not writing.is_set()
                page = project.feed(position, limit=50)
                for document in page["results"]:
                    assert document["position"] > position, (document["position"], position)
                    position = document["position"]
                    seen.append(document)
                assert page["position"] == position
                if finished and not page["results"]:
                    return
        except BaseException as error:
            failures.append(error)

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(180)
    writing.clear()
    reader.join(180)
    assert not failures, failures
    assert len(acknowledged) == 4 * (12 + 3 * 3)
    got = [(d["id"]["id"], d["id"]["version"]) for d in seen if d["schema"]["id"] == "load"]
    assert sorted(got) == sorted(acknowledged)
    assert len(set(got)) == len(got)


def sse_events(response: requests.Response) -> Iterator[dict]:
    """The server-sent events of a streaming response, as dicts of their fields."""
    event: dict = {}
    for line in response.iter_lines(chunk_size=1, decode_unicode=True):
        if line == "":
            if "id" in event:
                yield event
            event = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            event[key] = value


def take(events: Iterator[dict], count: int) -> list[dict]:
    return [next(events) for _ in range(count)]


def stream(project: Project, after: int = 0, headers: dict | None = None, **params):
    return requests.get(
        f"{project.url}/api/feed/stream/",
        params={"after": after, "schema": "sse", **params},
        headers={"Accept": "text/event-stream", **(headers or {})},
        stream=True,
        timeout=(5, 20),
    )


def test_a_stream_resumes_after_last_event_id_with_exactly_the_missed_versions(project):
    with requests.Session() as session:
        start = project.post(session, "/api/events/", {"schema": "marker", "payload": {}})
        first = [
            project.post(session, "/api/events/", {"schema": "sse", "payload": {"n": n}})
            for n in range(5)
        ]
        response = stream(project, after=start["position"], timeout="30")
        assert response.headers["Content-Type"].startswith("text/event-stream")
        received = take(sse_events(response), 3)
        response.close()  # the client goes away mid-stream
        assert [int(e["id"]) for e in received] == [e["position"] for e in first[:3]]
        assert received[0]["event"] == "sse"
        assert json.loads(received[0]["data"]) == first[0]
        later = [
            project.post(session, "/api/events/", {"schema": "sse", "payload": {"n": n}})
            for n in range(5, 9)
        ]
        resumed = stream(
            project, after=0, headers={"Last-Event-ID": received[-1]["id"]}, timeout="30"
        )
        events = sse_events(resumed)
        missed = [*first[3:], *later]
        got = take(events, len(missed))
        assert [int(e["id"]) for e in got] == [e["position"] for e in missed]
        assert [json.loads(e["data"]) for e in got] == missed
        live = project.post(session, "/api/events/", {"schema": "sse", "payload": {"n": 9}})
        [pushed] = take(events, 1)
        assert int(pushed["id"]) == live["position"]
        resumed.close()


def test_an_idle_stream_keeps_alive_and_ends_after_its_timeout(project):
    began = time.monotonic()
    response = stream(project, after=0, schema="nothing-has-this-schema", timeout="3")
    body = response.text  # returns once the server ends the stream
    assert ": keep-alive" in body and "id:" not in body
    assert time.monotonic() - began < 15


def test_a_processor_killed_mid_run_skips_nothing_and_doubles_nothing(project):
    """The handler writes a row to the database and derives an event: after the kill and
    a restart, each happened once per item, the events in a JSON directory included."""
    processors = json.dumps(
        {"derive": {"handler": "tests.feed_handlers.derive", "schema": ["work.item"]}}
    )
    env = {"TROVE_TEST_PROCESSORS": processors, "TROVE_TEST_HANDLER_DELAY": "0.02"}
    with requests.Session() as session:
        items = project.post(
            session,
            "/api/events/",
            [{"schema": "work.item", "payload": {"n": n}} for n in range(60)],
        )
    runner = subprocess.Popen(
        [sys.executable, "manage.py", "trove_process"],
        cwd=ROOT,
        env={**project.env, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(project.feed(schema="work.done", limit=1000)["results"]) < 15:
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.05)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    interrupted = len(project.feed(schema="work.done", limit=1000)["results"])
    assert interrupted < len(items), "the run was killed before the end"
    project.manage("trove_process", "--once", env=env)
    derived = project.feed(schema="work.done", limit=1000)["results"]
    sources = [document["payload"]["source"] for document in derived]
    assert sorted(sources) == sorted(item["id"]["id"] for item in items)  # once each
    out = project.manage(
        "shell",
        "-c",
        "import json; from trove.models import ProcessorPosition; "
        "from tests.feed_handlers import effect_counts; "
        "print(json.dumps([ProcessorPosition.objects.get(name='derive').position, "
        "effect_counts()]))",
        env=env,
    ).stdout
    position, effects = json.loads(out.strip().splitlines()[-1])
    assert position >= items[-1]["position"]
    assert effects == {item["id"]["id"]: 1 for item in items}
