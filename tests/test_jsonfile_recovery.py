"""``storage-json-file`` after things go wrong: a writer killed between the steps of a
commit, a commit that fails, torn or stray files, and an index that is missing, damaged or
older than the documents."""

import errno
import io
import logging
import os
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from trove.documents import Event, EventId, Link, SchemaRef
from trove.exceptions import StorageUnavailable
from trove.query import EventQuery
from trove.storage import jsonfile_index
from trove.storage.jsonfile import CorruptDocument, JSONFileEventStorage

ROOT = Path(__file__).resolve().parents[1]

# Saves two events in one commit and dies by SIGKILL at the step named by argv[2].
CRASH = """
import os, signal, sys, uuid
from datetime import UTC, datetime
from trove.documents import Event, EventId, SchemaRef
from trove.storage import jsonfile_index
from trove.storage.jsonfile import JSONFileEventStorage

storage = JSONFileEventStorage(directory=sys.argv[1])
storage.initialize()

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[2] == "journal-written":
    JSONFileEventStorage._publish = die
else:
    jsonfile_index.apply = die
storage.save_events([
    Event(EventId(uuid.UUID(i), 1), datetime.now(UTC), SchemaRef("s"), {"n": n})
    for n, i in enumerate(sys.argv[3:])
])
"""


def event(payload: dict | None = None, *, event_id=None, version=1, links=()) -> Event:
    return Event(
        EventId(event_id or uuid.uuid4(), version),
        datetime.now(UTC),
        SchemaRef("s"),
        payload or {},
        links=tuple(links),
    )


def all_ids(storage: JSONFileEventStorage) -> list[uuid.UUID]:
    return [e.uuid for e in storage.query_events(EventQuery.parse({}))]


@pytest.fixture
def directory(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(directory):
    opened = []

    def open_store() -> JSONFileEventStorage:
        storage = JSONFileEventStorage(directory=str(directory))
        storage.initialize()
        opened.append(storage)
        return storage

    yield open_store
    for storage in opened:
        storage.shutdown()


def remove_index(directory: Path) -> None:
    for name in ("index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm"):
        (directory / name).unlink(missing_ok=True)


# A writer killed in the middle of a commit ----------------------------------------------


@pytest.mark.parametrize("step", ["journal-written", "documents-written"])
def test_a_commit_cut_short_by_sigkill_is_finished_by_the_next_reader(store, directory, step):
    storage = store()  # a running process, which must notice the crash on its own
    kept = event({"kept": True})
    storage.save_event(kept)
    ids = [uuid.uuid4(), uuid.uuid4()]
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH, str(directory), step, *map(str, ids)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert crashed.returncode == -9
    documents = sorted(p.name for p in (directory / "events").rglob("*.json"))
    assert len(documents) == (1 if step == "journal-written" else 3)

    assert sorted(all_ids(storage), key=str) == sorted([kept.uuid, *ids], key=str)
    assert [storage.get_event(i).payload for i in ids] == [{"n": 0}, {"n": 1}]
    assert len(list((directory / "events").rglob("*.json"))) == 3
    assert not list(directory.rglob("*.tmp"))


def test_a_failed_commit_leaves_nothing_behind(store, directory, monkeypatch):
    storage = store()
    kept = event({"kept": True})
    storage.save_event(kept)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(directory / "index.sqlite3"))

    monkeypatch.setattr(jsonfile_index, "apply", disk_full)
    failed = [event({"n": 1}), event({"n": 2})]
    with pytest.raises(StorageUnavailable, match="No space left on device"):
        storage.save_events(failed)
    monkeypatch.undo()

    assert len(list((directory / "events").rglob("*.json"))) == 1
    assert all_ids(store()) == [kept.uuid]
    assert storage.get_event(failed[0].uuid) is None
    storage.save_events(failed)
    assert len(all_ids(storage)) == 3


# Torn and stray files ------------------------------------------------------------------


def test_a_leftover_temporary_file_is_never_read_as_an_event(store):
    storage = store()
    first = storage.save_event(event({"v": 1}))
    final = storage.document_path(first.uuid, 2)
    leftover = final.with_name(f".{final.name}.0badf00d.tmp")
    leftover.write_text('{"id": {"id": "' + str(first.uuid) + '", "version": 2}, "crea')

    assert storage.get_versions(first.uuid) == [first]
    assert storage.get_event(first.uuid, 2) is None
    storage.save_event(event({"v": 2}, event_id=first.uuid, version=2))
    assert [v.payload for v in storage.get_versions(first.uuid)] == [{"v": 1}, {"v": 2}]
    report = storage.rebuild_index()
    assert (report.documents, report.damaged) == (2, [])
    assert not leftover.exists()


def test_a_truncated_document_is_reported_by_name_never_read_as_an_event(store):
    storage = store()
    torn, last = event({"v": 1}), event({"v": 1})
    torn, _ = storage.save_events([torn, event({"v": 2}, event_id=torn.uuid, version=2)])
    last, _ = storage.save_events([last, event({"v": 2}, event_id=last.uuid, version=2)])
    damaged = storage.document_path(last.uuid, 1)
    damaged.write_bytes(damaged.read_bytes()[:40])
    with pytest.raises(CorruptDocument, match=str(damaged)):
        storage.get_event(last.uuid, 1)
    with pytest.raises(CorruptDocument, match=str(damaged)):
        storage.get_versions(last.uuid)

    torn_latest = storage.document_path(torn.uuid, 2)
    torn_latest.write_bytes(torn_latest.read_bytes()[:-10])
    report = storage.rebuild_index()
    [problem] = report.damaged
    assert problem.startswith(f"{torn_latest} is not a valid event document")
    assert storage.get_event(torn.uuid) == torn
    assert storage.get_event(last.uuid, 1) == last  # the last commit is restored from the journal
    assert [e.uuid for e in storage.query_events(EventQuery.parse({"payload": {"v": 2}}))] == [
        last.uuid
    ]


# A stale, missing or damaged index -------------------------------------------------------


def three_events(storage: JSONFileEventStorage) -> list[Event]:
    first = event({"n": 1})
    storage.save_event(first)
    second = event({"n": 2})
    storage.save_event(second)
    third = event({"n": 3}, links=[Link("parent", EventId(first.uuid, 1))])
    storage.save_event(third)
    return [first, second, third]


def assert_answers_for(storage: JSONFileEventStorage, events: list[Event]) -> None:
    first, _, third = events
    assert all_ids(storage) == [e.uuid for e in events]
    assert storage.count_events(EventQuery.parse({"payload": {"n": 2}})) == 1
    assert [source for source, _ in storage.get_backlinks(first.uuid)] == [third.id]


def test_an_index_deleted_under_a_running_store_is_rebuilt(store, directory, caplog):
    storage = store()
    events = three_events(storage)
    remove_index(directory)
    with caplog.at_level(logging.WARNING, logger="trove.storage.jsonfile"):
        assert_answers_for(storage, events)
    assert "rebuilt it from 3 documents" in caplog.text


def test_a_damaged_index_is_rebuilt(store, directory, caplog):
    storage = store()
    events = three_events(storage)
    storage.shutdown()
    remove_index(directory)
    (directory / "index.sqlite3").write_bytes(b"this is not a database" * 200)
    with caplog.at_level(logging.WARNING, logger="trove.storage.jsonfile"):
        assert_answers_for(store(), events)
    assert "damaged" in caplog.text


def test_an_index_restored_from_an_older_copy_is_rebuilt(store, directory, tmp_path):
    storage = store()
    first = event({"n": 1})
    storage.save_event(first)
    older = sqlite3.connect(tmp_path / "older.sqlite3")
    with sqlite3.connect(directory / "index.sqlite3") as live:
        live.backup(older)
    older.close()
    second = event({"n": 2})
    storage.save_event(second)
    third = event({"n": 3}, links=[Link("parent", EventId(first.uuid, 1))])
    storage.save_event(third)
    storage.shutdown()

    remove_index(directory)
    (tmp_path / "older.sqlite3").rename(directory / "index.sqlite3")
    assert_answers_for(store(), [first, second, third])


# The rebuild command -------------------------------------------------------------------


@pytest.fixture
def configured(settings, directory):
    settings.TROVE = {
        "storage": {
            "events": {"plugin": "storage-json-file", "options": {"directory": str(directory)}},
            "files": {"plugin": "storage-memory"},
        }
    }


def test_the_rebuild_command_reindexes_every_document_with_progress(store, directory, configured):
    storage = store()
    storage.save_events([event({"n": n}) for n in range(1001)])
    storage.shutdown()
    remove_index(directory)

    out = io.StringIO()
    call_command("trove_rebuild_index", stdout=out)
    assert "1,000 documents indexed" in out.getvalue()
    assert f"Rebuilt the index of {directory}: 1,001 events, 1,001 documents." in out.getvalue()
    assert len(all_ids(store())) == 1001


def test_the_rebuild_command_names_documents_it_cannot_read(store, directory):
    storage = store()
    events = three_events(storage)
    damaged = storage.document_path(events[1].uuid, 1)
    damaged.write_text("{")
    with pytest.raises(CommandError, match=str(damaged)):
        call_command("trove_rebuild_index", directory=str(directory), stdout=io.StringIO())
    assert all_ids(storage) == [events[0].uuid, events[2].uuid]


def test_the_rebuild_command_refuses_what_is_not_a_json_file_store(tmp_path, settings):
    with pytest.raises(CommandError, match="holds no storage-json-file events"):
        call_command("trove_rebuild_index", directory=str(tmp_path / "nothing"))
    settings.TROVE = {"storage": {"events": {"plugin": "storage-memory"}}}
    with pytest.raises(CommandError, match="not storage-json-file"):
        call_command("trove_rebuild_index")
