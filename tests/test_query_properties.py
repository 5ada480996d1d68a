"""Property-based tests of EventQuery: every backend answers as the reference evaluator.

Hypothesis writes payloads (keys and strings with quotes, backslashes, dots, control
characters, letters beyond ASCII; numbers whole and fractional; booleans and ``null``;
nested objects and arrays) and queries over them (payload equality, often on a value an
event holds; ``where`` predicates of every operator, on values events hold or near
them; filters, sorts, paging). Each backend's answer must be the reference's
(:meth:`trove.query.EventQuery.apply`) over every event the test created. Hostile query
documents must be refused with :class:`~trove.exceptions.QueryError`, never another error.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trove
from trove.exceptions import QueryError
from trove.query import (
    OPERATORS,
    SORT_FIELDS,
    EventQuery,
    json_canonical,
    json_equal,
    payload_words,
)
from trove.testing.conformance import BackendFixture

#: Characters that JSON paths, SQL literals and JSON text each treat specially.
AWKWARD = "ab\"\\.\t\n\x01 $[]'é😀\u2028ßSİ1"
keys = st.sampled_from(['"', 'say "hi"', "\\", "é", "a.b", ""]) | st.text(AWKWARD, max_size=3)
strings = st.text(AWKWARD, max_size=4)
numbers = st.integers(-3, 3) | st.sampled_from([0.5, -2.0, 1.0, 3.0, 2.5, 1e15, -(2**53), 2**53])
scalars = st.none() | st.booleans() | numbers | strings
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
payloads = st.dictionaries(keys, values, max_size=4)
SCHEMAS = ("a", "b")
PRODUCERS = ("web", "api")


def paths(payload: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every dotted path EventQuery can name in ``payload``, with the value it reaches."""
    found = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key and "." not in key:
                found.append(((*prefix, key), value))
                found.extend(paths(value, (*prefix, key)))
    return found


@st.composite
def predicates(draw, known: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """A ``where`` entry of any operator, its path and value often one an event holds."""
    op = draw(st.sampled_from(sorted(OPERATORS)))
    if known and draw(st.integers(0, 3)):
        path, held = draw(st.sampled_from(known))
    else:
        path, held = tuple(draw(st.lists(keys, min_size=1, max_size=2))), draw(values)
    if op == "exists":
        value: Any = draw(st.booleans())
    elif op in ("gt", "gte", "lt", "lte"):
        orderable = isinstance(held, str | int | float) and not isinstance(held, bool)
        value = held if orderable and draw(st.booleans()) else draw(numbers | strings)
    elif op == "startsWith":
        value = held[: draw(st.integers(0, len(held)))] if isinstance(held, str) else draw(strings)
    elif op == "contains":
        value = draw(st.sampled_from(held)) if held and isinstance(held, list) else draw(values)
    elif op == "in":
        value = draw(st.lists(values, min_size=1, max_size=2))
        if draw(st.booleans()):
            value.append(held)
    else:
        value = held if draw(st.booleans()) else draw(values)
    return {"path": ".".join(path), "op": op, "value": value}


@st.composite
def queries(draw, events: list, schemas: list[str]) -> dict[str, Any]:
    """A query over ``events`` (of ``schemas``): equality often on a value one holds."""
    query: dict[str, Any] = {"schema": draw(st.lists(st.sampled_from(schemas), min_size=1))}
    known = [item for event in events for item in paths(event.payload)]
    entries = draw(st.integers(0, 2))
    payload = {}
    for _ in range(entries):
        if known and draw(st.booleans()):
            path, value = draw(st.sampled_from(known))
            if draw(st.integers(0, 3)) == 0:
                value = draw(values)
        else:
            path, value = tuple(draw(st.lists(keys, min_size=1, max_size=2))), draw(values)
        payload[".".join(path)] = value
    if payload:
        query["payload"] = payload
    where = [draw(predicates(known)) for _ in range(draw(st.integers(0, 2)))]
    if where:
        query["where"] = where
    if draw(st.integers(0, 3)) == 0:
        held = [word for event in events for word in payload_words(event.payload)]
        words = st.sampled_from(held) if held else strings
        query["text"] = " ".join(draw(st.lists(words | strings, min_size=1, max_size=2)))
    if draw(st.integers(0, 3)) == 0:
        query["producer"] = draw(st.sampled_from(PRODUCERS))
    sort_fields = st.sampled_from(SORT_FIELDS) | st.sampled_from(
        ["payload." + ".".join(path) for path, _ in known] or ["payload.n"]
    )
    sort = draw(st.lists(sort_fields, max_size=2))
    if sort:
        directions = st.sampled_from(["asc", "desc"])
        query["sort"] = [{"field": field, "direction": draw(directions)} for field in sort]
    if draw(st.booleans()):
        query["limit"] = draw(st.integers(0, 4))
        query["offset"] = draw(st.integers(0, 3))
    return query


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    # The backend is configured once per test, examples keep apart by schema; each
    # subclass runs the same methods on its own backend, with no example database.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)


class QueryProperties(BackendFixture):
    """What every event backend owes the reference evaluator, whatever the data."""

    @PROPERTY
    @given(data=st.data())
    def test_answers_are_the_references(self, data):
        # Each example has schemas of its own, and every query names some of them, so
        # that the events of earlier examples (kept in the database) never take part.
        example = uuid.uuid4().hex
        schemas = [f"{example}.{name}" for name in SCHEMAS]
        created = []
        for payload in data.draw(st.lists(payloads, min_size=1, max_size=4), label="payloads"):
            schema = data.draw(st.sampled_from(schemas))
            producer = data.draw(st.sampled_from(PRODUCERS))
            created.append(trove.create_event(schema, payload, producer=producer))
        for _ in range(3):
            query = data.draw(queries(created, schemas), label="query")
            try:
                parsed = EventQuery.parse(query)
            except QueryError:  # e.g. a path through a key holding '"': refused alike
                with pytest.raises(QueryError):
                    trove.query_events(query)
                continue
            expected = [str(e.uuid) for e in parsed.apply(created)]
            assert [str(e.uuid) for e in trove.query_events(query)] == expected, query
            assert trove.count_events(query) == len(parsed.without_paging().apply(created))

    @PROPERTY
    @given(
        key=st.builds(
            lambda a, b: a + '"' + b, st.text(AWKWARD, max_size=2), st.text(AWKWARD, max_size=2)
        )
    )
    def test_a_path_through_a_key_with_a_double_quote_is_refused_alike(self, key):
        with pytest.raises(QueryError):
            trove.query_events({"payload": {key: 1}})


class TestMemory(QueryProperties):
    def trove_storage(self, tmp_path):
        return {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}


class TestORMOnSQLite(QueryProperties):
    def trove_storage(self, tmp_path):
        return {"events": {"plugin": "storage-orm"}, "files": {"plugin": "storage-memory"}}


class TestORMOnPostgreSQL(QueryProperties):
    @pytest.fixture(autouse=True)
    def _needs_postgres(self, postgres_alias):
        """Requested before the backend fixture so a missing server skips (or fails) first."""

    def trove_storage(self, tmp_path):
        return {
            "events": {"plugin": "storage-orm", "options": {"database": "postgres"}},
            "files": {"plugin": "storage-memory"},
        }


class TestSQLiteFile(QueryProperties):
    def trove_storage(self, tmp_path):
        return {
            "events": {
                "plugin": "storage-sqlite",
                "options": {"path": django_settings.SQLITE_STORAGE_PATH},
            },
            "files": {"plugin": "storage-memory"},
        }


class TestJSONFile(QueryProperties):
    def trove_storage(self, tmp_path):
        return {
            "events": {
                "plugin": "storage-json-file",
                "options": {"directory": str(tmp_path / "events")},
            },
            "files": {"plugin": "storage-memory"},
        }


# The parser alone --------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["", "\x00", "\ud800", "1970-01-01T00:00:00Z", "asc", "payload.n"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
query_keys = st.sampled_from(
    ["schema", "producer", "timeRange", "links", "payload", "limit", "offset", "sort", "where"]
) | st.text(max_size=4)


def deep(depth: int, leaf: Any) -> Any:
    for index in range(depth):
        leaf = [leaf] if index % 2 else {"k": leaf}
    return leaf


hostile_documents = (
    st.dictionaries(query_keys, json_values, max_size=5)
    | json_values
    | st.builds(lambda key, depth: {key: deep(depth, 1)}, query_keys, st.integers(50, 3000))
    | st.builds(
        lambda key, size, item: {key: [item] * size},
        query_keys,
        st.integers(900, 5_000),
        json_values,
    )
    | st.builds(lambda size: {"payload": {f"k{i}": i for i in range(size)}}, st.integers(400, 3000))
)


@settings(max_examples=200, deadline=None, database=None)
@given(document=hostile_documents)
def test_the_parser_refuses_hostile_documents_with_a_query_error(document):
    try:
        query = EventQuery.parse(document)
    except QueryError as error:
        assert error.problems and all({"field", "message"} <= set(p) for p in error.problems)
    else:
        assert sum(query.terms().values()) <= 1000


@settings(max_examples=300, deadline=None, database=None)
@given(a=values, b=values)
def test_canonical_text_agrees_with_json_equality(a, b):
    """SQLite compares objects and arrays by json_canonical: it must be json_equal."""
    assert json_equal(a, b) == (json_canonical(a) == json_canonical(b))
    assert json_equal(a, a) and json_canonical(a) == json_canonical(_reordered(a))


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value
