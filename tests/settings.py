"""Settings for the test suite.

The default database is SQLite. When a PostgreSQL server answers at
``TROVE_TEST_POSTGRES_URL`` (default: the local server, user ``postgres``), it is added as
the ``postgres`` alias with a test database named after this process, so that concurrent
runs never share one; the PostgreSQL tier runs against it. ``TROVE_REQUIRE_POSTGRES=1``
turns a missing server into a failure (see ``tests/conftest.py``).
"""

import os

import dj_database_url

from trove.storage.orm import SQLiteEventStorage
from trove_project.components import (  # noqa: F401 - settings are module globals
    INSTALLED_APPS,
    MIDDLEWARE,
    REST_FRAMEWORK,
    SPECTACULAR_SETTINGS,
    TEMPLATES,
)

SECRET_KEY = "trove-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "trove_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_URL = "/static/"
MEDIA_ROOT = "/tmp/trove-test-media"


DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "TEST": {"NAME": ":memory:"},
    }
}


def _postgres() -> tuple[dict | None, str]:
    """The PostgreSQL alias's settings if a server answers, else (None, why not)."""
    url = os.environ.get("TROVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as error:  # any failure means: no PostgreSQL tier on this machine
        return None, f"PostgreSQL at {url} is not reachable ({error.__class__.__name__}: {error})"
    config = dj_database_url.parse(url)
    config["TEST"] = {"NAME": f"test_trove_{os.getpid()}"}
    return config, ""


POSTGRES_CONFIG, POSTGRES_UNAVAILABLE_REASON = _postgres()
if POSTGRES_CONFIG is not None:
    DATABASES["postgres"] = POSTGRES_CONFIG

# storage-sqlite's dedicated file, declared so that Django's test isolation covers it.
SQLITE_STORAGE_PATH = f"/tmp/trove-tests-{os.getpid()}/events.db"
os.makedirs(os.path.dirname(SQLITE_STORAGE_PATH), exist_ok=True)
DATABASES[SQLiteEventStorage.alias_for(SQLITE_STORAGE_PATH)] = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": SQLITE_STORAGE_PATH,
    # As storage-sqlite configures the file itself (see SQLiteEventStorage.initialize).
    "OPTIONS": {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    },
    "TEST": {"NAME": SQLITE_STORAGE_PATH},
}

TROVE = {"storage": {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}}
