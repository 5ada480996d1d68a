"""Trove without the S3 packages: boto3 and django-storages are the optional ``s3`` extra.

The example project runs in a fresh process in which importing boto3, botocore, s3transfer
or django-storages fails, as it would in an install without the extra: it migrates, serves
events with files on the file system over HTTP, and ``manage.py check`` explains how to
install the extra when ``storage-s3`` is configured.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.servers import free_port
from tests.test_project import ROOT, SAFE_ENV

#: Run manage.py with the S3 packages made unimportable (``-c`` code, argv from the caller).
WITHOUT_S3 = """
import importlib.abc, runpy, sys

class WithoutS3(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"boto3", "botocore", "s3transfer", "storages"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, WithoutS3())
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
"""


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **SAFE_ENV,
        "TROVE_DATA_DIR": str(data_dir),
        "DJANGO_SUPERUSER_USERNAME": "root",
        "DJANGO_SUPERUSER_PASSWORD": "pw",
        "DJANGO_SUPERUSER_EMAIL": "root@example.org",
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_S3, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def request(url: str, body: dict | None = None) -> tuple[int, bytes]:
    token = base64.b64encode(b"root:pw").decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=10) as r:
        return r.status, r.read()


def test_the_project_serves_events_and_files_without_the_s3_packages(tmp_path):
    env = environment(tmp_path)
    modules = "import trove.admin, trove.api.urls, trove.testing.conformance"
    for args in (
        ["migrate", "--noinput"],
        ["createsuperuser", "--noinput"],
        ["check"],
        ["shell", "-c", modules],
    ):
        result = manage(env, *args)
        assert result.returncode == 0, result.stderr

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", WITHOUT_S3, "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.1)
        status, body = request(
            f"{base}/api/events/",
            {
                "schema": "note.created",
                "payload": {"text": "no S3 here"},
                "files": [{"contentType": "text/plain", "filename": "a.txt", "data": "bytes"}],
            },
        )
        assert status == 201
        file_id = json.loads(body)["files"][0]["id"]
        assert request(f"{base}/api/files/{file_id}/content/") == (200, b"bytes")
        assert list((tmp_path / "files").rglob("*.json")), "the file record is on disk"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_check_says_how_to_install_the_s3_extra_when_storage_s3_is_configured(tmp_path):
    storage = {"files": {"plugin": "storage-s3", "options": {"bucket": "events"}}}
    result = manage(environment(tmp_path, TROVE_STORAGE=json.dumps(storage)), "check")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "trove.E002" in result.stderr
    assert "storage-s3 needs boto3 and django-storages, which are not installed" in result.stderr
    assert 'HINT: pip install "trove-django[s3]"' in result.stderr
