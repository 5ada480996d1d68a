"""export, import, copy and verify (SPEC §10) between real backends, in process.

The source is a JSON directory with files on the file system; targets are the ORM on
SQLite, a dedicated SQLite file, or another JSON directory.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

import trove
from tests.interchange_corpus import BINARY, answers, build_corpus
from trove.interchange import document_digest
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(databases="__all__")


def json_dir(path: Path) -> dict:
    return {
        "events": {"plugin": "storage-json-file", "options": {"directory": str(path / "events")}},
        "files": {"plugin": "storage-file-system", "options": {"directory": str(path / "files")}},
    }


def orm_store(path: Path) -> dict:
    return {
        "events": {"plugin": "storage-orm"},
        "files": {"plugin": "storage-file-system", "options": {"directory": str(path / "files")}},
    }


def using(storage: dict):
    storages.close_all()
    return override_settings(TROVE={"storage": storage})


def run(*args, **kwargs) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


def all_versions() -> list[dict]:
    """Every version of the configured store in position order, without positions."""
    docs = []
    for event in trove.read_feed(0, 1000):
        data = event.to_dict()
        data.pop("position")
        docs.append(data)
    return docs


@pytest.fixture
def source(tmp_path):
    """A JSON directory holding the corpus; yields (its storage dict, versions written)."""
    storage = json_dir(tmp_path / "source")
    with using(storage):
        written = build_corpus()
        yield storage, written
    storages.close_all()


def export(tmp_path, *extra) -> Path:
    output = tmp_path / "export.jsonl"
    run(
        "trove_export",
        "--all-versions",
        "--files",
        str(tmp_path / "bytes"),
        "-o",
        str(output),
        *extra,
    )
    return output


def test_round_trip_keeps_every_version_file_and_link(source, tmp_path):
    storage, written = source
    with using(storage):
        output = export(tmp_path)
        before, expected = all_versions(), answers()
    lines = output.read_text().splitlines()
    assert len(lines) == len(written) == 11
    assert [json.loads(line)["position"] for line in lines] == sorted(e.position for e in written)
    with using(orm_store(tmp_path / "target")):
        _, err = run("trove_import", str(output), "--files", str(tmp_path / "bytes"))
        assert "Imported 11, skipped 0" in err
        assert all_versions() == before  # ids, versions, createdAt, producers, links, files
        assert answers() == expected
        note = written[0]
        binary = next(f for f in note.files if f.filename == "blob.bin")
        with trove.open_file(binary.id) as stream:
            assert stream.read() == BINARY
        positions = [e.position for e in trove.read_feed(0, 1000)]
        assert positions == sorted(positions)
        run("trove_verify", "--files")

        _, err = run("trove_import", str(output), "--files", str(tmp_path / "bytes"))
        assert "Imported 0, skipped 11" in err
        assert len(trove.read_feed(0, 1000)) == 11


def test_a_different_document_under_a_stored_version_is_a_conflict(source, tmp_path):
    storage, written = source
    with using(storage):
        output = export(tmp_path)
    lines = output.read_text().splitlines()
    with using(orm_store(tmp_path / "target")):
        run("trove_import", str(output), "--files", str(tmp_path / "bytes"))
        changed = json.loads(lines[4])
        changed["payload"]["n"] = 999
        altered = tmp_path / "altered.jsonl"
        altered.write_text(json.dumps(changed) + "\n")
        with pytest.raises(CommandError):
            _, err = run("trove_import", str(altered), "--on-error", "skip")
        event = trove.get_event(changed["id"]["id"])
        assert event.payload["n"] != 999


def test_a_malformed_line_is_named_and_skip_goes_on(source, tmp_path):
    storage, written = source
    with using(storage):
        output = export(tmp_path)
    lines = output.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([lines[0], "{not json", '{"id": 3}', *lines[1:]]) + "\n")
    with using(orm_store(tmp_path / "target")):
        err = io.StringIO()
        with pytest.raises(CommandError):
            call_command(
                "trove_import",
                str(broken),
                "--files",
                str(tmp_path / "bytes"),
                "--on-error",
                "skip",
                stderr=err,
                stdout=io.StringIO(),
            )
        text = err.getvalue()
        assert f"{broken}:2: not valid JSON" in text
        assert f"{broken}:3: not a valid event document" in text
        assert "Imported 11, skipped 0 already present, 0 conflicts, 2 failed." in text


def test_stop_writes_nothing_after_the_first_error(source, tmp_path):
    storage, written = source
    with using(storage):
        output = export(tmp_path)
    lines = output.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines[:3], "[1, 2]", *lines[3:]]) + "\n")
    with using(orm_store(tmp_path / "target")):
        err = io.StringIO()
        with pytest.raises(CommandError):
            call_command(
                "trove_import",
                str(broken),
                "--files",
                str(tmp_path / "bytes"),
                stderr=err,
                stdout=io.StringIO(),
            )
        assert f"{broken}:4: not a valid event document" in err.getvalue()
        assert len(trove.read_feed(0, 1000)) == 3


def test_import_validates_payloads_hashes_and_link_targets(source, tmp_path):
    storage, written = source
    with using(storage):
        output = export(tmp_path)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    bad_payload = dict(lines[0], payload={"no": "text"})
    (tmp_path / "bytes" / "sha256").mkdir(exist_ok=True)
    for path in (tmp_path / "bytes" / "sha256").iterdir():
        path.write_bytes(b"tampered")
    with using(orm_store(tmp_path / "target")):
        err = io.StringIO()
        mixed = tmp_path / "mixed.jsonl"
        mixed.write_text("\n".join(json.dumps(x) for x in [bad_payload, lines[0], lines[3]]))
        with pytest.raises(CommandError):
            call_command(
                "trove_import",
                str(mixed),
                "--files",
                str(tmp_path / "bytes"),
                "--on-error",
                "skip",
                stderr=err,
                stdout=io.StringIO(),
            )
        text = err.getvalue()
        assert f"{mixed}:1: Payload does not follow schema note.created version 1.0" in text
        assert f"{mixed}:2: The bytes of file" in text and "have hash" in text
        assert f"{mixed}:3: Link 'about'" in text and "does not hold" in text
        assert trove.read_feed(0, 10) == []
        assert not list((tmp_path / "target" / "files").rglob("blobs/*/*/*"))

        dangling = tmp_path / "dangling.jsonl"
        dangling.write_text(json.dumps(lines[3]) + "\n")
        run("trove_import", str(dangling), "--allow-dangling-links")
        assert trove.get_event(lines[3]["id"]["id"]).links[0].type == "about"


def test_export_selects_latest_versions_matching_a_query(source, tmp_path):
    storage, written = source
    with using(storage):
        out, _ = run("trove_export", "--query", json.dumps({"schema": "note.created"}))
        assert [json.loads(line)["id"] for line in out.splitlines()] == [
            {"id": str(written[0].uuid), "version": 3}
        ]
        out, _ = run("trove_export", "--all-versions", "--query", '{"schema": "note.created"}')
        assert [json.loads(line)["id"]["version"] for line in out.splitlines()] == [1, 2, 3]
        out, _ = run("trove_export", "--quiet")
        assert len(out.splitlines()) == 8  # one line per event: its latest version
        with pytest.raises(CommandError, match="filters only"):
            run("trove_export", "--query", '{"limit": 3}')


def test_progress_lines_when_not_on_a_terminal_and_quiet(source, tmp_path):
    storage, _ = source
    with using(storage):
        _, err = run(
            "trove_export",
            "--all-versions",
            "--progress-every",
            "0",
            "-o",
            str(tmp_path / "x.jsonl"),
        )
        progress = [line for line in err.splitlines() if line.startswith("Exporting:")]
        assert progress and "/s" in progress[-1] and "(100%)" in progress[-1]
        _, err = run(
            "trove_export", "--quiet", "--progress-every", "0", "-o", str(tmp_path / "y.jsonl")
        )
        assert err == ""


def test_copy_compares_counts_and_digests(source, tmp_path):
    storage, written = source
    target = json_dir(tmp_path / "copy")
    with using(storage):
        _, err = run("trove_copy", "--to", json.dumps(target))
        assert "Copied 11 versions (0 were already there)" in err
        digests = [line.split("digest ")[1] for line in err.splitlines() if "digest" in line]
        assert len(digests) == 2 and digests[0] == digests[1]
        _, err = run("trove_copy", "--to", json.dumps(target))
        assert "Copied 0 versions (11 were already there)" in err
    with using(target):
        assert [document_digest(e) for e in trove.read_feed(0, 1000)] == [
            document_digest(e) for e in written
        ]
        run("trove_verify", "--files")
        trove.create_event("extra", {})
    with using(storage), pytest.raises(CommandError, match="does not hold the same"):
        run("trove_copy", "--to", json.dumps(target))


def test_verify_reports_corrupt_bytes_and_a_missing_link_target(tmp_path):
    from trove.models import Event as EventRow

    with using(orm_store(tmp_path / "store")):
        written = build_corpus(orders=2)
        run("trove_verify", "--files")
        blob = next(
            (tmp_path / "store" / "files" / "blobs").rglob(written[0].files[1].hash.split(":")[1])
        )
        blob.write_bytes(b"corrupted")
        EventRow.objects.filter(event_id=written[4].uuid).delete()  # the reply links to it
        out = io.StringIO()
        with pytest.raises(CommandError) as raised:
            call_command("trove_verify", "--files", stdout=out, stderr=io.StringIO())
        assert raised.value.returncode == 1
        report = out.getvalue()
        assert (
            f"file {written[0].files[1].id} ({written[0].files[1].hash}, 10240 bytes): "
            "the stored bytes have hash" in report
        )
        assert f"targets event {written[4].uuid}, which does not exist" in report
        without = io.StringIO()
        with pytest.raises(CommandError):
            call_command("trove_verify", stdout=without, stderr=io.StringIO())
        assert "stored bytes" not in without.getvalue()  # only --files reads them


def test_verify_finds_a_json_index_that_disagrees_with_its_documents(source, tmp_path):
    storage, written = source
    events_dir = tmp_path / "source" / "events" / "events"
    document = next(events_dir.rglob(f"{written[4].uuid}.1.json"))
    document.unlink()
    with using(storage):
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("trove_verify", stdout=out, stderr=io.StringIO())
        assert f"The index holds event {written[4].uuid} version 1" in out.getvalue()
        assert "whose document is missing" in out.getvalue()


def test_a_terminal_gets_a_progress_bar_with_rate_and_time_left(source, tmp_path):
    """tqdm's bar when stderr is a terminal (a pseudo-terminal here), never on stdout."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios
    import uuid

    storage, written = source
    storages.close_all()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROVE_"))},
        "DJANGO_SETTINGS_MODULE": "trove_project.settings",
        "DJANGO_SECRET_KEY": uuid.uuid4().hex,
        "TROVE_DATA_DIR": str(tmp_path / "data"),
        "TROVE_STORAGE": json.dumps(storage),
    }
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "manage.py", "trove_export", "--all-versions"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=120,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == len(written)
    text = shown.decode()
    assert "Exporting: 100%|" in text and "11/11" in text and "versions/s" in text
    assert "<00:00" in text  # the time left


def test_verify_reports_a_gap_in_an_events_versions(tmp_path):
    from trove.models import Event as EventRow

    with using(orm_store(tmp_path / "store")):
        written = build_corpus(orders=1)
        note = written[0]
        EventRow.objects.filter(event_id=note.uuid, version=2).delete()
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("trove_verify", stdout=out, stderr=io.StringIO())
        assert out.getvalue().splitlines() == [
            f"Event {note.uuid} has versions 1, 3, not 1..3 (missing 2)."
        ]
