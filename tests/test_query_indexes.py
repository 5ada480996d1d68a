"""The SQL Trove runs for a query is the SQL an index answers: SQLite's FTS5 word index for
``text`` (the ORM's table and the JSON directory's index), and on PostgreSQL a
``payloadIndexes`` expression index for ranges even in a prepared statement's generic
plan (as with ``server_side_binding`` and ``prepare_threshold``)."""

import re
import sqlite3

import pytest
from django.db import connections

import trove
from trove.query import EventQuery
from trove.storage import jsonfile_index
from trove.storage.handler import storages
from trove.storage.orm_reader import WORD_INDEX
from trove.testing.conformance import BackendFixture

MEMORY_FILES = {"plugin": "storage-memory"}


def dollar_params(sql: str) -> str:
    """``%s`` placeholders as PostgreSQL's ``$1``, ``$2``… of a ``PREPARE``."""
    count = iter(range(1, 10_000))
    return re.sub(r"%s", lambda _: f"${next(count)}", sql)


class TestSQLiteWordIndex(BackendFixture):
    def trove_storage(self, tmp_path):
        from django.conf import settings

        options = {"path": settings.SQLITE_STORAGE_PATH}
        return {"events": {"plugin": "storage-sqlite", "options": options}, "files": MEMORY_FILES}

    def plan(self, query: dict) -> str:
        sql, params = storages.events._reader().select(EventQuery.parse(query))
        with connections[storages.events.alias].cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            return "\n".join(str(row) for row in cursor.fetchall())

    def texts(self, text: str) -> list:
        return [event.payload for event in trove.query_events({"text": text})]

    def test_text_is_answered_by_the_word_index(self):
        trove.create_events([{"schema": "s", "payload": {"t": f"word{i} x"}} for i in range(50)])
        plan = self.plan({"text": "Word7 X"})
        assert f"{WORD_INDEX.table} VIRTUAL TABLE" in plan
        assert not re.search(r"SCAN trove_event\b(?!_words)", plan), plan  # no table scan
        assert self.texts("Word7 X") == [{"t": "word7 x"}]

    def test_the_index_follows_new_versions_and_whole_words(self):
        first = trove.create_event("s", {"t": "Straße ǅemal"})
        assert self.texts("STRASSE") == [{"t": "Straße ǅemal"}]
        assert self.texts("strass") == []
        trove.append_version(first.uuid, payload={"t": "other words"})
        assert self.texts("straße") == []
        assert self.texts("Other") == [{"t": "other words"}]

    def test_the_index_is_rebuilt_when_its_triggers_are_gone(self):
        """What Django's SQLite schema editor leaves after remaking ``trove_event``."""
        trove.create_event("s", {"t": "before"})
        with connections[storages.events.alias].cursor() as cursor:
            for trigger in WORD_INDEX.triggers():
                cursor.execute(f"DROP TRIGGER {trigger}")
            cursor.execute(
                f"INSERT INTO {WORD_INDEX.table}({WORD_INDEX.table}) VALUES ('delete-all')"
            )
        storages.events._repair_word_index()  # as initializing the storage does
        trove.create_event("s", {"t": "after"})
        assert self.texts("before") == [{"t": "before"}]
        assert self.texts("after") == [{"t": "after"}]


class TestJSONDirectoryWordIndex(BackendFixture):
    def trove_storage(self, tmp_path):
        options = {"directory": str(tmp_path / "events")}
        return {
            "events": {"plugin": "storage-json-file", "options": options},
            "files": MEMORY_FILES,
        }

    def test_text_is_answered_by_the_word_index(self, tmp_path):
        trove.create_events([{"schema": "s", "payload": {"t": f"word{i} x"}} for i in range(50)])
        found = trove.query_events({"text": "Word7 X"})
        assert [event.payload for event in found] == [{"t": "word7 x"}]
        where, params = jsonfile_index._where(EventQuery.parse({"text": "Word7 X"}))
        connection = sqlite3.connect(storages.events.index_path)
        try:
            plan = connection.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM events e {where}", params
            ).fetchall()
        finally:
            connection.close()
        assert f"{jsonfile_index.WORDS.table} VIRTUAL TABLE" in str(plan)
        assert not re.search(r"SCAN e\b", str(plan)), plan  # no table scan


class TestPostgreSQLGenericPlans(BackendFixture):
    @pytest.fixture(autouse=True)
    def _needs_postgres(self, postgres_alias):
        """Requested before the backend fixture so a missing server skips (or fails) first."""

    def trove_storage(self, tmp_path):
        options = {"database": "postgres", "payloadIndexes": ["amount", "c.id"]}
        return {"events": {"plugin": "storage-orm", "options": options}, "files": MEMORY_FILES}

    def test_a_range_uses_its_index_in_a_generic_plan(self):
        payloads = [{"amount": i, "c": {"id": i}} for i in range(500)]
        trove.create_events([{"schema": "s", "payload": payload} for payload in payloads])
        for path, key in (("amount", "'amount'::text"), ("c.id", "'id'::text")):
            query = {"where": [{"path": path, "op": "gte", "value": 490}]}
            sql, params = storages.events._reader().select(EventQuery.parse(query))
            with connections["postgres"].cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                cursor.execute(f"PREPARE trove_range AS {dollar_params(sql)}")
                marks = ", ".join(["%s"] * len(params))
                cursor.execute(f"EXPLAIN EXECUTE trove_range({marks})", params)
                plan = [line for (line,) in cursor.fetchall()]
                cursor.execute("DEALLOCATE trove_range")
            conditions = [line for line in plan if "Index Cond" in line]
            assert any(key in line and ">=" in line for line in conditions), plan
            assert len(trove.query_events(query)) == 10


class TestSQLiteWordIndexCatchUp(BackendFixture):
    """Inserted rows are indexed 256 at a time; until then they are candidates."""

    def trove_storage(self, tmp_path):
        from django.conf import settings

        options = {"path": settings.SQLITE_STORAGE_PATH}
        return {"events": {"plugin": "storage-sqlite", "options": options}, "files": MEMORY_FILES}

    def indexed(self, word: str) -> int:
        with connections[storages.events.alias].cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {WORD_INDEX.table} WHERE {WORD_INDEX.table} MATCH %s",
                [f'"{word}"'],
            )
            return cursor.fetchone()[0]

    def texts(self, text: str) -> list:
        return [event.payload for event in trove.query_events({"text": text})]

    def test_rows_are_found_before_and_after_they_are_indexed(self):
        every = WORD_INDEX.catch_up_every
        trove.create_event("s", {"t": "first"})
        assert self.indexed("first") == 0 and self.texts("first") == [{"t": "first"}]
        trove.create_events([{"schema": "s", "payload": {"t": "many"}}] * (every + 10))
        assert self.indexed("first") == 1 and 0 < self.indexed("many") < every + 10
        assert self.texts("first") == [{"t": "first"}]
        assert self.texts("many") == [{"t": "many"}] * (every + 10)

    def test_a_flushed_table_whose_ids_start_again_is_indexed_again(self):
        """What ``manage.py flush`` does: every row deleted (ids then start again from 1, the
        table having no ``AUTOINCREMENT`` since migration 0006)."""
        every = WORD_INDEX.catch_up_every
        trove.create_events([{"schema": "s", "payload": {"t": f"old {i}"}} for i in range(every)])
        with connections[storages.events.alias].cursor() as cursor:
            cursor.execute("DELETE FROM trove_event")
        trove.create_events([{"schema": "s", "payload": {"t": "fresh"}}] * 3)
        assert self.texts("fresh") == [{"t": "fresh"}] * 3
        assert self.texts("old") == []
