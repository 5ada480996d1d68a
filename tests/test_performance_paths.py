"""The fast paths behave like the slow ones: batches stay atomic, indexes serve the SQL
Trove writes, and cached schemas follow every change to the registry."""

import sys
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.utils import timezone

import trove
from tests.backends import MEMORY_FILES, OnPostgreSQL, OnSQLiteFile
from trove import schemas, signals
from trove.documents import Event, EventId, SchemaRef
from trove.exceptions import InvalidEvent, SchemaValidationError, VersionConflict
from trove.models import EventSchema
from trove.query import EventQuery
from trove.storage.handler import storages
from trove.storage.orm import COPY_FROM, ORMEventStorage, SQLiteEventStorage
from trove.testing.conformance import BackendFixture


def new_events(count: int, **payload) -> list[Event]:
    now = timezone.now()
    return [
        Event(EventId(uuid.uuid4(), 1), now, SchemaRef("s", "1"), {"i": i, **payload})
        for i in range(count)
    ]


def plan(alias: str, query: dict, *, ordered: bool = True) -> str:
    """The database's plan for the SQL Trove runs for ``query`` (unordered: to count it)."""
    storage = storages.events
    parsed = EventQuery.parse(query)
    rows = storage.matching_rows(parsed).order_by()
    if ordered:
        rows = rows.order_by(*storage._ordering(parsed))
    sql, params = rows.query.get_compiler(alias).as_sql()
    connection = connections[alias]
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(explain + sql, params)
        return "\n".join(str(row) for row in cursor.fetchall())


class BatchBehaviour(BackendFixture):
    """Batches on one ORM backend; subclasses name the database."""

    def test_a_batch_with_a_duplicate_stores_none_of_it(self):
        first = trove.create_event("s", {"i": "kept"})
        for size in (2, COPY_FROM + 1):  # a multi-row INSERT, and COPY on PostgreSQL
            batch = new_events(size)
            batch[-1] = first.with_changes(payload={"dup": True})
            with pytest.raises(VersionConflict):
                storages.events.save_events(batch)
            assert [e.payload for e in trove.query_events({})] == [{"i": "kept"}]

    def test_a_duplicate_single_event_leaves_the_transaction_usable(self):
        event = trove.create_event("s", {"i": 1})
        with transaction.atomic(using=storages.events.alias):
            with pytest.raises(VersionConflict):
                storages.events.save_event(event.with_changes(payload={"dup": True}))
            trove.create_event("s", {"i": 2})
        assert [e.payload["i"] for e in trove.query_events({})] == [1, 2]

    def test_a_large_batch_is_stored_in_order_with_links(self):
        parent = trove.create_event("s", {"i": "parent"})
        link = {"type": "parent", "targetEvent": str(parent.uuid)}
        items = [{"schema": "s", "payload": {"i": i}, "links": [link]} for i in range(150)]
        created = trove.create_events(items)
        found = trove.query_events({"links": [{"targetEvent": str(parent.uuid)}]})
        assert [e.payload["i"] for e in found] == list(range(150))
        assert trove.get_event(created[-1].uuid).links == created[-1].links

    def test_an_item_may_link_to_an_earlier_item_of_its_batch(self):
        first, second = uuid.uuid4(), uuid.uuid4()
        link = {"type": "after", "targetEvent": str(first)}
        created = trove.create_events(
            [
                {"schema": "s", "payload": {}, "event_id": first},
                {"schema": "s", "payload": {}, "event_id": second, "links": [link]},
            ]
        )
        assert trove.get_backlinks(first) == [created[1]]

    def test_an_item_may_not_link_to_a_later_item(self):
        later = uuid.uuid4()
        with pytest.raises(InvalidEvent, match="does not exist"):
            trove.create_events(
                [
                    {"schema": "s", "payload": {}, "links": [{"type": "x", "targetEvent": later}]},
                    {"schema": "s", "payload": {}, "event_id": later},
                ]
            )
        assert trove.count_events() == 0

    def test_one_id_twice_in_a_batch_is_a_conflict(self):
        same = uuid.uuid4()
        with pytest.raises(VersionConflict):
            trove.create_events([{"schema": "s", "payload": {}, "event_id": same}] * 2)
        assert trove.count_events() == 0

    def test_every_event_of_a_batch_goes_through_every_hook_in_order(self):
        calls = []

        def record(sender, event, signal, **kwargs):
            calls.append((signal, event.payload["i"]))

        hooks = [
            signals.event_validating,
            signals.event_validated,
            signals.event_received,
            signals.event_storing,
            signals.event_stored,
        ]
        for hook in hooks:
            hook.connect(record)
        try:
            trove.create_events([{"schema": "s", "payload": {"i": i}} for i in range(2)])
        finally:
            for hook in hooks:
                hook.disconnect(record)
        for i in range(2):
            assert [signal for signal, index in calls if index == i] == hooks


class TestBatchesOnSQLite(BatchBehaviour):
    def trove_storage(self, tmp_path):
        return {"events": {"plugin": "storage-orm"}, "files": MEMORY_FILES}


class TestBatchesOnPostgreSQL(BatchBehaviour):
    @pytest.fixture(autouse=True)
    def _needs_postgres(self, postgres_alias):
        """Requested before the backend fixture so a missing server skips (or fails) first."""

    def trove_storage(self, tmp_path):
        return {
            "events": {"plugin": "storage-orm", "options": {"database": "postgres"}},
            "files": MEMORY_FILES,
        }

    def test_payload_equality_is_answered_by_the_gin_index(self):
        with connections["postgres"].cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'trove_latest_payload'"
            )
            [(definition,)] = cursor.fetchall()
            assert "gin" in definition and "jsonb_path_ops" in definition
        trove.create_events([{"schema": "s", "payload": {"a": {"b": i}}} for i in range(500)])
        with connections["postgres"].cursor() as cursor:
            # On a small table the planner may rightly prefer a scan; what matters here is
            # that the SQL Trove writes *can* use the index, so take scans off the table.
            cursor.execute("SET LOCAL enable_seqscan = off")
        assert "trove_latest_payload" in plan("postgres", {"payload": {"a.b": 3}})
        assert [e.payload for e in trove.query_events({"payload": {"a.b": 3}})] == [{"a": {"b": 3}}]

    def test_text_is_answered_by_the_words_index(self):
        trove.create_events([{"schema": "s", "payload": {"t": f"word{i} x"}} for i in range(500)])
        with connections["postgres"].cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        assert "trove_latest_words" in plan("postgres", {"text": "Word7 X"})
        assert [e.payload for e in trove.query_events({"text": "Word7 X"})] == [{"t": "word7 x"}]


class OutsideTransactions(BackendFixture):
    """A lone event outside any transaction is one statement; nothing else changes."""

    pytestmark = [pytest.mark.django_db(databases="__all__", transaction=True)]

    def test_a_lone_event_and_its_duplicate(self):
        event = trove.create_event("s", {"i": 1})
        with pytest.raises(VersionConflict):
            trove.create_event("s", {"i": 2}, event_id=event.uuid)
        with pytest.raises(VersionConflict):
            storages.events.save_event(event.with_changes(payload={"dup": True}))
        assert trove.get_versions(event.uuid) == [event]

    def test_links_are_saved_with_their_event_or_not_at_all(self):
        parent = trove.create_event("s", {"i": "parent"})
        link = {"type": "parent", "targetEvent": str(parent.uuid)}
        child = trove.create_event("s", {"i": "child"}, links=[link])
        with pytest.raises(VersionConflict):
            storages.events.save_event(child.with_changes(payload={"dup": True}))
        assert trove.get_backlinks(parent.uuid) == [child]

    def test_a_storing_receiver_writes_with_the_event(self):
        def also_write(sender, event, **kwargs):
            if event.payload.get("i") == "main":
                trove.create_event("s", {"i": "side"})
                raise RuntimeError("refused after writing")

        signals.event_storing.connect(also_write)
        try:
            with pytest.raises(RuntimeError):
                trove.create_event("s", {"i": "main"})
        finally:
            signals.event_storing.disconnect(also_write)
        assert trove.count_events() == 0


class TestOutsideTransactionsOnSQLite(OnSQLiteFile, OutsideTransactions):
    pass


class TestOutsideTransactionsOnPostgreSQL(OnPostgreSQL, OutsideTransactions):
    pass


class TestPostgreSQLPayloadIndexes(BackendFixture):
    @pytest.fixture(autouse=True)
    def _needs_postgres(self, postgres_alias):
        """Requested before the backend fixture so a missing server skips (or fails) first."""

    def trove_storage(self, tmp_path):
        options = {"database": "postgres", "payloadIndexes": ["amount", "c.id"]}
        return {"events": {"plugin": "storage-orm", "options": options}, "files": MEMORY_FILES}

    def test_a_range_on_a_configured_path_is_answered_by_its_index(self):
        payloads = [{"amount": i, "c": {"id": i}} for i in range(500)]
        trove.create_events([{"schema": "s", "payload": payload} for payload in payloads])
        with connections["postgres"].cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        for path, key in (("amount", "'amount'::text"), ("c.id", "'id'::text")):
            where = {"where": [{"path": path, "op": "gte", "value": 490}]}
            conditions = [
                line
                for line in plan("postgres", where, ordered=False).splitlines()
                if "Index Cond" in line
            ]
            assert any(key in line and ">=" in line for line in conditions), conditions
            assert len(trove.query_events(where)) == 10


class TestSQLitePayloadIndexes(BackendFixture):
    def trove_storage(self, tmp_path):
        from django.conf import settings

        options = {"path": settings.SQLITE_STORAGE_PATH, "payloadIndexes": ["order", "c.id"]}
        return {"events": {"plugin": "storage-sqlite", "options": options}, "files": MEMORY_FILES}

    def test_a_configured_path_is_answered_by_its_index(self):
        trove.create_events([{"schema": "s", "payload": {"c": {"id": i}}} for i in range(5)])
        alias = storages.events.alias
        assert "USING INDEX trove_payload_" in plan(alias, {"payload": {"c.id": 3}})
        assert "USING INDEX trove_payload_" in plan(alias, {"payload": {"order": "x"}})
        assert "USING INDEX trove_payload_" not in plan(alias, {"payload": {"other": 1}})
        for op in ("gt", "gte", "lt", "lte", "in"):
            value = [3, 4] if op == "in" else 3
            where = {"where": [{"path": "c.id", "op": op, "value": value}]}
            assert "USING INDEX trove_payload_" in plan(alias, where, ordered=False), op
        assert [e.payload for e in trove.query_events({"payload": {"c.id": 3}})] == [
            {"c": {"id": 3}}
        ]

    def test_keys_that_are_not_identifiers_are_still_found(self):
        odd = {"it's": {"a b": 1}, "1st": True, "é": None}
        trove.create_event("s", odd)
        for key, value in [("it's.a b", 1), ("1st", True), ("é", None)]:
            assert [e.payload for e in trove.query_events({"payload": {key: value}})] == [odd]

    @pytest.mark.parametrize("paths", ["order", ["a-b"], ["a..b"], [1]])
    def test_bad_paths_are_a_configuration_error(self, paths):
        with pytest.raises(ImproperlyConfigured, match="payloadIndexes"):
            SQLiteEventStorage(path="/tmp/x.db", payloadIndexes=paths)
        with pytest.raises(ImproperlyConfigured, match="payloadIndexes"):
            ORMEventStorage(payloadIndexes=paths)


@pytest.mark.django_db
class TestSchemaCache:
    """Validators are cached per process, yet every change to the registry counts at once."""

    @pytest.fixture(autouse=True)
    def _memory(self, settings):
        settings.TROVE = {
            "storage": {"events": {"plugin": "storage-memory"}, "files": MEMORY_FILES}
        }
        yield
        storages.close_all()

    def test_a_version_registered_elsewhere_applies_to_the_next_event(self):
        trove.register_schema("c", "1", {"type": "object"})
        assert trove.create_event("c", {}).schema == SchemaRef("c", "1")
        # As another process would: straight into the table, no signal reaches this one.
        EventSchema.objects.create(schema_id="c", version="2", schema={"required": ["n"]})
        with pytest.raises(SchemaValidationError):
            trove.create_event("c", {})
        assert trove.create_event("c", {"n": 1}).schema == SchemaRef("c", "2")

    def test_an_edited_schema_applies_to_the_next_event(self):
        row = trove.register_schema("c", "1", {"type": "object"})
        trove.create_event("c", {})
        row.schema = {"type": "object", "required": ["n"]}
        row.save()  # as the admin does
        with pytest.raises(SchemaValidationError) as error:
            trove.create_event("c", {})
        assert [p["validator"] for p in error.value.problems] == ["required"]

    def test_without_jsonschema_rs_every_violation_is_still_listed(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "jsonschema_rs", None)  # not installed
        monkeypatch.setattr(schemas, "_registry", {})
        trove.register_schema("pair", "1", {"required": ["a", "b"]})
        assert schemas.compiled_schema(SchemaRef("pair")).fast is None
        assert trove.create_event("pair", {"a": 1, "b": 2}).schema == SchemaRef("pair", "1")
        with pytest.raises(SchemaValidationError) as error:
            trove.create_event("pair", {})
        assert [p["message"] for p in error.value.problems] == [
            "'a' is a required property",
            "'b' is a required property",
        ]

    def test_what_jsonschema_accepts_stays_accepted(self):
        schema = {"properties": {"home": {"format": "uri"}, "code": {"pattern": "^\\d+$"}}}
        trove.register_schema("code", "1", schema)
        # jsonschema checks "uri" only with rfc3987 installed, jsonschema-rs always: valid.
        assert trove.create_event("code", {"home": "not a URI"}).payload == {"home": "not a URI"}
        with pytest.raises(SchemaValidationError) as error:
            trove.create_event("code", {"home": "not a URI", "code": "x"})
        assert [p["field"] for p in error.value.problems] == ["payload.code"]
