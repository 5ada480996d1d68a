"""``storage-orm`` and ``storage-sqlite`` read on the driver's cursor, past Django's cursor
wrapper: the same events as through Django's cursor, the query still in what watches
Django's cursor (its query log, execute wrappers), the same errors; and each decoder of a
stored value gives what the function it stands for gives."""

import functools
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from django.db.backends.utils import CursorWrapper
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

import trove
from tests.backends import OnPostgreSQL, OnSQLiteFile
from trove.exceptions import StorageUnavailable
from trove.storage.handler import storages
from trove.storage.orm import ORMEventStorage
from trove.storage.orm_reader import Reader, _json_text, _stored_uuid
from trove.testing.conformance import BackendFixture

QUERIES = [
    {},
    {"schema": "order", "sort": [{"field": "createdAt", "direction": "desc"}], "limit": 3},
    {"producer": ["p1", "p2"], "timeRange": {"start": "2026-01-01T00:00:00Z"}},
    {"payload": {"n": 3}},
    {"payload": {"customer.id": "c1"}, "offset": 1},
    {"where": [{"path": "n", "op": "gte", "value": 2}, {"path": "n", "op": "lt", "value": 5}]},
    {"text": "seven"},
    {"sort": [{"field": "payload.n", "direction": "desc"}], "limit": 4, "offset": 2},
]


class ReadPaths(BackendFixture):
    @pytest.fixture
    def events(self):
        first = trove.create_event("order", {"n": 0, "customer": {"id": "c0"}})
        for n in range(1, 8):
            trove.create_event(
                "order" if n % 2 else "other",
                {"n": n, "customer": {"id": f"c{n % 2}"}, "words": "seven" if n == 7 else ""},
                producer=f"p{n % 3}",
                links=[{"type": "parent", "targetEvent": str(first.uuid)}] if n % 3 else [],
                metadata={"m": n} if n % 2 else {},
            )
        trove.append_version(first.uuid, payload={"n": 9, "customer": {"id": "c1"}})
        return first

    @property
    def connection(self):
        return connections[storages.events.alias]

    def answers(self, first) -> list:
        return [
            *(trove.query_events(query) for query in QUERIES),
            trove.query_events({"links": [{"targetEvent": str(first.uuid)}]}),
            trove.get_event(first.uuid),
            trove.get_event(first.uuid, 1),
            trove.get_versions(first.uuid),
            storages.events.read_feed(after=2, limit=3),
            storages.events.count_events(trove.EventQuery.parse({"schema": "order"})),
        ]

    def test_the_driver_cursor_answers_as_djangos_cursor(self, events):
        fast = self.answers(events)
        self.connection.force_debug_cursor = True
        try:
            assert self.answers(events) == fast
        finally:
            self.connection.force_debug_cursor = False

    def test_the_query_log_sees_every_read(self, events):
        with CaptureQueriesContext(self.connection) as captured:
            trove.query_events({"payload": {"n": 3}})
            trove.get_event(events.uuid)
        assert len(captured.captured_queries) == 2

    def test_an_execute_wrapper_sees_every_read(self, events):
        seen = []

        def wrapper(execute, sql, params, many, context):
            seen.append(sql)
            return execute(sql, params, many, context)

        with self.connection.execute_wrapper(wrapper):
            found = trove.query_events({"payload": {"n": 3}})
        assert len(seen) == 1
        assert [event.payload["n"] for event in found] == [3]

    def test_a_patched_cursor_wrapper_sees_every_read(self, events, monkeypatch):
        """As an APM integration patches it (Sentry's, with ``functools.wraps``)."""
        seen = []
        original = CursorWrapper.execute

        @functools.wraps(original)
        def execute(cursor, sql, params=None):
            seen.append(sql)
            return original(cursor, sql, params)

        monkeypatch.setattr(CursorWrapper, "execute", execute)
        found = trove.query_events({"payload": {"n": 3}})
        trove.get_event(events.uuid)
        assert len(seen) == 2
        assert [event.payload["n"] for event in found] == [3]

    def test_a_read_in_a_broken_transaction_fails_as_through_djangos_cursor(self, events):
        from django.db import transaction

        with transaction.atomic(using=storages.events.alias):
            self.connection.set_rollback(True)
            with pytest.raises(StorageUnavailable) as fast:
                trove.query_events({})
            self.connection.force_debug_cursor = True
            try:
                with pytest.raises(StorageUnavailable) as logged:
                    trove.query_events({})
            finally:
                self.connection.force_debug_cursor = False
        assert type(fast.value.__cause__) is type(logged.value.__cause__)

    @pytest.mark.parametrize(
        "query",
        [
            {"payload": {"k": "X"}},
            {"payload": {"k": 1}},
            {"payload": {"k": None}},
            {"payload": {"k": True}},
            {"payload": {"a.b": 1}},
            {"where": [{"path": "k", "op": "ne", "value": "X"}]},
            {"where": [{"path": "k", "op": "in", "value": [1, "X"]}]},
        ],
    )
    def test_scalar_equality_never_matches_an_array_holding_the_scalar(self, query):
        """The rule of ``trove.query``: PostgreSQL's containment lets an array hold a
        scalar only at the top level, which a payload path never is."""
        held = [["X"], "X", [1], 1, 1.0, [None], None, [True], True, {"k": "X"}, [["X"]], "x"]
        for value in held:
            trove.create_event("s", {"k": value})
        for value in ([{"b": 1}], {"b": 1}, {"b": [1]}, [1]):
            trove.create_event("s", {"a": value})
        everything = trove.query_events({})
        expected = trove.EventQuery.parse(query).apply(everything)
        assert [e.payload for e in trove.query_events(query)] == [e.payload for e in expected]
        assert expected


class TestSQLiteFile(OnSQLiteFile, ReadPaths):
    pass


class TestORMOnPostgreSQL(OnPostgreSQL, ReadPaths):
    pass


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def outcome(function, value):
    """The value (its ``repr``, so that NaN equals NaN) or the error of ``function``."""
    try:
        return repr(function(value))
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        return type(error), str(error)


@given(
    JSON,
    st.booleans(),
    st.sampled_from([None, 0, 2]),
    st.sampled_from(["", " ", "\n", "\ufeff"]),
    st.sampled_from(["", " ", "\t\n", "x", "}"]),
)
def test_json_text_decodes_as_json_loads(value, ascii_only, indent, before, after):
    text = before + json.dumps(value, ensure_ascii=ascii_only, indent=indent) + after
    assert outcome(_json_text, text) == outcome(json.loads, text)


@given(st.text(max_size=40) | st.binary(max_size=10) | st.none())
def test_json_text_of_anything_is_that_of_json_loads(text):
    assert outcome(_json_text, text) == outcome(json.loads, text)


@given(st.uuids(), st.sampled_from([str, lambda u: u.hex, lambda u: u.hex.upper()]))
def test_stored_uuid_is_the_uuid_of_its_text(value, spell):
    parsed = _stored_uuid(spell(value))
    assert parsed == value
    assert (parsed.int, parsed.is_safe, str(parsed)) == (value.int, value.is_safe, str(value))


@given(st.text(alphabet="0123456789abcdefABCDEF-+_ {}xyz", min_size=30, max_size=38))
def test_stored_uuid_of_other_text_is_that_of_the_constructor(text):
    assert outcome(_stored_uuid, text) == outcome(uuid.UUID, text)


@pytest.mark.django_db
@given(st.datetimes(timezones=st.just(UTC)))
def test_the_utc_text_converter_is_djangos(value):
    connection = connections["default"]
    if connection.vendor != "sqlite":
        pytest.skip("the converter of SQLite's stored text")
    django_instant, utc_text = Reader(ORMEventStorage(), connection).instants
    text = str(value.replace(tzinfo=None))
    assert utc_text(text) == django_instant(text) == value
    assert utc_text(text).tzinfo is django_instant(text).tzinfo


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("alias", ["default", "postgres"])
@given(
    st.datetimes(
        timezones=st.sampled_from([UTC, ZoneInfo("Europe/Paris"), timezone(timedelta(0))])
    ),
    st.uuids(),
)
def test_query_values_are_adapted_as_by_the_fields(alias, value, identifier):
    if alias not in connections:
        pytest.skip("no PostgreSQL server")
    connection, meta = connections[alias], ORMEventStorage().models.Event._meta
    table = Reader(ORMEventStorage(), connection).compiler.table
    created_at, event_id = meta.get_field("created_at"), meta.get_field("event_id")
    assert table.instant(value) == created_at.get_db_prep_value(value, connection)
    assert table.uuid(identifier) == event_id.get_db_prep_value(identifier, connection)
    assert table.uuid(str(identifier)) == event_id.get_db_prep_value(str(identifier), connection)


def test_times_are_converted_by_django_outside_the_fast_case(settings):
    settings.USE_TZ = False
    connection = connections["default"]
    if connection.vendor != "sqlite":
        pytest.skip("the converter of SQLite's stored text")
    reader = Reader(ORMEventStorage(), connection)
    assert reader.instant() is reader.instants[0]
    assert reader.instant()("2026-01-01 01:00:00") == datetime(2026, 1, 1, 1)  # naive


QUERY_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()
    | st.text(alphabet=st.characters(exclude_categories=()), max_size=5)
    | st.sampled_from(["\x00", "\ud800", "é"])
)


def nested(value, depth: int, key: str):
    for level in range(depth):
        value = {key: value} if level % 2 else [value]
    return value


@given(
    st.dictionaries(
        st.sampled_from(["payload", "where", "schema", "x"]),
        st.tuples(
            st.recursive(
                QUERY_SCALARS,
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3)
                ),
                max_leaves=8,
            ),
            st.integers(0, 70),
        ).map(lambda pair: nested(pair[0], pair[1], "k")),
        max_size=3,
    )
)
def test_a_plain_query_is_one_the_full_checks_find_nothing_in(data):
    from trove.conf import trove_settings
    from trove.jsonvalues import json_problems
    from trove.query import _plain_query, _too_deep

    deepest = trove_settings.max_json_depth
    clean = not _too_deep(data) and not json_problems(data, "", query=True)
    assert _plain_query(data, deepest) == clean


@given(st.sampled_from([(1,), {1: "a"}, {"a": (1, 2)}, {"a": {1.5: 2}}, {"a": {b"k": 1}}]))
def test_anything_but_plain_json_is_left_to_the_full_checks(value):
    from trove.query import _plain_query

    assert not _plain_query({"payload": value}, 64)


@given(
    st.fixed_dictionaries(
        {
            "schemas": st.lists(st.text(max_size=3), max_size=2).map(tuple),
            "start": st.none() | st.datetimes(timezones=st.just(UTC)),
            "limit": st.none() | st.integers(0, 10),
            "offset": st.integers(0, 10),
        }
    )
)
def test_a_parsed_query_is_the_one_its_constructor_builds(fields):
    from trove.query import EventQuery, _new_query

    every = {**vars(EventQuery()), **fields}
    built, constructed = _new_query(every), EventQuery(**every)
    assert built == constructed
    assert vars(built) == vars(constructed)
    assert hash(built) == hash(constructed)


def test_terms_count_only_the_predicates_of_payload_and_where():
    from trove.query import EventQuery, Predicate

    query = EventQuery(
        where=(
            Predicate(("a", "b"), "eq", {"x": [1, 2]}, "payload"),
            Predicate(("a",), "in", [1, "2"], "where"),
            Predicate(("a",), "eq", 1, "elsewhere"),
        )
    )
    assert (query.terms()["payload"], query.terms()["where"]) == (2 + 2, 1 + 2)
