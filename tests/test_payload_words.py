"""Events stored before ``text`` existed are found by it: migration 0004 fills in the
words of every stored payload."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

import trove
from trove.storage.handler import storages


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_stored_payloads_their_words(settings):
    executor = MigrationExecutor(connection)
    executor.migrate([("trove", "0003_positions")])
    old = executor.loader.project_state([("trove", "0003_positions")]).apps
    Event = old.get_model("trove", "Event")
    for position, payload in enumerate([{"t": "Straße", "k": ["Old NEWS"]}, {"t": "other"}], 1):
        Event.objects.create(
            event_id=uuid.uuid4(),
            created_at=datetime(2026, 1, position, tzinfo=UTC),
            schema_id="s",
            payload=payload,
            position=position,
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("trove"))

    settings.TROVE = {"storage": {"events": {"plugin": "storage-orm"}}}
    try:
        found = trove.query_events({"text": "news strasse"})
        assert [e.payload["t"] for e in found] == ["Straße"]
        assert trove.count_events({"text": "other"}) == 1
    finally:
        storages.close_all()
