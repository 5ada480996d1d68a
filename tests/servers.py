"""What the tests that start real server processes share."""

from __future__ import annotations

import os
import socket
import sys

#: The environment of a server under test: this one, without the variables the example
#: project reads, so that each test sets exactly the configuration it means.
BASE_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROVE_", "DATABASE_URL"))
}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_command(port: int, *options: str) -> list[str]:
    """The command serving the example project with gunicorn on loopback ``port``; each
    test adds the workers, threads and timeout it needs."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "trove_project.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        *options,
    ]
