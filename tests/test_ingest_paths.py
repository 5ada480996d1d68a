"""The write paths of ``storage-sqlite``: a single event takes its position in its own
insert, a batch through the counter statement, and the two agree, with concurrent
writers in threads and a reader tailing the feed."""

import sqlite3
import uuid
from datetime import UTC, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as settings_
from django.db import connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trove
from tests.backends import MEMORY_FILES, OnPostgreSQL, OnSQLiteFile
from trove.documents import Event, EventId, FileRecord, Link, SchemaRef
from trove.exceptions import VersionConflict
from trove.models import Event as EventRow
from trove.query import payload_words
from trove.storage.handler import storages
from trove.storage.orm import ORMEventStorage
from trove.testing.conformance import BackendFixture, tail_while_writing


class TestSQLitePositions(OnSQLiteFile, BackendFixture):
    def test_singles_and_batches_take_the_positions_after_the_highest_stored(self):
        singles = [trove.create_event("s", {"i": i}) for i in range(3)]
        batch = trove.create_events([{"schema": "s", "payload": {"i": i}} for i in (3, 4)])
        last = trove.create_event("s", {"i": 5})
        with trove.transaction():
            inside = trove.create_event("s", {"i": 6})
            appended = trove.append_version(inside.uuid, {"i": 7})
        positions = [e.position for e in [*singles, *batch, last, inside, appended]]
        assert positions == list(range(positions[0], positions[0] + 8))
        assert [e.payload["i"] for e in trove.read_feed()] == list(range(8))

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_a_single_event_is_committed_when_the_call_returns(self):
        """Outside any transaction the insert is its own transaction: nothing stays open,
        and another connection to the file sees the event at once."""
        event = trove.create_event("s", {"i": 1})
        assert not connections[storages.events.alias].connection.in_transaction
        other = sqlite3.connect(settings_.SQLITE_STORAGE_PATH)
        try:
            found = other.execute(
                "SELECT position FROM trove_event WHERE event_id = ?", [event.uuid.hex]
            ).fetchall()
        finally:
            other.close()
        assert found == [(event.position,)]

    def test_a_batch_keeps_its_order_in_created_at_however_fast_it_is_stamped(self):
        created = trove.create_events([{"schema": "s", "payload": {"i": i}} for i in range(2000)])
        times = [e.created_at for e in created]
        assert times == sorted(set(times))
        found = trove.query_events({"limit": 2000})
        assert [e.payload["i"] for e in found] == list(range(2000))
        assert [e.created_at for e in found] == times

    def test_a_duplicate_id_writes_nothing_and_takes_no_position(self):
        first = trove.create_event("s", {"i": 1})
        with pytest.raises(VersionConflict):
            storages.events.save_event(first.with_position(None))
        second = trove.create_event("s", {"i": 2})
        assert second.position == first.position + 1
        assert [e.uuid for e in trove.read_feed()] == [first.uuid, second.uuid]

    def test_a_position_taken_by_a_rolled_back_write_is_never_seen(self):
        first = trove.create_event("s", {"i": 1})
        with pytest.raises(RuntimeError):
            with trove.transaction():
                trove.create_event("s", {"i": 2})
                raise RuntimeError("rolled back")
        last = trove.create_event("s", {"i": 3})
        assert [e.payload["i"] for e in trove.read_feed()] == [1, 3]
        assert last.position > first.position

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_concurrent_singles_and_batches_and_a_tailing_reader_agree(self):
        """Writers outside any transaction (one autocommitted ``INSERT``) and in
        batches; a reader asking only for what is after the last position it saw still
        gets every version, once, in position order."""
        acknowledged: list[Event] = []

        def write(writer: int) -> None:
            for i in range(10):
                acknowledged.append(trove.create_event("s", {"w": writer, "i": i}))
                if i % 4 == 0:
                    items = [{"schema": "s", "payload": {"w": writer, "b": j}} for j in range(5)]
                    acknowledged.extend(trove.create_events(items))

        seen = tail_while_writing(write)
        positions = [e.position for e in seen]
        assert positions == sorted(set(positions))
        assert sorted(e.position for e in acknowledged) == positions
        assert {e.uuid for e in seen} == {e.uuid for e in acknowledged}
        assert len(acknowledged) == 4 * (10 + 3 * 5)
        assert all(isinstance(e.uuid, uuid.UUID) for e in seen)


# The row an event is written as ------------------------------------------------------

keys = st.text(max_size=4)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(keys, values, max_size=4)
zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), ZoneInfo("Europe/Paris")])
files = st.builds(
    FileRecord,
    id=st.uuids(),
    content_type=st.sampled_from(["text/plain", "image/png"]),
    filename=st.none() | st.text(max_size=5),
    size=st.none() | st.integers(0, 10**9),
    hash=st.none() | st.text("0123456789abcdef", min_size=4, max_size=8),
    is_reference=st.booleans(),
    uri=st.none() | st.just("s3://bucket/key"),
)
links = st.builds(
    Link,
    type=st.text(min_size=1, max_size=5),
    target=st.builds(EventId, st.uuids(), st.none() | st.integers(1, 9)),
    metadata=objects,
)
events = st.builds(
    Event,
    id=st.builds(EventId, st.uuids(), st.integers(1, 2**31)),
    created_at=st.datetimes(timezones=zones),
    schema=st.builds(SchemaRef, st.text(min_size=1, max_size=5), st.none() | st.text(max_size=5)),
    payload=objects,
    producer=st.text(max_size=5),
    files=st.lists(files, max_size=2).map(tuple),
    links=st.lists(links, max_size=2).map(tuple),
    metadata=objects,
)


def django_row(event: Event, is_latest: bool, position, connection) -> list:
    """What Django's fields make of the event's model values (``get_db_prep_save``)."""
    model = {
        "event_id": event.uuid,
        "version": event.version,
        "is_latest": is_latest,
        "created_at": event.created_at,
        "producer": event.producer,
        "schema_id": event.schema.id,
        "schema_version": event.schema.version,
        "payload": event.payload,
        "metadata": event.metadata,
        "files": [f.to_dict() for f in event.files],
        "links": [link.to_dict() for link in event.links],
        "words": " ".join(payload_words(event.payload)),
        "position": position,
    }
    meta = EventRow._meta
    return [
        meta.get_field(name).get_db_prep_save(model[name], connection)
        for name in ORMEventStorage.EVENT_COLUMNS
    ]


def comparable(values: list) -> list:
    """psycopg's JSON wrappers compare by what they wrap."""
    return [(type(v).__name__, v.obj) if hasattr(v, "obj") else v for v in values]


class RowsAsDjangoWritesThem(BackendFixture):
    """The event row each write binds is the one Django's fields would bind."""

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(event=events, is_latest=st.booleans(), position=st.none() | st.integers(1, 2**40))
    def test_an_event_row_is_what_djangos_fields_make_of_it(self, event, is_latest, position):
        storage = storages.events
        connection = connections[storage.alias]
        row = storage._event_values(event, is_latest, position)
        assert comparable(row) == comparable(django_row(event, is_latest, position, connection))


class TestRowsOnSQLite(OnSQLiteFile, RowsAsDjangoWritesThem):
    pass


class TestRowsOnPostgreSQL(OnPostgreSQL, RowsAsDjangoWritesThem):
    pass


# Migration 0006 ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_sqlite_table_loses_autoincrement_and_keeps_its_rows_and_word_index(settings):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from trove.storage.orm_reader import WORD_INDEX

    executor = MigrationExecutor(connection)
    executor.migrate([("trove", None)])  # the tables as 0001 creates them, AUTOINCREMENT
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("trove", "0005_word_index")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'trove_event'")
        assert "AUTOINCREMENT" in cursor.fetchone()[0]
    settings.TROVE = {"storage": {"events": {"plugin": "storage-orm"}, "files": MEMORY_FILES}}
    try:
        every = WORD_INDEX.catch_up_every
        old = trove.create_events(
            [{"schema": "s", "payload": {"t": f"old{i}"}} for i in range(every + 5)]
        )
        storages.close_all()
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("trove"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'trove_event'")
            (create,) = cursor.fetchone()
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            triggers = {name for (name,) in cursor.fetchall()}
            cursor.execute("SELECT count(*) FROM sqlite_sequence WHERE name = 'trove_event'")
            (sequences,) = cursor.fetchone()
        assert "AUTOINCREMENT" not in create and sequences == 0
        assert triggers >= set(WORD_INDEX.triggers())
        new = trove.create_event("s", {"t": "new"})
        assert new.position == old[-1].position + 1
        assert [e.uuid for e in trove.read_feed()] == [e.uuid for e in [*old, new]]
        for word, expected in (("old3", old[3]), (f"old{every + 2}", old[every + 2]), ("new", new)):
            assert [e.uuid for e in trove.query_events({"text": word})] == [expected.uuid]
    finally:
        storages.close_all()


@pytest.mark.django_db(transaction=True)
def test_migrating_back_from_0006_catches_the_position_counter_up(settings):
    """The release before 0006 numbers single writes from the counter, which single
    writes since then leave behind: back at 0005 its next position must be a fresh one."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from trove.models import PositionCounter

    settings.TROVE = {"storage": {"events": {"plugin": "storage-orm"}, "files": MEMORY_FILES}}
    try:
        last = [trove.create_event("s", {"i": i}) for i in range(3)][-1]
        counted = PositionCounter.objects.filter(pk=1).values_list("last", flat=True).first()
        assert (counted or 0) < last.position  # what an older release would number from
        storages.close_all()
        executor = MigrationExecutor(connection)
        executor.migrate([("trove", "0005_word_index")])
        assert PositionCounter.objects.get(pk=1).last == last.position
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("trove"))
        storages.close_all()
