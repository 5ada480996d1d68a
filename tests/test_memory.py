"""The conformance suite on ``storage-memory`` (all three roles), the reference backend."""

from trove.testing.conformance import EventStorageConformance, FileStorageConformance

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
