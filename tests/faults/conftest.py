"""The fault tier: the example project run as real server processes (gunicorn, runserver)
on every backend, with what they need: free ports, a throwaway PostgreSQL database,
SeaweedFS per module, and clean-up of every process started, by its process group.

A test describes a deployment with :func:`backend_environment` (the environment variables
of SPEC §8), prepares it with :func:`prepare` (migrations, a user with a token, the
storages initialised once, before several workers race to do it), and starts servers with
the ``servers`` fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
import requests

from tests.conftest import require
from tests.servers import free_port
from trove.testing.seaweedfs import SeaweedFSServer, weed_unavailable_reason

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "TROVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SAFE_ENV = {
    key: value
    for key, value in os.environ.items()
    if not key.startswith(("DJANGO_", "TROVE_", "DATABASE_URL", "PYTEST_", "AWS_"))
}
BUCKET = "trove-faults"

#: The event backends of SPEC §2 the fault tests run on.
EVENT_BACKENDS = ("orm-sqlite", "orm-postgres", "storage-sqlite", "storage-json-file")

#: Figures gathered by the tests, printed at the end of the run (per backend).
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("faults: acknowledged events checked and lost")
        for line in FIGURES:
            terminalreporter.write_line(line)


def postgres_reachable() -> str | None:
    """Why PostgreSQL cannot be used here, or ``None``."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except Exception as error:  # any failure means: no PostgreSQL tier on this machine
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({error})"
    return None


def postgres_admin(sql: str, *params: Any) -> list[tuple]:
    """Run one statement on the maintenance database, autocommit."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        cursor = connection.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def temporary_database() -> Iterator[str]:
    """A fresh PostgreSQL database (its URL), dropped afterwards whoever still uses it."""
    reason = postgres_reachable()
    require("TROVE_REQUIRE_POSTGRES", reason is None, reason or "")
    name = f"trove_faults_{uuid.uuid4().hex[:10]}"
    postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """One database for a module whose tests share a deployment."""
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="module")
def seaweedfs() -> Iterator[SeaweedFSServer]:
    reason = weed_unavailable_reason()
    require("TROVE_REQUIRE_S3", reason is None, f"S3 faults need SeaweedFS: {reason}")
    with SeaweedFSServer() as server:
        server.create_bucket(BUCKET)
        yield server


def s3_files(server: SeaweedFSServer, **extra: Any) -> dict[str, Any]:
    """The ``files`` role on ``server``, under a key prefix of its own, failing fast."""
    return {
        "plugin": "storage-s3",
        "options": {
            "bucket": BUCKET,
            "region": server.region,
            "accessKeyId": server.access_key,
            "secretAccessKey": server.secret_key,
            "endpointUrl": server.endpoint_url,
            "prefix": f"f-{uuid.uuid4().hex[:12]}",
            "connectTimeout": 2,
            "readTimeout": 5,
            "maxAttempts": 1,
            **extra,
        },
    }


def backend_environment(
    events: str,
    files: str,
    data_dir: Path,
    request: pytest.FixtureRequest,
    database_fixture: str = "postgres_url",
) -> dict[str, str]:
    """The environment of a deployment with ``events`` and ``files`` backends.

    PostgreSQL and SeaweedFS fixtures are requested only when the backend needs them, so a
    test on SQLite runs where neither service exists.
    """
    environment = {"TROVE_DATA_DIR": str(data_dir)}
    if events == "orm-postgres":
        environment["DATABASE_URL"] = request.getfixturevalue(database_fixture)
    event_role = {
        "orm-sqlite": {"plugin": "storage-orm"},
        "orm-postgres": {"plugin": "storage-orm"},
        "storage-sqlite": {
            "plugin": "storage-sqlite",
            "options": {"path": str(data_dir / "ev.db")},
        },
        "storage-json-file": {
            "plugin": "storage-json-file",
            "options": {"directory": str(data_dir / "events")},
        },
    }[events]
    if files == "fs":
        file_role = {"plugin": "storage-file-system", "options": {"directory": str(data_dir / "f")}}
    else:
        file_role = s3_files(request.getfixturevalue("seaweedfs"))
    environment["TROVE_STORAGE"] = json.dumps(
        {"events": event_role, "files": file_role, "links": "useEventStorage"}
    )
    return environment


def manage(environment: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``manage.py`` of the example project; its standard output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**SAFE_ENV, **environment},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


PREPARE = """
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from trove.storage.handler import storages

call_command("migrate", verbosity=0, interactive=False)
user, _ = User.objects.get_or_create(username="faults", is_staff=True, is_superuser=True)
storages.events, storages.files, storages.links
print(Token.objects.get_or_create(user=user)[0].key)
"""


def prepare(environment: dict[str, str]) -> str:
    """Migrate, initialise the storages and make a superuser; the user's API token."""
    return manage(environment, "shell", "-c", PREPARE).strip().splitlines()[-1]


def _running_in_group(group: int) -> bool:
    """Whether a process of ``group`` still runs (zombies left to init do not count)."""
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


class ProjectServer:
    """``trove_project`` served by gunicorn or runserver on a free loopback port.

    The server runs in a session of its own, so that a kill reaches the master and every
    worker (by process group id), and nothing else.
    """

    def __init__(
        self,
        environment: dict[str, str],
        log_path: Path,
        *,
        kind: str = "gunicorn",
        workers: int = 2,
        threads: int = 4,
        preexec: Any = None,
    ) -> None:
        self.environment = environment
        self.log_path = log_path
        self.kind = kind
        self.workers = workers
        self.threads = threads
        self.preexec = preexec
        self.port = 0
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.kind == "runserver":
            return [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                f"127.0.0.1:{self.port}",
            ]
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "trove_project.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(self.threads),
            "--timeout",
            "60",
            "--log-level",
            "warning",
        ]

    def start(self) -> ProjectServer:
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env={**SAFE_ENV, **self.environment},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self.preexec,
            )
        self._wait_until_ready()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.kind} exited at start-up:\n{self.log_tail()}")
            try:
                requests.get(self.url("/api/"), timeout=10)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError(f"{self.kind} did not answer within 60 s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole server (master and workers) and wait for the master."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Workers of a killed master may linger for a moment; the group is ours alone.
        deadline = time.monotonic() + 10
        while _running_in_group(process.pid) and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.05)

    def stop(self) -> None:
        """End the server; its data is thrown away, so no graceful shutdown is needed."""
        self.kill(signal.SIGKILL)


@contextlib.contextmanager
def server_starter(log_directory: Path) -> Iterator[Any]:
    started: list[ProjectServer] = []

    def start(environment: dict[str, str], **options: Any) -> ProjectServer:
        server = ProjectServer(environment, log_directory / f"server-{len(started)}.log", **options)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def servers(tmp_path) -> Iterator[Any]:
    """Start project servers: ``servers(environment, kind=..., workers=..., threads=...)``;
    every one still running at the end is stopped."""
    with server_starter(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory) -> Iterator[Any]:
    """``servers`` for a deployment the tests of a module share."""
    with server_starter(tmp_path_factory.mktemp("servers")) as start:
        yield start


class TimedSession(requests.Session):
    """Every request gives up after a minute: a hung server fails the test, never hangs it."""

    def request(self, *args: Any, timeout: float = 60, **kwargs: Any) -> requests.Response:
        return super().request(*args, timeout=timeout, **kwargs)


def api_session(token: str) -> requests.Session:
    """A session authenticated with ``token``."""
    session = TimedSession()
    session.headers["Authorization"] = f"Token {token}"
    return session


class ConnectionWatch:
    """Polls ``pg_stat_activity`` in the background; ``peak`` is the most connections seen
    to the database at once."""

    def __init__(self, database: str, interval: float = 0.05) -> None:
        import threading

        self.database = database
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            while not self._stop.is_set():
                [(count,)] = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
                ).fetchall()
                self.peak = max(self.peak, count)
                self.samples += 1
                self._stop.wait(self.interval)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(10)
