"""``GET /api/health/``: anonymous, one word per storage role, 503 on a real outage."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from rest_framework.test import APIClient

from tests.api.conftest import MEMORY, use_storage
from tests.servers import free_port, gunicorn_command
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(databases="__all__")

ROOT = Path(__file__).resolve().parents[2]
ALL_OK = {"status": "ok", "storages": {"events": "ok", "files": "ok", "links": "ok"}}


def health():
    response = APIClient().get("/api/health/")
    return response.status_code, response.json(), response.content.decode()


def test_every_storage_answers(settings):
    use_storage(settings, MEMORY)
    assert health()[:2] == (200, ALL_OK)


def test_a_file_directory_that_cannot_be_made_is_unavailable(settings, tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory would go")
    directory = blocker / "files"
    use_storage(
        settings,
        {
            "events": {"plugin": "storage-memory"},
            "files": {"plugin": "storage-file-system", "options": {"directory": str(directory)}},
        },
    )
    with caplog.at_level(logging.WARNING, logger="trove.api.health"):
        status, body, text = health()
    assert status == 503
    assert body == {
        "status": "unavailable",
        "storages": {"events": "ok", "files": "unavailable", "links": "ok"},
    }
    assert str(tmp_path) not in text, "no path is revealed"
    assert any("files storage is unavailable" in r.getMessage() for r in caplog.records)
    storages.close_all()


def test_an_event_database_that_refuses_connections_is_unavailable(tmp_path):
    """The example project under gunicorn, its database a PostgreSQL port nobody listens on."""
    closed = free_port()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROVE_"))},
        "DJANGO_SETTINGS_MODULE": "trove_project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "health-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "TROVE_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed}/trove?connect_timeout=5",
    }
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            gunicorn_command(port, "--workers=1", "--timeout=30"),
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/api/health/", timeout=30)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(20)
    assert response.status_code == 503, response.text
    assert response.json() == {
        "status": "unavailable",
        "storages": {"events": "unavailable", "files": "ok", "links": "unavailable"},
    }
    assert str(closed) not in response.text and str(tmp_path) not in response.text
    assert "Health check: the events storage is unavailable" in log.read_text()


def test_it_answers_only_get_and_reveals_no_more_when_logged_in(settings, django_user_model):
    use_storage(settings, MEMORY)
    client = APIClient()
    client.force_login(django_user_model.objects.create_superuser("admin", password="x"))
    response = client.get("/api/health/")
    assert json.loads(response.content) == ALL_OK
    assert client.post("/api/health/", {}, format="json").status_code == 405
