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

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "trove",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}

# The default database holds the schema registry (and users, for the REST API). It is a
# SQLite file in WAL mode with full fsync, as storage-sqlite configures its own file.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(BENCH_DIR / "default.sqlite3"),
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
    DATABASES["postgres"] = {
        **dj_database_url.parse(POSTGRES_URL),
        "OPTIONS": {"server_side_binding": True, "prepare_threshold": 5},
    }

TROVE = {
    "storage": json.loads(os.environ.get("TROVE_BENCH_STORAGE") or "{}")
    or {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}
}
DATABASE_ROUTERS = ["benchmarks.routers.SchemaRegistryRouter"]
