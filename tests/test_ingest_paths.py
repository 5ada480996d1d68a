"""The write paths of ``storage-sqlite``: a single event takes its position in its own
insert, a batch through the counter statement, and the two agree, with concurrent
writers in threads and a reader tailing the feed."""

import sqlite3
import threading
import time
import uuid

import pytest
from django.conf import settings
from django.db import connections

import trove
from trove.documents import Event
from trove.exceptions import VersionConflict
from trove.storage.handler import storages
from trove.testing.conformance import BackendFixture

MEMORY_FILES = {"plugin": "storage-memory"}


class TestSQLitePositions(BackendFixture):
    def trove_storage(self, tmp_path):
        options = {"path": settings.SQLITE_STORAGE_PATH}
        return {"events": {"plugin": "storage-sqlite", "options": options}, "files": MEMORY_FILES}

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
        other = sqlite3.connect(settings.SQLITE_STORAGE_PATH)
        try:
            found = other.execute(
                "SELECT position FROM trove_event WHERE event_id = ?", [event.uuid.hex]
            ).fetchall()
        finally:
            other.close()
        assert found == [(event.position,)]

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
        """Writers outside any transaction (one statement in ``BEGIN IMMEDIATE``) and in
        batches; a reader asking only for what is after the last position it saw still
        gets every version, once, in position order."""
        acknowledged: list[Event] = []
        seen: list[Event] = []
        failures: list[BaseException] = []
        done = threading.Event()

        def write(writer: int) -> None:
            try:
                for i in range(10):
                    acknowledged.append(trove.create_event("s", {"w": writer, "i": i}))
                    if i % 4 == 0:
                        items = [
                            {"schema": "s", "payload": {"w": writer, "b": j}} for j in range(5)
                        ]
                        acknowledged.extend(trove.create_events(items))
            except BaseException as error:  # reported by the main thread
                failures.append(error)
            finally:
                connections.close_all()

        def read() -> None:
            try:
                while True:
                    finished = done.is_set()
                    page = trove.read_feed(after=seen[-1].position if seen else 0)
                    seen.extend(page)
                    if not page:
                        time.sleep(0.001)
                    if finished:
                        return
            except BaseException as error:
                failures.append(error)
            finally:
                connections.close_all()

        reader = threading.Thread(target=read)
        writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        reader.start()
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(120)
        done.set()
        reader.join(120)
        assert not failures, failures
        positions = [e.position for e in seen]
        assert positions == sorted(set(positions))
        assert sorted(e.position for e in acknowledged) == positions
        assert {e.uuid for e in seen} == {e.uuid for e in acknowledged}
        assert len(acknowledged) == 4 * (10 + 3 * 5)
        assert all(isinstance(e.uuid, uuid.UUID) for e in seen)
