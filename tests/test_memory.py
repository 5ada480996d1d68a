"""The conformance suite on ``storage-memory`` (all three roles), the reference backend."""

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
