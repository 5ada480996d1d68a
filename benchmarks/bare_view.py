"""The reference of ``benchmarks.api_ingest``: the least a Django project does to store an
event sent as JSON, durably.

This module is a whole Django project (settings, URLconf and its one view), served by
gunicorn with ``DJANGO_SETTINGS_MODULE=benchmarks.bare_view`` exactly as the Trove server
is, and called by the same client code. ``POST /api/events/`` decodes the JSON body and
stores its event with one raw ``sqlite3`` ``INSERT`` into Trove's own table of the
``storage-sqlite`` file named by ``TROVE_BENCH_STORAGE`` (WAL, ``synchronous=FULL``, the
row Trove would write, its position the next one), and answers 201 with a small JSON
body. It runs behind the example project's middleware (Django's default stack, which
``startproject`` writes) and is exempt from the CSRF check, as DRF's views are; there is
no authentication and no validation. What is left is the framework's own cost in a
default project (request parsing, middleware, URL resolution, the response) plus the
durable insert: the limit for any view of that project. Each server thread keeps one
connection, opened on its first request.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from benchmarks.ingest import COLUMNS, SCHEMA_VERSION
from trove.query import payload_words
from trove_project.components import MIDDLEWARE  # noqa: F401 - a setting

SECRET_KEY = "trove-benchmarks"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = __name__
USE_TZ = True
#: What the middleware needs; none of them touches a database unless the view does.
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]
DATABASES: dict[str, dict[str, str]] = {}

#: Every column but the position, then the next position, computed in the same statement.
INSERT = (
    f"INSERT INTO trove_event ({COLUMNS}) "
    f"SELECT {', '.join(['?'] * 11)}, coalesce(max(position), 0) + 1, ? FROM trove_event "
    "RETURNING position"
)

_local = threading.local()


def connection() -> sqlite3.Connection:
    """This thread's connection to the events file, as ``storage-sqlite`` configures it."""
    if not hasattr(_local, "connection"):
        storage = json.loads(os.environ["TROVE_BENCH_STORAGE"])
        database = sqlite3.connect(
            storage["events"]["options"]["path"], isolation_level=None, timeout=30
        )
        database.execute("PRAGMA journal_mode=WAL")
        database.execute("PRAGMA synchronous=FULL")
        _local.connection = database
    return _local.connection


@csrf_exempt
def create_event(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    item = json.loads(request.body)
    event_id = uuid.uuid4()
    created = datetime.now(UTC)
    row = (
        event_id.hex,
        1,
        1,
        created.replace(tzinfo=None).isoformat(" "),
        item.get("producer", "core"),
        item["schema"],
        SCHEMA_VERSION,
        json.dumps(item["payload"]),
        "{}",
        "[]",
        "[]",
        " ".join(payload_words(item["payload"])),
    )
    database = connection()
    database.execute("BEGIN IMMEDIATE")
    try:
        (position,) = database.execute(INSERT, row).fetchone()
        database.execute("COMMIT")
    except BaseException:
        database.execute("ROLLBACK")
        raise
    return JsonResponse(
        {"id": str(event_id), "createdAt": created.isoformat(), "position": position},
        status=201,
    )


urlpatterns = [path("api/events/", create_event)]
