"""The example project, configured from the environment (SPEC §8), run as a user would:
``manage.py`` in a fresh process with a fresh data directory."""

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
SAFE_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROVE_", "DATABASE_URL"))
}


def manage(data_dir, *args, env=None, check=True):
    environment = {**SAFE_ENV, "TROVE_DATA_DIR": str(data_dir), **(env or {})}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def shell(data_dir, code, env=None):
    return manage(data_dir, "shell", "-c", code, env=env).stdout


def test_defaults_store_events_in_sqlite_and_files_under_the_data_dir(tmp_path):
    manage(tmp_path, "migrate", "--noinput")
    assert (tmp_path / "trove.sqlite3").exists()
    out = shell(
        tmp_path,
        "import trove; e = trove.create_event('s', {'a': 1}, files=[trove.NewFile(b'hi')]);"
        "print(e.uuid)",
    )
    event_id = out.strip().splitlines()[-1]
    assert list((tmp_path / "files").rglob("*.json")), "file record under TROVE_DATA_DIR/files"
    out = shell(tmp_path, f"import trove; print(trove.get_event('{event_id}').payload)")
    assert out.strip().endswith("{'a': 1}")
    journal = shell(
        tmp_path,
        "from django.db import connection; c = connection.cursor();"
        "print(c.execute('PRAGMA journal_mode').fetchone()[0])",
    )
    assert journal.strip().endswith("wal")


def test_a_sqlite_connection_outlives_the_request(tmp_path):
    """Each server thread keeps its SQLite connection rather than reopening the file (and
    running its pragmas) for every request."""
    out = shell(
        tmp_path,
        "from django.core.signals import request_finished, request_started;"
        "from django.db import connection; connection.ensure_connection();"
        "first = connection.connection; request_finished.send(sender=None);"
        "request_started.send(sender=None); connection.ensure_connection();"
        "print(first is connection.connection)",
    )
    assert out.strip().splitlines()[-1] == "True"


def test_a_storage_sqlite_file_keeps_its_connection_across_requests(tmp_path):
    """storage-sqlite registers its own database alias; the end of a request must not
    close that connection either, or every request reopens the file."""
    env = {
        "TROVE_STORAGE": json.dumps(
            {
                "events": {
                    "plugin": "storage-sqlite",
                    "options": {"path": str(tmp_path / "events.db")},
                },
                "files": {
                    "plugin": "storage-file-system",
                    "options": {"directory": str(tmp_path / "f")},
                },
            }
        )
    }
    manage(tmp_path, "migrate", "--noinput", env=env)
    out = shell(
        tmp_path,
        "import trove; from django.core.signals import request_finished;"
        "from django.db import connections; from trove.storage.handler import storages;"
        "trove.create_event('s', {'i': 1}); alias = storages.events.alias;"
        "first = connections[alias].connection; request_finished.send(sender=None);"
        "trove.create_event('s', {'i': 2});"
        "print(first is not None and first is connections[alias].connection)",
        env=env,
    )
    assert out.strip().splitlines()[-1] == "True"


def test_trove_storage_selects_a_dedicated_sqlite_file(tmp_path):
    events_db = tmp_path / "events" / "events.db"
    env = {
        "TROVE_STORAGE": json.dumps(
            {
                "events": {"plugin": "storage-sqlite", "options": {"path": str(events_db)}},
                "files": {
                    "plugin": "storage-file-system",
                    "options": {"directory": str(tmp_path / "f")},
                },
            }
        )
    }
    manage(tmp_path, "migrate", "--noinput", env=env)
    out = shell(tmp_path, "import trove; print(trove.create_event('s', {'k': 'v'}).uuid)", env=env)
    event_id = out.strip().splitlines()[-1]
    assert events_db.exists()
    out = shell(
        tmp_path, "import trove; print(trove.count_events({'payload': {'k': 'v'}}))", env=env
    )
    assert out.strip().endswith("1")
    default_db = shell(
        tmp_path, "from trove.models import Event; print(Event.objects.count())", env=env
    )
    assert default_db.strip().endswith("0"), "the events went to the dedicated file, not default"
    assert uuid.UUID(event_id)


def test_check_reports_a_misspelled_plugin_from_the_environment(tmp_path):
    env = {"TROVE_STORAGE": json.dumps({"events": {"plugin": "storage-sqlit"}})}
    result = manage(tmp_path, "check", env=env, check=False)
    assert result.returncode != 0
    assert "trove.E002" in result.stderr and "storage-sqlit" in result.stderr


@pytest.mark.parametrize(
    "env, message",
    [
        ({"TROVE_STORAGE": "{not json"}, "TROVE_STORAGE is not valid JSON"),
        ({"DJANGO_DEBUG": "false"}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe'"),
        ({"TROVE_SETTINGS": "{strict"}, "TROVE_SETTINGS is not valid JSON"),
        ({"TROVE_SETTINGS": "[1]"}, "TROVE_SETTINGS must be a JSON object"),
        ({"TROVE_SETTINGS": '{"storage": {}}'}, "use TROVE_STORAGE"),
        ({"TROVE_DB_POOL_MAX": "many"}, "TROVE_DB_POOL_MAX='many'"),
    ],
)
def test_bad_environment_is_reported_naming_the_variable(tmp_path, env, message):
    result = manage(tmp_path, "check", env=env, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_trove_settings_are_merged_over_the_defaults(tmp_path):
    env = {"TROVE_SETTINGS": json.dumps({"strict_schemas": True, "max_json_depth": 3})}
    manage(tmp_path, "migrate", "--noinput", env=env)
    out = shell(
        tmp_path,
        "import trove; from trove.conf import trove_settings as s;"
        "print(s.strict_schemas, s.max_json_depth, s.max_query_terms, sorted(s.storage));"
        "\ntry: trove.create_event('unregistered', {})"
        "\nexcept trove.exceptions.SchemaNotFound: print('refused')",
        env=env,
    )
    assert out.strip().splitlines()[-2:] == ["True 3 1000 ['events', 'files', 'links']", "refused"]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"strict_schemas": "yes"}, "TROVE['strict_schemas'] must be True or False"),
        ({"max_json_depth": 0}, "TROVE['max_json_depth'] must be a positive integer"),
        ({"processors": []}, "TROVE['processors'] must be a dict"),
        ({"max_jsn_depth": 3}, "TROVE has an unknown key 'max_jsn_depth'"),
    ],
)
def test_check_reports_bad_trove_settings_from_the_environment(tmp_path, values, message):
    result = manage(tmp_path, "check", env={"TROVE_SETTINGS": json.dumps(values)}, check=False)
    assert result.returncode != 0
    assert message in result.stderr and "trove.E00" in result.stderr


def test_database_url_selects_postgresql(tmp_path, postgres_alias):
    import psycopg

    name = f"trove_project_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}"}
        manage(tmp_path, "migrate", "--noinput", env=env)
        out = shell(
            tmp_path,
            "import trove; trove.create_event('s', {'n': 1});"
            "from django.db import connection; print(connection.vendor, trove.count_events())",
            env=env,
        )
        assert out.strip().endswith("postgresql 1")
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_createsuperuser_noinput_and_bootstrap_admin(tmp_path):
    manage(tmp_path, "migrate", "--noinput")
    first = manage(tmp_path, "trove_bootstrap_admin").stdout
    assert "admin" in first and "password" in first.lower()
    again = manage(tmp_path, "trove_bootstrap_admin").stdout
    assert "already" in again.lower() and "changepassword" in again
    env = {
        "DJANGO_SUPERUSER_USERNAME": "ops",
        "DJANGO_SUPERUSER_PASSWORD": "s3cret-Pass-9",
        "DJANGO_SUPERUSER_EMAIL": "ops@example.com",
    }
    manage(tmp_path, "createsuperuser", "--noinput", env=env)
    out = shell(
        tmp_path,
        "from django.contrib.auth.models import User;"
        "print(sorted(User.objects.values_list('username', flat=True)))",
    )
    assert out.strip().endswith("['admin', 'ops']")


def test_runserver_serves_the_admin_login(tmp_path):
    manage(tmp_path, "migrate", "--noinput")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**SAFE_ENV, "TROVE_DATA_DIR": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/") as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert response.status == 200 and 'name="password"' in body
    finally:
        server.terminate()
        server.wait(10)
