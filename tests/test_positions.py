"""Stores written before positions existed get them, in ``createdAt`` order: the ORM's
tables by migration 0003, a JSON directory by its index rebuild."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from trove.documents import Event, EventId, SchemaRef
from trove.storage.jsonfile import JSONFileEventStorage

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_the_migration_numbers_existing_versions_in_created_at_order(settings):
    executor = MigrationExecutor(connection)
    executor.migrate([("trove", "0002_payload_gin_index")])
    old = executor.loader.project_state([("trove", "0002_payload_gin_index")]).apps
    Event = old.get_model("trove", "Event")
    late, early = uuid.uuid4(), uuid.uuid4()
    for event_id, version, minutes, latest in (
        (late, 1, 5, False),
        (early, 1, 1, True),
        (late, 2, 9, True),
    ):
        Event.objects.create(
            event_id=event_id,
            version=version,
            is_latest=latest,
            created_at=EPOCH + timedelta(minutes=minutes),
            schema_id="s",
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("trove"))

    import trove
    from trove.models import Event as Current
    from trove.storage.handler import storages

    numbered = Current.objects.order_by("position").values_list("event_id", "version", "position")
    assert list(numbered) == [(early, 1, 1), (late, 1, 2), (late, 2, 3)]
    settings.TROVE = {"storage": {"events": {"plugin": "storage-orm"}}}
    try:
        assert trove.create_event("s", {}).position == 4
        assert [e.position for e in trove.read_feed()] == [1, 2, 3, 4]
    finally:
        storages.close_all()


def test_a_json_directory_without_positions_gets_them_on_rebuild(tmp_path):
    directory = tmp_path / "store"
    storage = JSONFileEventStorage(directory=str(directory))
    storage.initialize()
    first, second = uuid.uuid4(), uuid.uuid4()
    storage.save_events(
        [
            Event(EventId(first, 1), EPOCH + timedelta(minutes=5), SchemaRef("s"), {"n": 1}),
            Event(EventId(second, 1), EPOCH + timedelta(minutes=1), SchemaRef("s"), {"n": 2}),
            Event(EventId(first, 2), EPOCH + timedelta(minutes=9), SchemaRef("s"), {"n": 3}),
        ]
    )
    storage.shutdown()
    # As an older Trove wrote them: no position in the documents, an index of format 1.
    for path in (directory / "events").rglob("*.json"):
        document = json.loads(path.read_text())
        del document["position"]
        path.write_text(json.dumps(document, indent=2))
    for path in (directory / "journal").glob("*.jsonl"):
        header, *lines = path.read_text().splitlines()
        documents = [json.loads(line) for line in lines]
        for document in documents:
            del document["position"]
        path.write_text("\n".join([header, *map(json.dumps, documents)]) + "\n")
    for path in directory.glob("index.sqlite3*"):
        path.unlink()

    reopened = JSONFileEventStorage(directory=str(directory))
    reopened.initialize()
    feed = [(e.uuid, e.version, e.position) for e in reopened.read_feed()]
    assert feed == [(second, 1, 1), (first, 1, 2), (first, 2, 3)]
    written = json.loads(reopened.document_path(first, 2).read_text())
    assert written["position"] == 3
    reopened.rebuild_index()
    assert [(e.uuid, e.version, e.position) for e in reopened.read_feed()] == feed
    [stored] = reopened.save_events([Event(EventId(uuid.uuid4(), 1), EPOCH, SchemaRef("s"), {})])
    assert stored.position == 4
    reopened.shutdown()


def test_a_position_added_under_the_lock_is_what_serialising_the_event_gives():
    from trove.storage.jsonfile import Document

    event = Event(EventId(uuid.uuid4(), 1), EPOCH, SchemaRef("s"), {"t": "Grüße"}, metadata={})
    spliced = Document.of(event).with_position(42)
    expected = Document.of(event.with_changes(position=42))
    assert (spliced.compact, spliced.content) == (expected.compact, expected.content)
    assert spliced.event.position == 42
