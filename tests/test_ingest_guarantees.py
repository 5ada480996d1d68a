"""The one-statement ingest on PostgreSQL keeps the registry's guarantee.

With the schema registry in the event database, ``storage-orm`` on PostgreSQL validates a
new event against the schema as this process last loaded it and inserts it only if the
registry has not changed since, in the insert's own statement. These tests register and
edit schemas through a connection of their own (as another process would, no signal
reaching this one), including while an event is between its validation and its insert,
and run the conformance suite on that path.
"""

import psycopg
import pytest
from django.db import connections

import trove
from trove import signals
from trove.documents import SchemaRef
from trove.exceptions import SchemaValidationError, VersionConflict
from trove.storage.handler import storages
from trove.testing.conformance import EventStatisticsConformance, EventStorageConformance

POSTGRES_EVENTS = {"plugin": "storage-orm", "options": {"database": "postgres"}}
MEMORY_FILES = {"plugin": "storage-memory"}


class RegistryOnPostgreSQL:
    """Routes the schema registry to the ``postgres`` alias, where the events are."""

    def db_for_read(self, model, **hints):
        return "postgres" if model._meta.model_name == "eventschema" else None

    db_for_write = db_for_read


@pytest.fixture
def registry_on_postgres(settings, postgres_alias):
    settings.DATABASE_ROUTERS = [f"{__name__}.RegistryOnPostgreSQL"]
    settings.TROVE = {"storage": {"events": POSTGRES_EVENTS, "files": MEMORY_FILES}}
    yield
    storages.close_all()


def elsewhere(sql: str, params: tuple = ()) -> None:
    """Run ``sql`` on the test database through a connection of its own, committed."""
    with psycopg.connect(**connections["postgres"].get_connection_params()) as other:
        other.autocommit = True
        other.execute(sql, params)


def register_elsewhere(schema_id: str, version: str, document: str) -> None:
    elsewhere(
        "INSERT INTO trove_eventschema (schema_id, version, schema, description, created_at, "
        "updated_at) VALUES (%s, %s, %s::jsonb, '', now(), now())",
        (schema_id, version, document),
    )


pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_the_insert_checks_the_registry_in_its_own_statement(registry_on_postgres):
    assert storages.events.folds_schema_stamp("postgres")


def test_a_version_registered_elsewhere_applies_to_the_next_event(registry_on_postgres):
    trove.register_schema("c", "1", {"type": "object"})
    assert trove.create_event("c", {}).schema == SchemaRef("c", "1")
    register_elsewhere("c", "2", '{"required": ["n"]}')
    with pytest.raises(SchemaValidationError):
        trove.create_event("c", {})
    assert trove.create_event("c", {"n": 1}).schema == SchemaRef("c", "2")


def test_a_schema_edited_elsewhere_applies_to_the_next_event(registry_on_postgres):
    trove.register_schema("c", "1", {"type": "object"})
    trove.create_event("c", {})
    elsewhere(
        'UPDATE trove_eventschema SET schema = \'{"required": ["n"]}\', updated_at = now() '
        "WHERE schema_id = 'c'"
    )
    with pytest.raises(SchemaValidationError):
        trove.create_event("c", {})
    assert trove.count_events() == 1


def test_a_version_registered_between_validation_and_insert_applies(registry_on_postgres):
    """The registration lands after the event was validated against the cached schema
    and before its insert: the insert sees it, and the event is validated again."""
    trove.register_schema("race", "1", {"type": "object"})
    trove.create_event("race", {})  # this process has now loaded the registry
    received = []

    def register_meanwhile(sender, event, **kwargs):
        received.append(event.schema)
        if len(received) == 1:
            register_elsewhere("race", "2", '{"required": ["n"]}')

    signals.event_received.connect(register_meanwhile)
    try:
        with pytest.raises(SchemaValidationError):
            trove.create_event("race", {})
        assert trove.count_events() == 1  # nothing stored under the version it replaced
        assert received == [SchemaRef("race", "1")]
    finally:
        signals.event_received.disconnect(register_meanwhile)
    assert trove.create_event("race", {"n": 1}).schema == SchemaRef("race", "2")


def test_the_hooks_fire_again_for_an_event_validated_anew(registry_on_postgres):
    trove.register_schema("again", "1", {"type": "object"})
    trove.create_event("again", {})
    received = []

    def register_meanwhile(sender, event, **kwargs):
        received.append(event.schema)
        if len(received) == 1:
            register_elsewhere("again", "2", '{"required": ["n"]}')

    signals.event_received.connect(register_meanwhile)
    try:
        event = trove.create_event("again", {"n": 1})
    finally:
        signals.event_received.disconnect(register_meanwhile)
    assert received == [SchemaRef("again", "1"), SchemaRef("again", "2")]
    assert event.schema == SchemaRef("again", "2")
    assert [e.position for e in trove.read_feed()] == [1, 2]


def test_a_duplicate_id_is_a_conflict_and_takes_no_place(registry_on_postgres):
    first = trove.create_event("dup", {})
    with pytest.raises(VersionConflict):
        storages.events.save_new_event_at_stamp(first.with_position(None), "dup", (0, None, None))
    second = trove.create_event("dup", {})
    assert [e.uuid for e in trove.read_feed()] == [first.uuid, second.uuid]
    assert second.position > first.position


class TestConformanceWithTheRegistryBesideTheEvents(
    EventStorageConformance, EventStatisticsConformance
):
    """Every storage guarantee on the one-statement path."""

    @pytest.fixture(autouse=True)
    def _registry(self, settings, postgres_alias):
        settings.DATABASE_ROUTERS = [f"{__name__}.RegistryOnPostgreSQL"]

    def trove_storage(self, tmp_path):
        return {"events": POSTGRES_EVENTS, "files": MEMORY_FILES}


def test_a_failed_insert_leaves_the_callers_transaction_usable(registry_on_postgres):
    from django.db import transaction

    from trove.exceptions import StorageUnavailable

    first = trove.create_event("s", {})  # the counter row exists, the registry is loaded
    params = connections["postgres"].get_connection_params()
    with psycopg.connect(**params) as other:
        other.execute("SELECT * FROM trove_positioncounter FOR UPDATE")  # holds its lock
        with transaction.atomic(using="postgres"):
            with connections["postgres"].cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '100ms'")
            with pytest.raises(StorageUnavailable):
                trove.create_event("s", {})
            other.rollback()
            last = trove.create_event("s", {})
    assert [e.uuid for e in trove.read_feed()] == [first.uuid, last.uuid]
