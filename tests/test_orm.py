"""The conformance suite on the ORM backends: ``storage-orm`` on SQLite and PostgreSQL,
and ``storage-sqlite`` on a dedicated file. Files go to a local directory."""

import pytest
from django.conf import settings

from trove.testing.conformance import (
    EventStatisticsConformance,
    EventStorageConformance,
    LinkStorageConformance,
)


def files_in(tmp_path):
    return {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "files")}}


class TestORMOnSQLite(EventStorageConformance, EventStatisticsConformance):
    concurrent_writers = False  # the in-memory test database; TestSQLiteFile has a file

    def trove_storage(self, tmp_path):
        return {"events": {"plugin": "storage-orm"}, "files": files_in(tmp_path)}


class TestORMOnPostgreSQL(EventStorageConformance, EventStatisticsConformance):
    @pytest.fixture(autouse=True)
    def _needs_postgres(self, postgres_alias):
        """Requested before the backend fixture so a missing server skips (or fails) first."""

    def trove_storage(self, tmp_path):
        return {
            "events": {"plugin": "storage-orm", "options": {"database": "postgres"}},
            "files": files_in(tmp_path),
        }


class TestSQLiteFile(EventStorageConformance, EventStatisticsConformance):
    def trove_storage(self, tmp_path):
        path = settings.SQLITE_STORAGE_PATH
        return {
            "events": {"plugin": "storage-sqlite", "options": {"path": path}},
            "files": files_in(tmp_path),
        }


class TestORMAsLinkStorage(LinkStorageConformance):
    """``storage-orm`` keeping only the links of events stored in memory."""

    def trove_storage(self, tmp_path):
        return {
            "events": {"plugin": "storage-memory"},
            "links": {"plugin": "storage-orm"},
            "files": files_in(tmp_path),
        }


class TestMemoryEventsWithORMLinks(EventStorageConformance):
    """The whole event contract with links in ``storage-orm`` beside memory events."""

    def trove_storage(self, tmp_path):
        return {
            "events": {"plugin": "storage-memory"},
            "links": {"plugin": "storage-orm"},
            "files": files_in(tmp_path),
        }


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_event_committed_waits_for_the_callers_own_atomic_block(settings, tmp_path):
    """On the ORM the signal follows Django's commit, whoever opened the transaction."""
    from django.db import transaction

    import trove
    from trove import signals
    from trove.storage.handler import storages

    settings.TROVE = {"storage": {"events": {"plugin": "storage-orm"}, "files": files_in(tmp_path)}}
    received = []

    def receiver(sender, event, **kwargs):
        received.append(event.payload)

    signals.event_committed.connect(receiver)
    try:
        with transaction.atomic():
            trove.create_event("s", {"i": 1})
            assert received == []
        assert received == [{"i": 1}]
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                trove.create_event("s", {"i": 2})
                raise RuntimeError("the caller rolls back")
        assert received == [{"i": 1}]
        assert [e.payload for e in trove.read_feed()] == [{"i": 1}]
    finally:
        signals.event_committed.disconnect(receiver)
        storages.close_all()
