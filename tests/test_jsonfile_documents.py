"""``storage-json-file`` as people see it on disk: readable documents in a bounded layout,
clear errors, and transactions that show up together or not at all."""

import json
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from trove.documents import Event, EventId, Link, SchemaRef
from trove.exceptions import InvalidEvent, StorageUnavailable, VersionConflict
from trove.query import EventQuery
from trove.storage.jsonfile import JSONFileEventStorage


def event(payload: dict | None = None, *, event_id=None, version=1, links=()) -> Event:
    return Event(
        EventId(event_id or uuid.uuid4(), version),
        datetime.now(UTC),
        SchemaRef("s", "1"),
        payload or {},
        producer="test",
        links=tuple(links),
        metadata={"ip": "::1"},
    )


def query(storage: JSONFileEventStorage, **spec) -> list[uuid.UUID]:
    return [e.uuid for e in storage.query_events(EventQuery.parse(spec))]


@pytest.fixture
def directory(tmp_path):
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


def test_each_version_is_a_readable_json_document(store, directory):
    storage = store()
    first = event({"title": "Grüße", "n": 1})
    second = event({"title": "v2"}, event_id=first.uuid, version=2)
    stored = storage.save_events([first, second])
    assert [version.position for version in stored] == [1, 2]
    for version in stored:
        path = storage.document_path(first.uuid, version.version)
        assert path.parent.parent.parent == directory / "events"
        assert path.name == f"{first.uuid}.{version.version}.json"
        assert json.loads(path.read_text(encoding="utf-8")) == version.to_dict()
    assert "Grüße" in storage.document_path(first.uuid, 1).read_text(encoding="utf-8")


def test_time_ordered_ids_still_spread_over_many_directories(store, directory):
    storage = store()
    storage.save_events([event(event_id=uuid.UUID(int=n)) for n in range(200)])
    per_directory = Counter(path.parent for path in (directory / "events").rglob("*.json"))
    assert len(per_directory) >= 190
    assert max(per_directory.values()) <= 2


def test_names_are_made_only_of_uuids_and_versions(store):
    storage = store()
    with pytest.raises(InvalidEvent):
        storage.document_path("../../etc/passwd", 1)
    with pytest.raises(InvalidEvent):
        storage.document_path(uuid.uuid4(), "1/../2")


def test_an_unusable_directory_is_reported_with_its_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    storage = JSONFileEventStorage(directory=str(blocker / "store"))
    with pytest.raises(StorageUnavailable, match=str(blocker)):
        storage.initialize()


def test_a_payload_that_is_not_json_is_rejected_and_nothing_written(store, directory):
    storage = store()
    with pytest.raises(InvalidEvent, match="cannot be stored as JSON"):
        storage.save_events([event({"ok": 1}), event({"n": float("nan")})])
    assert not list((directory / "events").rglob("*.json"))
    assert query(storage) == []


def test_a_transaction_is_invisible_elsewhere_until_it_commits(store, directory):
    writer, other = store(), store()
    writer.begin_transaction()
    parent = event({"n": 1})
    writer.save_event(parent)
    child = event({"n": 2}, links=[Link("parent", EventId(parent.uuid, 1))])
    writer.save_event(child)
    assert query(writer) == [parent.uuid, child.uuid]
    assert writer.get_backlinks(parent.uuid)[0][0] == child.id
    assert query(other) == [] and other.get_event(parent.uuid) is None
    assert not list((directory / "events").rglob("*.json"))
    writer.commit_transaction()
    assert query(other) == [parent.uuid, child.uuid]
    assert other.get_backlinks(parent.uuid)[0][0] == child.id


def test_rolled_back_scopes_leave_no_trace(store, directory):
    storage = store()
    kept = event({"n": 0})
    storage.save_event(kept)
    storage.begin_transaction()
    outer = event({"n": 1})
    storage.save_event(outer)
    storage.begin_transaction()
    storage.save_event(event({"n": 2}))
    storage.save_event(event({"n": 3}, event_id=kept.uuid, version=2))
    storage.rollback_transaction()
    assert query(storage) == [kept.uuid, outer.uuid]
    storage.commit_transaction()
    storage.begin_transaction()
    storage.save_event(event({"n": 4}))
    storage.rollback_transaction()
    assert query(store()) == [kept.uuid, outer.uuid]
    assert len(list((directory / "events").rglob("*.json"))) == 2


def test_reads_inside_a_transaction_see_its_own_versions(store):
    storage = store()
    a, b, c = event({"state": "draft"}), event({"state": "draft"}), event({"state": "final"})
    a, b, c = storage.save_events([a, b, c])
    storage.begin_transaction()
    a2 = event({"state": "final"}, event_id=a.uuid, version=2)
    storage.save_event(a2)
    with pytest.raises(VersionConflict):
        storage.save_event(event({}, event_id=a.uuid, version=2))
    assert storage.get_event(a.uuid) == a2
    assert [v.version for v in storage.get_versions(a.uuid)] == [1, 2]
    final = EventQuery.parse({"payload": {"state": "final"}, "sort": [{"field": "id"}]})
    expected = sorted([a.uuid, c.uuid], key=str)
    assert [e.uuid for e in storage.query_events(final)] == expected
    assert storage.count_events(final) == 2
    paged = EventQuery.parse({"sort": [{"field": "payload.state"}], "limit": 1, "offset": 2})
    assert [e.uuid for e in storage.query_events(paged)] == [a.uuid]
    storage.rollback_transaction()
    assert storage.get_event(a.uuid) == a
