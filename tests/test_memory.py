"""The conformance suite on ``storage-memory`` (all three roles), the reference backend,
and its transactions under threads."""

import hashlib
import io
import threading
import time
from typing import Any

import pytest
from django.db import connections

import trove
from trove.storage.handler import storages
from trove.testing.conformance import (
    EventStorageConformance,
    FileStorageConformance,
    LinkStorageConformance,
)

MEMORY = {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}


class TestMemoryEvents(EventStorageConformance):
    def trove_storage(self, tmp_path):
        return MEMORY


class TestMemoryEventsWithSeparateLinkStorage(EventStorageConformance):
    """Links in their own storage instead of ``useEventStorage``."""

    def trove_storage(self, tmp_path):
        return {**MEMORY, "links": {"plugin": "storage-memory"}}


class TestMemoryFiles(FileStorageConformance):
    def trove_storage(self, tmp_path):
        return MEMORY


class TestMemoryLinks(LinkStorageConformance):
    def trove_storage(self, tmp_path):
        return {**MEMORY, "links": {"plugin": "storage-memory"}}


def test_event_storages_keeping_links_in_their_events_only_read_them():
    """They cannot save a link on its own, so they do not claim to (no NotImplementedError)."""
    from trove.storage.base import LinkReader, LinkStorage
    from trove.storage.jsonfile import JSONFileEventStorage
    from trove.storage.memory import MemoryEventStorage

    for cls in (MemoryEventStorage, JSONFileEventStorage):
        assert issubclass(cls, LinkReader) and not issubclass(cls, LinkStorage)
        assert cls.stores_links


@pytest.fixture
def memory_store(settings):
    storages.close_all()
    settings.TROVE = {"storage": {**MEMORY, "links": {"plugin": "storage-memory"}}}
    yield
    storages.close_all()


@pytest.mark.django_db(transaction=True)
def test_other_threads_wait_for_an_open_transaction_and_keep_their_writes(memory_store):
    """A transaction in one thread neither shows its versions to other threads before it
    commits nor, when it rolls back, takes their acknowledged writes with it."""
    kept = trove.create_event("s", {"i": "before"})
    written, finish = threading.Event(), threading.Event()
    results: dict[str, Any] = {}
    failures: list[BaseException] = []

    def in_thread(name: str, work) -> threading.Thread:
        def run() -> None:
            try:
                results[name] = work()
            except BaseException as error:  # reported by the main thread
                failures.append(error)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def rolled_back() -> None:
        with pytest.raises(RuntimeError), trove.transaction():
            trove.create_event("s", {"i": "uncommitted"})
            trove.append_version(kept.uuid, {"i": "uncommitted too"})
            written.set()
            finish.wait(10)
            raise RuntimeError("abort")

    first = in_thread("rolled back", rolled_back)
    assert written.wait(10)
    others = [
        in_thread("writer", lambda: trove.create_event("s", {"i": "other thread"})),
        in_thread("feed", lambda: [e.payload["i"] for e in trove.read_feed()]),
        in_thread("latest", lambda: trove.get_event(kept.uuid).payload["i"]),
    ]
    time.sleep(0.3)  # lets them reach the store while the transaction is open
    finish.set()
    for thread in (first, *others):
        thread.join(10)
    assert not failures, failures
    assert "uncommitted" not in results["feed"] and results["latest"] == "before"
    feed = trove.read_feed()
    assert [e.payload["i"] for e in feed] == ["before", "other thread"]
    assert feed[1] == results["writer"] and feed[1].position > kept.position


@pytest.mark.parametrize("plugin", ["storage-memory", "storage-file-system"])
def test_a_declared_hash_in_capitals_is_the_same_hash(plugin, settings, tmp_path):
    """Hex digits are read in either case, by the reference backend as by the stores on
    disk: a client that sends ``sha256:AB12…`` has its file, stored under the usual name."""
    storages.close_all()
    files = {"plugin": plugin, "options": {"directory": str(tmp_path)}}
    if plugin == "storage-memory":
        files = {"plugin": plugin}
    settings.TROVE = {"storage": {**MEMORY, "files": files}}
    data = b"declared in capitals"
    declared = "sha256:" + hashlib.sha256(data).hexdigest().upper()
    try:
        stored = storages.files.save_file(
            io.BytesIO(data), content_type="text/plain", expected_hash=declared
        )
    finally:
        storages.close_all()
    assert stored.record.hash == declared.lower()


@pytest.mark.django_db(transaction=True)
def test_a_failed_commit_ends_the_other_stores_transactions(memory_store, monkeypatch):
    """When one store's commit fails, the stores not yet committed roll back: the event
    written inside is gone and storage-memory's lock is free for other threads."""
    links = storages.links
    assert links is not storages.events

    def refuse() -> None:
        links.rollback_transaction()
        raise RuntimeError("links store went away")

    monkeypatch.setattr(links, "commit_transaction", refuse)
    with pytest.raises(RuntimeError, match="went away"), trove.transaction():
        trove.create_event("s", {"i": "lost"})
    monkeypatch.undo()
    seen: list[list[Any]] = []
    reader = threading.Thread(target=lambda: seen.append(trove.read_feed()))
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "another thread still waits for the failed transaction"
    assert seen == [[]]
