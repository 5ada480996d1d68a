"""Services going away under a running server: PostgreSQL (its connections terminated, then
its port closed), the S3 server, and a full disk under the JSON directory and the file-system
store. Each answers 503 (507 for a full disk) in the error shape, saying what happened
without paths, hosts or SQL; nothing is half-written; and once the service is back the same
server process writes again, with every acknowledged event intact."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import require
from tests.faults.audit import (
    StoreAudit,
    json_directory_problems,
    list_file_objects,
    unexplained_objects,
)
from tests.faults.conftest import (
    FIGURES,
    api_session,
    backend_environment,
    postgres_admin,
    prepare,
    s3_files,
)
from tests.faults.proxy import TCPProxy


def event_with_files(n: int, size: int = 2048) -> dict:
    return {
        "schema": "outage",
        "payload": {"n": n},
        "files": [
            {"contentType": "text/plain", "data": f"note {n}"},
            {"contentType": "application/octet-stream", "data": os.urandom(size).hex()},
        ],
    }


class Writer:
    """Posts events and keeps the documents of those acknowledged (201)."""

    def __init__(self, server, token: str) -> None:
        self.server = server
        self.session = api_session(token)
        self.acknowledged: dict[str, dict] = {}
        self.count = 0

    def create(self, body: dict | None = None):
        self.count += 1
        response = self.session.post(
            self.server.url("/api/events/"), json=body or event_with_files(self.count), timeout=60
        )
        if response.status_code == 201:
            self.acknowledged[response.json()["id"]["id"]] = response.json()
        return response

    def audit(self, files_role: dict, s3_client=None, figure: str = "") -> None:
        """Every acknowledged event intact, nothing else stored, no bytes without an event."""
        findings = StoreAudit(self.session, self.server.url("")).audit(self.acknowledged, {})
        if figure:
            FIGURES.append(
                f"{figure}: {findings.checked} acknowledged events checked, "
                f"{len(findings.lost)} lost"
            )
        assert findings.lost == []
        assert findings.problems == []
        assert set(findings.stored) == set(self.acknowledged)
        objects = list_file_objects(files_role, s3_client)
        assert (
            unexplained_objects(
                objects, findings.stored, killed=False, lost=0, in_flight_digests=[]
            )
            == []
        )


def assert_clear_failure(response, status: int, code: str, *hidden: str) -> None:
    """The error shape with ``code``, in plain words: no path, host, port or SQL."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    message = error["message"]
    assert message and "/" not in message
    for word in ("SELECT", "INSERT", "127.0.0.1", "default", "trove_", *hidden):
        assert word not in message, message


def until_created(writer: Writer, deadline: float = 60) -> None:
    """The same server writes again once the service is back (without a restart)."""
    end = time.monotonic() + deadline
    while True:
        response = writer.create()
        if response.status_code == 201:
            return
        assert response.status_code in (503, 507), response.text
        assert time.monotonic() < end, f"no recovery: {response.text}"
        time.sleep(0.5)


def test_postgresql_terminated_then_stopped_then_back(tmp_path, request, servers, postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    proxy = TCPProxy(5432).restore()
    through_proxy = urllib.parse.urlsplit(postgres_url)._replace(
        netloc=f"postgres@127.0.0.1:{proxy.port}"
    )
    environment = backend_environment("orm-postgres", "fs", tmp_path, request)
    environment["DATABASE_URL"] = through_proxy.geturl()
    environment["TROVE_DB_POOL_MAX"] = "2"
    files_role = json.loads(environment["TROVE_STORAGE"])["files"]
    token = prepare(environment)
    server = servers(environment, workers=2, threads=2)
    writer = Writer(server, token)
    try:
        for _ in range(4):
            assert writer.create().status_code == 201

        postgres_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", database
        )
        # Dead pooled connections are noticed before use: the next requests simply work.
        assert [writer.create().status_code for _ in range(6)] == [201] * 6

        proxy.cut()
        with ThreadPoolExecutor(3) as pool:
            failures = list(pool.map(lambda _: writer.create(), range(3)))
        reads = writer.session.get(server.url(f"/api/events/{next(iter(writer.acknowledged))}/"))
        for response in [*failures, reads]:
            assert_clear_failure(response, 503, "storage_unavailable", str(proxy.port), database)

        proxy.restore()
        until_created(writer)
        writer.audit(files_role, figure="orm-postgres       files=fs  PostgreSQL terminated, cut")
    finally:
        proxy.cut()


def test_s3_stopped_then_back(tmp_path, request, servers, seaweedfs):
    proxy = TCPProxy(urllib.parse.urlsplit(seaweedfs.endpoint_url).port).restore()
    files_role = s3_files(seaweedfs, endpointUrl=f"http://127.0.0.1:{proxy.port}")
    environment = backend_environment("orm-sqlite", "fs", tmp_path, request)
    storage = json.loads(environment["TROVE_STORAGE"])
    environment["TROVE_STORAGE"] = json.dumps({**storage, "files": files_role})
    token = prepare(environment)
    server = servers(environment, workers=2, threads=2)
    writer = Writer(server, token)
    try:
        for _ in range(4):
            assert writer.create().status_code == 201
        a_file = next(iter(writer.acknowledged.values()))["files"][0]["id"]

        proxy.cut()
        bucket = files_role["options"]["bucket"]
        for response in (
            writer.create(),
            writer.create(),
            writer.session.get(server.url(f"/api/files/{a_file}/content/")),
        ):
            assert_clear_failure(response, 503, "storage_unavailable", bucket, str(proxy.port))
        without_files = writer.create({"schema": "outage", "payload": {"files": 0}})
        assert without_files.status_code == 201, "events without files go on"

        proxy.restore()
        until_created(writer)
        writer.audit(files_role, seaweedfs.client(), "orm-sqlite         files=s3  S3 cut")
    finally:
        proxy.cut()


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB file system of its own (tmpfs), unmounted afterwards."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    require(
        "TROVE_REQUIRE_MOUNT",
        mounted.returncode == 0,
        f"a full disk needs a small tmpfs (root): {mounted.stderr.strip()}",
    )
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.parametrize("full", ["storage-json-file", "storage-file-system"])
def test_a_full_disk_is_507_and_writes_resume_once_space_is_freed(
    full, tmp_path, small_disk, request, servers
):
    events = "storage-json-file" if full == "storage-json-file" else "orm-sqlite"
    environment = backend_environment(events, "fs", tmp_path, request)
    storage = json.loads(environment["TROVE_STORAGE"])
    if full == "storage-json-file":
        storage["events"]["options"]["directory"] = str(small_disk / "events")
    else:
        storage["files"]["options"]["directory"] = str(small_disk / "files")
    environment["TROVE_STORAGE"] = json.dumps(storage)
    token = prepare(environment)
    server = servers(environment, workers=1, threads=2)
    writer = Writer(server, token)
    ballast = small_disk / "ballast"
    ballast.write_bytes(os.urandom(2 * 1024 * 1024 + 512 * 1024))

    def big(n: int) -> dict:
        if full == "storage-json-file":
            return {"schema": "outage", "payload": {"n": n, "text": os.urandom(30_000).hex()}}
        return event_with_files(n, size=60_000)

    for n in range(100):
        response = writer.create(big(n))
        if response.status_code != 201:
            break
    assert_clear_failure(response, 507, "storage_full")
    assert_clear_failure(writer.create(big(-1)), 507, "storage_full")
    assert len(writer.acknowledged) > 0
    writer.audit(storage["files"])
    if full == "storage-json-file":
        assert json_directory_problems(small_disk / "events") == []

    ballast.unlink()
    until_created(writer)
    assert writer.create(big(1000)).status_code == 201
    writer.audit(storage["files"], figure=f"{events:18} files=fs  {full} on a full disk")
    if full == "storage-json-file":
        assert json_directory_problems(small_disk / "events") == []


def limit_file_size() -> None:
    """In the server process: no file may grow past 1 MiB (writes beyond fail with EFBIG
    instead of the default SIGXFSZ killing the process)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))


def test_a_file_past_the_servers_file_size_limit_is_507_and_leaves_nothing(
    tmp_path, request, servers
):
    environment = backend_environment("storage-sqlite", "fs", tmp_path, request)
    files_role = json.loads(environment["TROVE_STORAGE"])["files"]
    token = prepare(environment)
    server = servers(environment, workers=1, threads=2, preexec=limit_file_size)
    writer = Writer(server, token)
    assert writer.create().status_code == 201
    too_big = event_with_files(-1, size=700 * 1024)  # 1.4 MB of hex text
    assert_clear_failure(writer.create(too_big), 507, "storage_full")
    assert writer.create().status_code == 201
    writer.audit(files_role, figure="storage-sqlite     files=fs  RLIMIT_FSIZE (EFBIG)")
