"""The file-storage conformance suite on ``storage-file-system``."""

from trove.testing.conformance import FileStorageConformance


class TestFileSystemFiles(FileStorageConformance):
    def trove_storage(self, tmp_path):
        return {
            "events": {"plugin": "storage-memory"},
            "files": {"plugin": "storage-file-system", "options": {"directory": str(tmp_path)}},
        }
