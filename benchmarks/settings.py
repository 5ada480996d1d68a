"""Django settings of ``python -m benchmarks``: nothing outside a throwaway directory and a
throwaway PostgreSQL database.

``benchmarks.environment`` creates both and names them in the environment before Django
starts (``TROVE_BENCH_DIR``, ``TROVE_BENCH_POSTGRES_URL``); a subprocess started with that
environment (the gunicorn of ``benchmarks.api_ingest``) sees the same databases.
``TROVE_BENCH_STORAGE`` (JSON of ``TROVE["storage"]``) sets the storage of such a
subprocess; in the runner each benchmark chooses its storage with ``override_settings``.
"""

import json
import os
from pathlib import Path

import dj_database_url

from trove_project.components import (  # noqa: F401 - settings are module globals
    INSTALLED_APPS,
    MIDDLEWARE,
    REST_FRAMEWORK,
    SPECTACULAR_SETTINGS,
    TEMPLATES,
)

BENCH_DIR = Path(os.environ.get("TROVE_BENCH_DIR") or "/tmp/trove-bench")
BENCH_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = "trove-benchmarks"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "trove_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
MEDIA_ROOT = str(BENCH_DIR / "media")

# The default database holds the schema registry (and users, for the REST API). It is a
# SQLite file in WAL mode with full fsync, as storage-sqlite configures its own file, and
# each thread keeps its connection, as the example project does for SQLite.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(BENCH_DIR / "default.sqlite3"),
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
}
POSTGRES_URL = os.environ.get("TROVE_BENCH_POSTGRES_URL", "")
if POSTGRES_URL:
    # psycopg's own defaults, as the raw-driver references use them: parameters bound by the
    # server and statements prepared after 5 runs (Django turns both off unless asked).
    # A server's threads keep their connections, as a deployment's pool would.
    DATABASES["postgres"] = {
        **dj_database_url.parse(POSTGRES_URL),
        "CONN_MAX_AGE": None,
        "OPTIONS": {"server_side_binding": True, "prepare_threshold": 5},
    }

# The storage-sqlite file of the REST benchmarks, registered by the storage itself as in
# any project (each server thread keeps its connection to it).
API_EVENTS_PATH = BENCH_DIR / "api" / "events.sqlite3"

TROVE = {
    "storage": json.loads(os.environ.get("TROVE_BENCH_STORAGE") or "{}")
    or {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}
}
DATABASE_ROUTERS = ["benchmarks.routers.SchemaRegistryRouter"]
