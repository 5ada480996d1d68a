"""Throwaway places for a benchmark run: a temporary directory and, when the local
PostgreSQL server answers, a database created for the run and dropped after it.

The server is ``TROVE_BENCH_POSTGRES_SERVER`` (default ``postgresql://postgres@127.0.0.1:5432``,
the machine's local server with trust authentication).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"


@dataclass(frozen=True)
class Environment:
    """Where this run keeps its data; ``postgres_url`` is ``None`` without a server."""

    directory: str
    postgres_url: str | None
    postgres_unavailable: str


def postgres_server() -> str:
    return os.environ.get("TROVE_BENCH_POSTGRES_SERVER", DEFAULT_SERVER).rstrip("/")


@contextmanager
def bench_environment() -> Iterator[Environment]:
    """Create the directory and database, set Django up on them, and remove both after."""
    directory = tempfile.mkdtemp(prefix="trove-bench-")
    server = postgres_server()
    name = f"trove_bench_{os.getpid()}"
    postgres_url, reason = None, ""
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        postgres_url = f"{server}/{name}"
    except psycopg.Error as error:
        reason = f"PostgreSQL at {server} is not reachable ({error})".strip()
    os.environ["TROVE_BENCH_DIR"] = directory
    os.environ["TROVE_BENCH_POSTGRES_URL"] = postgres_url or ""
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        if postgres_url:
            call_command("migrate", database="postgres", verbosity=0, interactive=False)
        yield Environment(directory, postgres_url, reason)
    finally:
        from django.db import connections

        connections.close_all()
        if postgres_url:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        shutil.rmtree(directory, ignore_errors=True)
