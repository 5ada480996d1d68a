"""The "done when" of SPEC §10 on real services and real processes.

- A mixed corpus exported from ``storage-json-file`` + the file system is imported into
  ``storage-orm`` on PostgreSQL + S3 (SeaweedFS): both stores answer the same queries
  with the same documents, and ``trove_verify --files`` is clean on both; then one file's
  bytes are corrupted and one link target deleted, and verify reports both (exit 1).
- ``manage.py trove_copy``, a real process, is killed with SIGKILL mid-copy; the rerun
  completes, with no version twice and the digests of both sides equal.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

import trove
from tests.interchange_corpus import QUERIES, answers, build_corpus
from tests.test_s3 import BUCKET, s3_options, s3_server  # noqa: F401 - s3_server is a fixture
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(databases="__all__")
ROOT = Path(__file__).resolve().parent.parent


def quiet(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_json_directory_to_postgresql_and_s3(tmp_path, postgres_alias, s3_server):  # noqa: F811
    from trove.models import Event as EventRow

    source = {
        "events": {"plugin": "storage-json-file", "options": {"directory": str(tmp_path / "ev")}},
        "files": {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "f")}},
    }
    options = s3_options(s3_server)
    target = {
        "events": {"plugin": "storage-orm", "options": {"database": postgres_alias}},
        "files": {"plugin": "storage-s3", "options": options},
    }
    export, files = tmp_path / "export.jsonl", tmp_path / "bytes"
    storages.close_all()
    with override_settings(TROVE={"storage": source}):
        written = build_corpus(orders=12)
        quiet("trove_export", "--all-versions", "--files", str(files), "-o", str(export))
        expected = answers()
        quiet("trove_verify", "--files")
    storages.close_all()
    with override_settings(TROVE={"storage": target}):
        quiet("trove_import", str(export), "--files", str(files))
        assert answers() == expected
        assert all(expected[:3]) and len(QUERIES) == len(expected)
        assert len(trove.read_feed(0, 1000)) == len(written)
        quiet("trove_verify", "--files")

        note, order = written[0], written[-3]
        binary = note.files[1]
        hexdigest = binary.hash.split(":")[1]
        s3_server.client().put_object(
            Bucket=BUCKET,
            Key=f"{options['prefix']}/blobs/sha256/{hexdigest[:2]}/{hexdigest}",
            Body=b"flipped bits",
        )
        EventRow.objects.using(postgres_alias).filter(event_id=order.uuid).delete()
        out = io.StringIO()
        with pytest.raises(CommandError) as failed:
            call_command("trove_verify", "--files", stdout=out, stderr=io.StringIO())
        assert failed.value.returncode == 1
        report = out.getvalue().splitlines()
        assert any(
            f"file {binary.id}" in line and "stored bytes have hash" in line for line in report
        )
        assert any(f"targets event {order.uuid}, which does not exist" in line for line in report)
        assert len(report) == 3, report  # the bytes, and the link of both reply versions
    storages.close_all()


COPY_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROVE_", "DATABASE_URL"))
}


def test_a_copy_killed_with_sigkill_resumes_without_duplicates(tmp_path):
    source = {
        "events": {"plugin": "storage-json-file", "options": {"directory": str(tmp_path / "ev")}},
        "files": {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "f")}},
    }
    target = {
        "events": {"plugin": "storage-sqlite", "options": {"path": str(tmp_path / "copy.db")}},
        "files": {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "cf")}},
    }
    storages.close_all()
    with override_settings(TROVE={"storage": source}):
        first = trove.create_event("root", {"n": -1}, files=[trove.NewFile(b"root bytes")])
        items = [
            {
                "schema": "step",
                "payload": {"n": n},
                "links": [{"type": "root", "targetEvent": str(first.uuid)}],
                "files": [trove.NewFile(f"file {n}".encode())] if n % 100 == 0 else [],
            }
            for n in range(6000)
        ]
        for start in range(0, len(items), 2000):
            trove.create_events(items[start : start + 2000])
        total = len(items) + 1
    storages.close_all()
    env = {
        **COPY_ENV,
        "DJANGO_SETTINGS_MODULE": "trove_project.settings",
        "DJANGO_SECRET_KEY": "copy-" + uuid.uuid4().hex,
        "TROVE_DATA_DIR": str(tmp_path / "data"),
        "TROVE_STORAGE": json.dumps(source),
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    copy = [*manage, "trove_copy", "--to", json.dumps(target), "--progress-every", "0"]
    process = subprocess.Popen(copy, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "copied 1,000" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL, seen
    with sqlite3.connect(tmp_path / "copy.db") as connection:
        partial = connection.execute("SELECT count(*) FROM trove_event").fetchone()[0]
    assert 0 < partial < total, seen

    rerun = subprocess.run(copy, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"({partial:,} were already there)" in rerun.stderr
    digests = [line.split("digest ")[1] for line in rerun.stderr.splitlines() if "digest" in line]
    assert len(digests) == 2 and digests[0] == digests[1]
    with sqlite3.connect(tmp_path / "copy.db") as connection:
        rows, distinct, positions = connection.execute(
            "SELECT count(*), count(DISTINCT event_id), count(DISTINCT position) FROM trove_event"
        ).fetchone()
    assert rows == distinct == positions == total
    verify = subprocess.run(
        [*manage, "trove_verify", "--files"],
        cwd=ROOT,
        env={**env, "TROVE_STORAGE": json.dumps(target)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
