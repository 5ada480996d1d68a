"""The conformance suite on ``storage-json-file``, files on the local file system."""

from trove.testing.conformance import EventStatisticsConformance, EventStorageConformance


class TestJSONFile(EventStorageConformance, EventStatisticsConformance):
    def trove_storage(self, tmp_path):
        return {
            "events": {
                "plugin": "storage-json-file",
                "options": {"directory": str(tmp_path / "events")},
            },
            "files": {
                "plugin": "storage-file-system",
                "options": {"directory": str(tmp_path / "files")},
            },
        }
