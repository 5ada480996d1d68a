"""Settings of the example project, read from the environment (SPEC section 8).

The same code runs on a laptop and in production; only the environment differs:

- ``DATABASE_URL``: the Django database, as a URL (dj-database-url). Default: a SQLite
  file ``trove.sqlite3`` under the data directory.
- ``TROVE_STORAGE``: JSON text of the ``TROVE["storage"]`` dict. Default: events and
  links in the ORM on the ``default`` database, files under ``<data dir>/files``.
- ``TROVE_DATA_DIR``: where local data goes. Default: ``./data`` relative to the
  working directory; created if missing.
- ``TROVE_SETTINGS``: JSON object of the other ``TROVE`` keys (``strict_schemas``, the
  limits, ``processors``, …), merged over the defaults; its values are checked by
  ``manage.py check`` like any ``TROVE`` setting.
- ``TROVE_DB_POOL_MAX``: the most PostgreSQL connections one server process holds, in
  Django's psycopg connection pool. Default: 4; ``0`` turns the pool off (a connection per
  request, closed after it).
- ``DJANGO_SECRET_KEY``: required unless ``DJANGO_DEBUG`` is true.
- ``DJANGO_DEBUG``: ``1/true/yes/on`` or ``0/false/no/off``. Default: true, for development.
- ``DJANGO_ALLOWED_HOSTS``: comma-separated. Default: ``localhost,127.0.0.1,[::1]``.

A value that cannot be understood raises ``ImproperlyConfigured`` naming the variable,
so a bad deployment fails at start-up rather than at the first request.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from trove_project.components import (  # noqa: F401 - settings are module globals
    BASE_DIR,
    INSTALLED_APPS,
    MIDDLEWARE,
    REST_FRAMEWORK,
    SPECTACULAR_SETTINGS,
    TEMPLATES,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(name: str, default: bool) -> bool:
    """Read a yes/no variable; anything other than the usual spellings is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a yes/no value; use one of 1/true/yes/on or 0/false/no/off."
    )


DEBUG = _env_bool("DJANGO_DEBUG", default=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false; generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
    SECRET_KEY = "django-insecure-trove-development-only-never-use-in-production"

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]

DATA_DIR = Path(os.environ.get("TROVE_DATA_DIR") or "data").expanduser().resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


ROOT_URLCONF = "trove_project.urls"


WSGI_APPLICATION = "trove_project.wsgi.application"

# SQLite serves concurrent readers and one writer well in WAL mode; FULL sync makes a
# committed event survive a power cut, and IMMEDIATE transactions take the write lock
# up front so two writers queue (up to the timeout) instead of failing mid-transaction.
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def _env_count(name: str, default: int) -> int:
    """Read a whole number >= 0."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number >= 0.")
    return int(raw)


DB_POOL_MAX = _env_count("TROVE_DB_POOL_MAX", 4)


def _database_from_env() -> dict:
    """The default database. Never a persistent PostgreSQL connection per thread:
    ``runserver`` starts a thread per request, so connections kept per thread would pile up
    until PostgreSQL refuses clients. PostgreSQL gets Django's connection pool instead,
    bounded per process by ``TROVE_DB_POOL_MAX``; health checks hand out only live
    connections, so the server recovers by itself when the database comes back. A SQLite
    file has no server to exhaust, so each thread keeps its connection: reopening the file
    and running its pragmas on every request costs more than many a request's queries."""
    if not os.environ.get("DATABASE_URL"):
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "trove.sqlite3"),
            "CONN_MAX_AGE": None,
            "OPTIONS": dict(SQLITE_OPTIONS),
        }
    database = dj_database_url.parse(
        os.environ["DATABASE_URL"], conn_max_age=0, conn_health_checks=True
    )
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["CONN_MAX_AGE"] = None
        database["OPTIONS"] = {**SQLITE_OPTIONS, **database.get("OPTIONS", {})}
    elif database["ENGINE"] == "django.db.backends.postgresql":
        if DB_POOL_MAX:
            database.setdefault("OPTIONS", {})["pool"] = {
                "min_size": 1,
                "max_size": DB_POOL_MAX,
                "timeout": 5,
            }
    return database


DATABASES = {"default": _database_from_env()}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _storage_from_env() -> dict:
    """Parse ``TROVE_STORAGE``; its contents are validated by Trove's system checks."""
    raw = os.environ.get("TROVE_STORAGE")
    if not raw:
        return {
            "events": {"plugin": "storage-orm", "options": {"database": "default"}},
            "files": {
                "plugin": "storage-file-system",
                "options": {"directory": str(DATA_DIR / "files")},
            },
            "links": "useEventStorage",
        }
    try:
        storage = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"TROVE_STORAGE is not valid JSON: {exc}") from exc
    if not isinstance(storage, dict):
        raise ImproperlyConfigured(
            "TROVE_STORAGE must be a JSON object such as "
            '{"events": {"plugin": "storage-orm"}, "links": "useEventStorage"}.'
        )
    return storage


def _trove_settings_from_env() -> dict:
    """Parse ``TROVE_SETTINGS``; its keys and values are validated by Trove's system checks."""
    raw = os.environ.get("TROVE_SETTINGS")
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"TROVE_SETTINGS is not valid JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise ImproperlyConfigured(
            'TROVE_SETTINGS must be a JSON object such as {"strict_schemas": true}.'
        )
    if "storage" in values:
        raise ImproperlyConfigured("TROVE_SETTINGS cannot hold 'storage'; use TROVE_STORAGE.")
    return values


TROVE = {**_trove_settings_from_env(), "storage": _storage_from_env()}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
