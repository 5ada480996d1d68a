"""Event backends for the tests of one storage's own paths, beside the conformance suite:
``storage-sqlite`` on the file the test settings declare, and ``storage-orm`` on the
PostgreSQL test database, both with files in memory. Put first among a test class's
bases, before its :class:`~trove.testing.conformance.BackendFixture` subclass."""

import pytest
from django.conf import settings

MEMORY_FILES = {"plugin": "storage-memory"}


class OnSQLiteFile:
    def trove_storage(self, tmp_path):
        options = {"path": settings.SQLITE_STORAGE_PATH}
        return {"events": {"plugin": "storage-sqlite", "options": options}, "files": MEMORY_FILES}


class OnPostgreSQL:
    @pytest.fixture(autouse=True)
    def _needs_postgres(self, postgres_alias):
        """Requested before the backend fixture so a missing server skips (or fails) first."""

    def trove_storage(self, tmp_path):
        options = {"database": "postgres"}
        return {"events": {"plugin": "storage-orm", "options": options}, "files": MEMORY_FILES}
