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
    "drf_spectacular_sidecar",
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
        "rest_framework.authentication.BasicAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}

SPECTACULAR_SETTINGS = {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR"}

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
    "TEST": {"NAME": SQLITE_STORAGE_PATH},
}

TROVE = {"storage": {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}}
