"""The conformance suite on the ORM backends: ``storage-orm`` on SQLite and PostgreSQL,
and ``storage-sqlite`` on a dedicated file. Files go to a local directory."""

import pytest
from django.conf import settings

from trove.testing.conformance import EventStorageConformance


def files_in(tmp_path):
    return {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "files")}}


class TestORMOnSQLite(EventStorageConformance):
    concurrent_writers = False  # the in-memory test database; TestSQLiteFile has a file

    def trove_storage(self, tmp_path):
        return {"events": {"plugin": "storage-orm"}, "files": files_in(tmp_path)}


class TestORMOnPostgreSQL(EventStorageConformance):
    @pytest.fixture(autouse=True)
    def _needs_postgres(self, postgres_alias):
        """Requested before the backend fixture so a missing server skips (or fails) first."""

    def trove_storage(self, tmp_path):
        return {
            "events": {"plugin": "storage-orm", "options": {"database": "postgres"}},
            "files": files_in(tmp_path),
        }


class TestSQLiteFile(EventStorageConformance):
    def trove_storage(self, tmp_path):
        path = settings.SQLITE_STORAGE_PATH
        return {
            "events": {"plugin": "storage-sqlite", "options": {"path": path}},
            "files": files_in(tmp_path),
        }
