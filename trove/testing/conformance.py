"""The conformance suite every storage backend passes, unchanged.

It ships with Trove so that a third-party plugin can prove itself the same way. Combine
the mixins with a class that says how to configure the backend::

    from trove.testing.conformance import EventStorageConformance

    class TestMyBackend(EventStorageConformance):
        def trove_storage(self, tmp_path):
            return {"events": {"plugin": "my.Backend", "options": {...}},
                    "files": {"plugin": "storage-memory"}}

``EventStorageConformance`` covers events, versions, EventQuery (every row of SPEC §3),
links, lifecycle signals and transactions through the public Python API;
``FileStorageConformance`` covers a file storage directly. Every query result is also
compared with the pure-Python reference evaluator of ``trove.query``.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import trove
from trove import signals
from trove.documents import Event, EventId, Link, SchemaRef, format_instant
from trove.exceptions import (
    FileIntegrityError,
    FileTooLarge,
    InvalidEvent,
    NotFound,
    QueryError,
    SchemaNotFound,
    SchemaValidationError,
    VersionConflict,
)
from trove.query import LINK_FILTER_TERMS, MAX_SORT_KEYS, EventQuery
from trove.storage.base import EventStatistics, LinkStorage
from trove.storage.handler import storages

__all__ = ["BackendFixture", "EventStorageConformance", "FileStorageConformance"]

#: Keys that JSON path syntaxes disagree on: quotes, backslashes, dots, brackets, control
#: characters, letters beyond ASCII, the empty key.
AWKWARD_KEYS = ['say "hi"', '"', "back\\slash", "a.b", "[0]", "tab\tnew\nline", "é", "😀", "", "$"]


def settings_value(key: str) -> Any:
    from trove.conf import trove_settings

    return getattr(trove_settings, key)


def nest(depth: int) -> Any:
    """An object ``depth`` levels deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


class BackendFixture:
    """Configures ``TROVE["storage"]`` from :meth:`trove_storage` around every test."""

    pytestmark = [pytest.mark.django_db(databases="__all__")]

    def trove_storage(self, tmp_path) -> dict[str, Any]:
        raise NotImplementedError("Return the TROVE['storage'] dict of the backend under test.")

    def trove_settings(self) -> dict[str, Any]:
        """Other TROVE settings for the backend under test."""
        return {}

    #: False for a database that cannot take writers on several threads at all (SQLite's
    #: shared-cache in-memory test database answers "table is locked"); the tests with
    #: concurrent writers then skip, saying so.
    concurrent_writers: bool = True

    @pytest.fixture(autouse=True)
    def _trove_backend(self, request, settings, tmp_path):
        settings.TROVE = {**self.trove_settings(), "storage": self.trove_storage(tmp_path)}
        yield
        storages.close_all()


class SignalRecorder:
    """Connects to every lifecycle signal and records (hook name, event) in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._receivers = []
        for name, signal in signals.HOOKS.items():

            def receiver(sender, _name=name, **kwargs):
                self.calls.append((_name, kwargs.get("event")))

            signal.connect(receiver, weak=False)
            self._receivers.append((signal, receiver))

    def disconnect(self) -> None:
        for signal, receiver in self._receivers:
            signal.disconnect(receiver)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _raise(**kwargs):
    raise RuntimeError("receiver refused")


class EventStorageConformance(BackendFixture):
    """Events, versions, queries, links, hooks and transactions on one event backend."""

    # Helpers ----------------------------------------------------------------------

    @pytest.fixture
    def note_schema(self):
        return trove.register_schema(
            "note.created",
            "1.0",
            {
                "type": "object",
                "required": ["text"],
                "properties": {"text": {"type": "string"}, "n": {"type": "number"}},
            },
        )

    @pytest.fixture
    def dataset(self) -> list[Event]:
        """Events chosen to make every query rule observable."""
        specs: list[tuple[str, str, dict[str, Any]]] = [
            ("order.placed", "web", {"n": 1, "tag": "a", "author": {"name": "Jane"}}),
            ("order.placed", "web", {"n": "1", "tag": "b", "author": {"name": "Joe"}}),
            ("order.placed", "api", {"n": True, "tag": "a", "author": {"name": "Jane", "x": 1}}),
            ("order.shipped", "api", {"n": None, "tag": "c"}),
            ("order.shipped", "batch", {"tag": "a", "author": "Jane"}),
            ("order.placed", "batch", {"n": 10, "tag": "b", "price": 2.5}),
            ("order.placed", "web", {"n": 2.0, "tag": "é", "author": {"name": "Zoë"}}),
            ("note.created", "web", {"n": -3, "tag": "B", "list": [1, 2, {"k": "v"}]}),
            ("note.created", "api", {"n": 10, "tag": "a", "obj": {"b": 2, "a": 1}}),
            ("note.created", "core", {"n": {"deep": 1}, "tag": ""}),
            ("note.created", "web", {"n": [1], "tag": "a"}),
            ("note.created", "web", {"n": 1.5, "tag": "aa", "author": {"name": None}}),
        ]
        return [trove.create_event(s, p, producer=prod) for s, prod, p in specs]

    def ids(self, events) -> list[str]:
        return [str(e.uuid) for e in events]

    def reference(self, query: dict[str, Any]) -> list[Event]:
        """What the reference evaluator answers over every latest version stored."""
        everything = trove.query_events({})
        return EventQuery.parse(query).apply(everything)

    def assert_query(
        self, query: dict[str, Any], expected: list[Event] | None = None
    ) -> list[Event]:
        """The backend's answer equals the reference's (and ``expected``, when given)."""
        result = trove.query_events(query)
        assert self.ids(result) == self.ids(self.reference(query)), query
        if expected is not None:
            assert self.ids(result) == self.ids(expected), query
        assert trove.count_events(query) == len(
            self.reference({**query, "limit": None, "offset": 0})
        )
        return result

    # Creating and reading ---------------------------------------------------------

    def test_the_health_probes_pass_empty_and_full(self):
        storages["events"].check()
        storages["links"].check()
        trove.create_event("note.created", {"text": "x"})
        storages["events"].check()
        storages["links"].check()

    def test_create_returns_the_stored_document(self, note_schema):
        event = trove.create_event("note.created", {"text": "hi"}, metadata={"ip": "127.0.0.1"})
        assert event.version == 1
        assert event.producer == "core"
        assert event.schema == SchemaRef("note.created", "1.0")
        assert event.created_at.utcoffset() == timedelta(0)
        document = event.to_dict()
        assert document["id"] == {"id": str(event.uuid), "version": 1}
        assert document["createdAt"].endswith("Z") and len(document["createdAt"]) == 27
        assert trove.get_event(event.uuid) == event
        assert trove.get_event(str(event.uuid), 1) == event

    def test_payload_and_metadata_are_stored_exactly(self):
        payload = {
            "text": 'Grüße, 世界 \u2028 "quoted"',
            "big": 2**53 + 1,
            "float": 0.1,
            "neg": -7,
            "empty": "",
            "null": None,
            "bools": [True, False],
            "nested": {"a.b": {"c": []}, "z": {}},
            "unknown_extra_key": "kept",
        }
        metadata = {"ip": "::1", "tags": ["x"], "n": 1}
        event = trove.create_event("anything", payload, metadata=metadata, producer="p")
        stored = trove.get_event(event.uuid)
        assert stored.payload == payload
        assert stored.metadata == metadata
        assert type(stored.payload["big"]) is int and type(stored.payload["float"]) is float
        assert stored.to_dict() == event.to_dict()

    def test_validation_keeps_the_payload_as_sent(self, note_schema):
        event = trove.create_event("note.created", {"text": "x", "n": 1, "extra": {"a": "1"}})
        assert trove.get_event(event.uuid).payload == {"text": "x", "n": 1, "extra": {"a": "1"}}

    def test_client_chosen_uuid(self):
        chosen = uuid.uuid4()
        event = trove.create_event("s", {}, event_id=str(chosen))
        assert event.uuid == chosen
        with pytest.raises(VersionConflict):
            trove.create_event("s", {}, event_id=chosen)
        with pytest.raises(InvalidEvent):
            trove.create_event("s", {}, event_id="not-a-uuid")

    def test_missing_events_are_not_found(self):
        with pytest.raises(NotFound):
            trove.get_event(uuid.uuid4())
        event = trove.create_event("s", {})
        with pytest.raises(NotFound):
            trove.get_event(event.uuid, 2)
        assert storages.events.get_event(uuid.uuid4()) is None

    def test_bad_shapes_are_rejected_with_every_problem(self):
        with pytest.raises(InvalidEvent) as caught:
            trove.create_event("s", ["not", "an", "object"], metadata="x", producer="")
        fields = {p["field"] for p in caught.value.problems}
        assert fields == {"payload", "metadata", "producer"}
        assert trove.count_events() == 0

    @pytest.mark.parametrize(
        "kwargs, field",
        [
            ({"payload": {"text": "nul\u0000"}}, "payload.text"),
            ({"payload": {"n": float("inf")}}, "payload.n"),
            ({"payload": {}, "metadata": {"s": "\ud800"}}, "metadata.s"),
            ({"payload": {}, "producer": "p" * 201}, "producer"),
            ({"payload": {}, "schema": "s" * 201}, "schema"),
        ],
    )
    def test_values_no_backend_can_keep_are_refused_alike(self, kwargs, field):
        with pytest.raises(InvalidEvent) as caught:
            trove.create_event(**{"schema": "s", **kwargs})
        assert field in [p["field"] for p in caught.value.problems]
        assert trove.count_events() == 0

    # Versions ---------------------------------------------------------------------

    def test_append_version_keeps_old_versions(self, note_schema):
        first = trove.create_event(
            "note.created", {"text": "v1"}, producer="web", metadata={"m": 1}
        )
        second = trove.append_version(first.uuid, {"text": "v2"})
        assert second.version == 2 and second.uuid == first.uuid
        assert second.producer == "web" and second.metadata == {"m": 1}
        assert second.created_at >= first.created_at
        assert trove.get_event(first.uuid).payload == {"text": "v2"}
        assert trove.get_event(first.uuid, 1) == first
        assert [v.version for v in trove.get_versions(first.uuid)] == [1, 2]
        third = trove.append_version(first.uuid, {"text": "v3"}, producer="api", expected_version=2)
        assert third.version == 3 and third.producer == "api"

    def test_append_version_conflicts(self):
        event = trove.create_event("s", {"a": 1})
        trove.append_version(event.uuid, {"a": 2})
        with pytest.raises(VersionConflict):
            trove.append_version(event.uuid, {"a": 3}, expected_version=1)
        with pytest.raises(VersionConflict):
            storages.events.save_event(event.with_changes(payload={"dup": True}))
        assert [v.payload for v in trove.get_versions(event.uuid)] == [{"a": 1}, {"a": 2}]
        with pytest.raises(NotFound):
            trove.append_version(uuid.uuid4(), {})

    def test_queries_see_only_the_latest_version(self):
        event = trove.create_event("s", {"state": "draft"})
        trove.append_version(event.uuid, {"state": "final"})
        assert trove.query_events({"payload": {"state": "draft"}}) == []
        result = trove.query_events({"payload": {"state": "final"}})
        assert [(e.uuid, e.version) for e in result] == [(event.uuid, 2)]
        assert trove.count_events({}) == 1

    # EventQuery, row by row -------------------------------------------------------

    def test_schema_filter(self, dataset):
        placed = [e for e in dataset if e.schema.id == "order.placed"]
        self.assert_query({"schema": "order.placed"}, placed)
        self.assert_query({"schema": ["order.placed", "order.shipped"]})
        self.assert_query({"schema": []}, dataset)
        self.assert_query({"schema": "nope"}, [])

    def test_producer_filter(self, dataset):
        self.assert_query({"producer": "api"}, [e for e in dataset if e.producer == "api"])
        self.assert_query({"producer": ["api", "batch"]})

    def test_time_range_is_inclusive(self, dataset):
        third, seventh = dataset[2], dataset[6]
        start, end = format_instant(third.created_at), format_instant(seventh.created_at)
        result = self.assert_query({"timeRange": {"start": start, "end": end}})
        assert self.ids(result)[0] == str(third.uuid)
        assert self.ids(result)[-1] == str(seventh.uuid)
        self.assert_query({"timeRange": {"start": start}})
        self.assert_query({"timeRange": {"end": end}})
        offset = third.created_at.astimezone().isoformat()
        self.assert_query({"timeRange": {"start": offset, "end": offset}}, [third])

    def test_payload_equality_is_type_exact(self, dataset):
        self.assert_query({"payload": {"n": 1}}, [dataset[0]])
        self.assert_query({"payload": {"n": "1"}}, [dataset[1]])
        self.assert_query({"payload": {"n": True}}, [dataset[2]])
        self.assert_query({"payload": {"n": None}}, [dataset[3]])
        self.assert_query({"payload": {"n": 2}}, [dataset[6]])
        self.assert_query({"payload": {"n": 10.0}}, [dataset[5], dataset[8]])
        self.assert_query({"payload": {"n": 1.5}}, [dataset[11]])
        self.assert_query({"payload": {"n": False}}, [])
        self.assert_query({"payload": {"tag": "a", "n": 1}}, [dataset[0]])
        self.assert_query({"payload": {"tag": ""}}, [dataset[9]])

    def test_payload_dotted_paths_reach_nested_objects(self, dataset):
        self.assert_query({"payload": {"author.name": "Jane"}}, [dataset[0], dataset[2]])
        self.assert_query({"payload": {"author.name": None}}, [dataset[11]])
        self.assert_query({"payload": {"author": "Jane"}}, [dataset[4]])
        self.assert_query({"payload": {"n.deep": 1}}, [dataset[9]])
        self.assert_query({"payload": {"list.0": 1}}, [])

    def test_payload_equality_of_objects_and_arrays(self, dataset):
        self.assert_query({"payload": {"obj": {"a": 1, "b": 2}}}, [dataset[8]])
        self.assert_query({"payload": {"obj": {"a": 1}}}, [])
        self.assert_query({"payload": {"list": [1, 2, {"k": "v"}]}}, [dataset[7]])
        self.assert_query({"payload": {"list": [1, 2]}}, [])
        self.assert_query({"payload": {"n": [1]}}, [dataset[10]])
        self.assert_query({"payload": {"n": 1}}, [dataset[0]])  # [1] is not 1
        self.assert_query({"payload": {"author": {"name": "Jane"}}}, [dataset[0]])

    def test_equality_on_an_object_compares_it_whole_whatever_its_keys(self):
        value = {key: index for index, key in enumerate(AWKWARD_KEYS)}
        nested = {'outer "q"': [value, {"é": {"\\": None}}], "n": 1.0, "t": True}
        target = trove.create_event("s", {"o": value, "deep": nested})
        other = trove.create_event("s", {"o": {**value, '"': 0}, "deep": {**nested, "n": 2}})
        self.assert_query({"payload": {"o": dict(reversed(value.items()))}}, [target])
        self.assert_query({"payload": {"deep": {**nested, "n": 1}}}, [target])
        self.assert_query({"payload": {"o": {**value, '"': 0}}}, [other])
        self.assert_query({"payload": {"o": {**value, 'say "hi"': "0"}}}, [])
        self.assert_query({"payload": {"deep": {**nested, "t": 1}}}, [])
        self.assert_query({"payload": {"o": {k: v for k, v in value.items() if k != '"'}}}, [])
        self.assert_query({"payload": {"deep": {**nested, 'outer "q"': [value]}}}, [])

    def test_payload_paths_reach_keys_of_any_character_but_a_double_quote(self):
        keys = [key for key in AWKWARD_KEYS if key and '"' not in key and "." not in key]
        event = trove.create_event("s", {key: {key: index} for index, key in enumerate(keys)})
        trove.create_event("s", {key: {key: -1} for key in keys})
        for index, key in enumerate(keys):
            self.assert_query({"payload": {f"{key}.{key}": index}}, [event])
            self.assert_query({"sort": [{"field": f"payload.{key}.{key}", "direction": "desc"}]})
        with pytest.raises(QueryError) as caught:
            trove.query_events({"payload": {'say "hi"': 0}})
        assert caught.value.problems[0]["field"] == 'payload.say "hi"'

    def test_queries_within_the_limits_are_answered(self, dataset, settings):
        """Every kind of term, up to ``max_query_terms`` and ``max_json_depth``, is a query
        the backend answers: no database limit is reached before Trove's own."""
        terms, depth = settings_value("max_query_terms"), settings_value("max_json_depth")
        deep: Any = "Jane"
        for _ in range(depth - 2):  # the query and its payload object are two levels
            deep = {"é": deep}
        leaves = terms - 1  # the path "o" is one term
        queries: list[dict[str, Any]] = [
            {"payload": {f"k{i}": i for i in range(terms // 2)}},
            {"payload": {f"k é.{i}": i for i in range(terms // 3)}},
            {"payload": {"o": {f'k "{i}"': [i] for i in range(leaves)}}},
            {"payload": {"o": list(range(leaves))}},
            {"payload": {"o": deep}},
            {"payload": {".".join(["é"] * depth): 1}},
            {"links": [{"type": f"t{i}"} for i in range(terms // LINK_FILTER_TERMS)]},
            {"schema": [f"s{i}" for i in range(terms)]},
            {"producer": [f"p{i}" for i in range(terms - 1)], "schema": "order.placed"},
            {"sort": [{"field": f"payload.k{i}"} for i in range(MAX_SORT_KEYS)]},
        ]
        for query in queries:
            self.assert_query(query)

    @pytest.mark.parametrize(
        "query, field",
        [
            ({"schema": ["s"] * 1001}, "schema"),
            ({"payload": {"o": list(range(1000))}}, "payload"),
            ({"payload": {f"k{i}": i for i in range(501)}}, "payload"),
            ({"links": [{}] * 600, "producer": ["p"] * 401}, "links"),
            ({"sort": [{"field": "id"}] * (MAX_SORT_KEYS + 1)}, "sort"),
            ({"payload": {"o": nest(63)}}, "payload"),
            ({"payload": {".".join(["a"] * 65): 1}}, "payload." + ".".join(["a"] * 65)),
        ],
    )
    def test_queries_beyond_the_limits_are_bad_queries(self, query, field):
        with pytest.raises(QueryError) as caught:
            trove.query_events(query)
        assert field in [p["field"] for p in caught.value.problems]

    @pytest.mark.parametrize(
        "query",
        [
            {"schema": [f"s{i}" for i in range(260_000)]},
            {"payload": {"o": nest(200)}},
        ],
        ids=["parameters", "depth"],
    )
    def test_a_query_past_the_database_limits_is_a_bad_query(
        self, query, dataset, settings, tmp_path
    ):
        """With Trove's limits lifted, a query too large for the database is the client's
        fault (400), never an outage (503), and the message names no path or database."""
        settings.TROVE = {**settings.TROVE, "max_query_terms": 10**6, "max_json_depth": 10**4}
        try:
            self.assert_query(query)
        except QueryError as error:
            assert "database" in error.message
            for secret in (str(tmp_path), "trove_sqlite_", "default", "SELECT", "sqlite"):
                assert secret not in error.message

    def test_links_filter(self, dataset):
        parent, other = dataset[0], dataset[1]
        child = trove.create_event(
            "c", {"k": 1}, links=[{"type": "parent", "targetEvent": str(parent.uuid)}]
        )
        pinned = trove.create_event(
            "c",
            {"k": 2},
            links=[
                {"type": "parent", "targetEvent": {"id": str(parent.uuid), "version": 1}},
                {"type": "see", "targetEvent": str(other.uuid)},
            ],
        )
        self.assert_query({"links": [{"type": "parent"}]}, [child, pinned])
        self.assert_query({"links": [{"targetEvent": {"id": str(other.uuid)}}]}, [pinned])
        self.assert_query(
            {"links": [{"type": "parent", "targetEvent": {"id": str(parent.uuid), "version": 1}}]},
            [pinned],
        )
        self.assert_query({"links": [{"type": "parent"}, {"type": "see"}]}, [pinned])
        self.assert_query({"links": [{"type": "see", "targetEvent": str(parent.uuid)}]}, [])
        self.assert_query({"links": [{}]}, [child, pinned])
        self.assert_query({"links": []})

    def test_limit_and_offset(self, dataset):
        self.assert_query({"limit": 3}, dataset[:3])
        self.assert_query({"limit": 3, "offset": 10}, dataset[10:])
        self.assert_query({"offset": 11}, dataset[11:])
        self.assert_query({"limit": 0}, [])
        self.assert_query({"offset": 100}, [])

    @pytest.mark.parametrize("field", ["createdAt", "producer", "schema", "id", "version"])
    @pytest.mark.parametrize("direction", ["asc", "desc"])
    def test_sort_by_top_level_fields(self, dataset, field, direction):
        trove.append_version(dataset[3].uuid, {"n": None, "tag": "c2"})
        self.assert_query({"sort": [{"field": field, "direction": direction}]})

    @pytest.mark.parametrize("direction", ["asc", "desc"])
    def test_sort_by_payload_orders_numbers_numerically_and_missing_last(self, dataset, direction):
        result = self.assert_query({"sort": [{"field": "payload.n", "direction": direction}]})
        values = [e.payload.get("n", "MISSING") for e in result]
        numbers = [v for v in values if type(v) in (int, float)]
        assert numbers == sorted(numbers, reverse=direction == "desc")
        assert values[-1] == "MISSING"
        self.assert_query({"sort": [{"field": "payload.tag", "direction": direction}]})
        self.assert_query({"sort": [{"field": "payload.author.name", "direction": direction}]})
        self.assert_query(
            {
                "schema": "order.placed",
                "sort": [
                    {"field": "payload.price", "direction": direction},
                    {"field": "producer", "direction": "desc"},
                ],
            }
        )

    def test_sort_strings_by_code_point(self, dataset):
        result = self.assert_query({"sort": [{"field": "payload.tag"}], "payload": {}})
        tags = [e.payload["tag"] for e in result]
        assert tags == sorted(tags)  # "" < "B" < "a" < "aa" < "b" < "c" < "é"

    def test_ties_end_on_created_at_then_id_so_pages_never_overlap(self, dataset):
        query = {"sort": [{"field": "payload.tag"}]}
        everything = self.assert_query(query)
        pages = []
        for offset in range(0, len(everything), 5):
            pages.extend(self.assert_query({**query, "limit": 5, "offset": offset}))
        assert self.ids(pages) == self.ids(everything)
        assert len(set(self.ids(pages))) == len(dataset)

    # where: one test per operator --------------------------------------------------

    def where(self, dataset, path: str, op: str, value: Any, expected: list[int]) -> None:
        """``where`` path op value selects the dataset's events at ``expected``."""
        query = {"where": [{"path": path, "op": op, "value": value}]}
        self.assert_query(query, [dataset[i] for i in expected])

    def test_where_eq_is_payload_equality(self, dataset):
        self.where(dataset, "n", "eq", 1, [0])
        self.where(dataset, "n", "eq", "1", [1])
        self.where(dataset, "n", "eq", 10.0, [5, 8])
        self.where(dataset, "obj", "eq", {"b": 2, "a": 1}, [8])
        self.where(dataset, "author.name", "eq", None, [11])

    def test_where_ne_holds_on_other_values_and_on_a_missing_path(self, dataset):
        self.where(dataset, "n", "ne", 1, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        self.where(dataset, "tag", "ne", "a", [1, 3, 5, 6, 7, 9, 11])
        self.where(dataset, "author.name", "ne", "Jane", [1, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        self.where(dataset, "n", "ne", [1], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11])

    def test_where_ranges_compare_numbers_numerically_and_never_across_types(self, dataset):
        self.where(dataset, "n", "gt", 1, [5, 6, 8, 11])
        self.where(dataset, "n", "gte", 1, [0, 5, 6, 8, 11])  # not true, not "1"
        self.where(dataset, "n", "lt", 1, [7])
        self.where(dataset, "n", "lte", 1.0, [0, 7])
        self.where(dataset, "n", "gte", 2, [5, 6, 8])
        self.where(dataset, "n", "lt", -3, [])
        self.where(dataset, "price", "gt", 2, [5])

    def test_where_ranges_compare_strings_by_code_point(self, dataset):
        self.where(dataset, "n", "gt", "0", [1])
        self.where(dataset, "tag", "lt", "b", [0, 2, 4, 7, 8, 9, 10, 11])
        self.where(dataset, "tag", "gte", "b", [1, 3, 5, 6])
        self.where(dataset, "tag", "gt", "z", [6])  # é is past z
        self.where(dataset, "author.name", "gte", "Joe", [1, 6])

    def test_where_in_is_equality_to_one_of_the_values(self, dataset):
        self.where(dataset, "n", "in", [1, "1", None], [0, 1, 3])
        self.where(dataset, "n", "in", [[1], {"deep": 1}], [9, 10])
        self.where(dataset, "tag", "in", ["c", "é", "zz"], [3, 6])
        self.where(dataset, "n", "in", [False], [])

    def test_where_exists_tells_a_missing_path_from_null(self, dataset):
        self.where(dataset, "n", "exists", True, [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11])
        self.where(dataset, "n", "exists", False, [4])
        self.where(dataset, "author.name", "exists", True, [0, 1, 2, 6, 11])
        self.where(dataset, "author.name", "exists", False, [3, 4, 5, 7, 8, 9, 10])
        self.where(dataset, "list.0", "exists", True, [])  # paths never enter arrays

    def test_where_contains_finds_an_element_of_an_array(self, dataset):
        self.where(dataset, "list", "contains", 2, [7])
        self.where(dataset, "list", "contains", 2.0, [7])
        self.where(dataset, "list", "contains", "2", [])
        self.where(dataset, "list", "contains", {"k": "v"}, [7])
        self.where(dataset, "n", "contains", 1, [10])
        self.where(dataset, "n", "contains", True, [])
        self.where(dataset, "obj", "contains", 1, [])  # an object is not an array
        self.where(dataset, "tag", "contains", "a", [])

    def test_where_contains_compares_objects_and_arrays_whole(self):
        nested = trove.create_event("s", {"m": [[1, 2], {"a": 1, "b": 2}, None]})
        trove.create_event("s", {"m": [1, 2, "a"]})
        self.assert_query({"where": [{"path": "m", "op": "contains", "value": [1, 2]}]}, [nested])
        self.assert_query({"where": [{"path": "m", "op": "contains", "value": [1]}]}, [])
        self.assert_query({"where": [{"path": "m", "op": "contains", "value": {"a": 1}}]}, [])
        self.assert_query(
            {"where": [{"path": "m", "op": "contains", "value": {"b": 2, "a": 1}}]}, [nested]
        )
        self.assert_query({"where": [{"path": "m", "op": "contains", "value": None}]}, [nested])

    def test_where_starts_with_is_exact_and_has_no_wildcards(self, dataset):
        self.where(dataset, "tag", "startsWith", "a", [0, 2, 4, 8, 10, 11])
        self.where(dataset, "tag", "startsWith", "A", [])
        self.where(dataset, "tag", "startsWith", "", list(range(12)))
        self.where(dataset, "author", "startsWith", "J", [4])
        self.where(dataset, "n", "startsWith", "1", [1])
        sale = trove.create_event("s", {"s": "50%_off", "e": "Zoë 😀 x"})
        trove.create_event("s", {"s": "50x-off", "e": "zoë 😀 x"})
        for prefix in ("50%", "50%_", "50%_off"):
            self.assert_query(
                {"where": [{"path": "s", "op": "startsWith", "value": prefix}]}, [sale]
            )
        self.assert_query({"where": [{"path": "s", "op": "startsWith", "value": "50_"}]}, [])
        self.assert_query({"where": [{"path": "e", "op": "startsWith", "value": "Zoë 😀"}]}, [sale])

    def test_where_predicates_all_hold_with_payload_and_filters(self, dataset):
        self.assert_query(
            {
                "schema": ["order.placed", "note.created"],
                "payload": {"tag": "a"},
                "where": [
                    {"path": "n", "op": "gte", "value": 1},
                    {"path": "n", "op": "ne", "value": 10},
                ],
            },
            [dataset[0]],
        )

    @pytest.mark.parametrize(
        "where, field",
        [
            ({"path": "n", "op": "gt", "value": True}, "where[0].value"),
            ({"path": "n", "op": "lt", "value": None}, "where[0].value"),
            ({"path": "n", "op": "gte", "value": [1]}, "where[0].value"),
            ({"path": "n", "op": "in", "value": []}, "where[0].value"),
            ({"path": "n", "op": "in", "value": 1}, "where[0].value"),
            ({"path": "n", "op": "exists", "value": "yes"}, "where[0].value"),
            ({"path": "n", "op": "startsWith", "value": 1}, "where[0].value"),
            ({"path": "n", "op": "regex", "value": "."}, "where[0].op"),
            ({"path": "n", "op": {"eq": 1}, "value": 1}, "where[0].op"),
            ({"path": "n", "op": "eq"}, "where[0].value"),
            ({"path": "a..b", "op": "eq", "value": 1}, "where[0].path"),
            ({"op": "eq", "value": 1}, "where[0]"),
            ({"path": "n", "op": "eq", "value": 1, "not": True}, "where[0].not"),
        ],
    )
    def test_bad_predicates_are_rejected_clearly(self, where, field):
        with pytest.raises(QueryError) as caught:
            trove.query_events({"where": [where]})
        assert field in [p["field"] for p in caught.value.problems]

    def test_each_value_of_in_counts_towards_the_query_terms(self, dataset):
        self.assert_query({"where": [{"path": "n", "op": "in", "value": list(range(999))}]})
        with pytest.raises(QueryError) as caught:
            trove.query_events({"where": [{"path": "n", "op": "in", "value": list(range(1000))}]})
        assert "where" in [p["field"] for p in caught.value.problems]

    # text ----------------------------------------------------------------------------

    def test_text_finds_whole_words_of_string_values_in_any_case(self):
        note = trove.create_event(
            "s", {"title": "Straße repaired", "tags": ["URGENT", {"who": "Zoë-Ann"}], "n": 42}
        )
        other = trove.create_event("s", {"title": "strasse", "urgent": "no", "body": "repairs 42"})
        self.assert_query({"text": "urgent"}, [note])  # keys don't count
        self.assert_query({"text": "STRASSE"}, [note, other])  # casefold: ß is ss
        self.assert_query({"text": "zoë ann"}, [note])
        self.assert_query({"text": "Repaired, urgent!"}, [note])  # words in any values
        self.assert_query({"text": "repair"}, [])  # whole words only
        self.assert_query({"text": "42"}, [other])  # numbers are not strings
        self.assert_query({"text": "zoë urgent strasse missing"}, [])
        self.assert_query(
            {"text": "strasse", "where": [{"path": "n", "op": "exists", "value": False}]}, [other]
        )

    @pytest.mark.parametrize("text", ["", "  ", "!?-", 5, ["a"]])
    def test_a_text_without_a_word_is_a_bad_query(self, text):
        with pytest.raises(QueryError) as caught:
            trove.query_events({"text": text})
        assert "text" in [p["field"] for p in caught.value.problems]

    def test_combined_query_matches_the_reference(self, dataset):
        self.assert_query(
            {
                "schema": ["order.placed", "note.created"],
                "producer": ["web", "api"],
                "timeRange": {"start": format_instant(dataset[1].created_at)},
                "payload": {"tag": "a"},
                "sort": [{"field": "payload.n", "direction": "desc"}],
                "limit": 2,
                "offset": 1,
            }
        )

    @pytest.mark.parametrize(
        "query, field",
        [
            ({"colour": "red"}, "colour"),
            ({"timeRange": {"start": "yesterday"}}, "timeRange.start"),
            ({"limit": -1}, "limit"),
            ({"offset": 1.5}, "offset"),
            ({"limit": True}, "limit"),
            ({"sort": [{"field": "colour"}]}, "sort[0].field"),
            ({"sort": [{"field": "createdAt", "direction": "up"}]}, "sort[0].direction"),
            ({"links": [{"targetEvent": "nope"}]}, "links[0].targetEvent"),
            ({"schema": 5}, "schema"),
            ({"payload": {"a..b": 1}}, "payload.a..b"),
            ({"payload": {"n": 2**70}}, "payload.n"),
            ({"offset": 2**63}, "offset"),
            ({"producer": "nul\u0000"}, "producer"),
            ({"timeRange": {"start": "0001-01-01T00:00:00+01:00"}}, "timeRange.start"),
        ],
    )
    def test_bad_queries_are_rejected_clearly(self, query, field):
        with pytest.raises(QueryError) as caught:
            trove.query_events(query)
        assert field in [p["field"] for p in caught.value.problems]

    def test_every_problem_of_a_bad_query_is_listed(self):
        with pytest.raises(QueryError) as caught:
            trove.query_events({"limit": -1, "offset": -2, "colour": 1})
        assert {p["field"] for p in caught.value.problems} == {"limit", "offset", "colour"}

    # Links ------------------------------------------------------------------------

    def test_links_backlinks_and_linked_events(self):
        parent = trove.create_event("p", {"i": 0})
        trove.append_version(parent.uuid, {"i": 1})
        child = trove.create_event(
            "c",
            {},
            links=[
                {
                    "type": "parent",
                    "targetEvent": {"id": str(parent.uuid), "version": 1},
                    "metadata": {"why": "x"},
                },
                Link("mentions", EventId(parent.uuid)),
            ],
        )
        assert [link.type for link in trove.get_links(child.uuid)] == ["parent", "mentions"]
        assert trove.get_links(child.uuid, type="parent")[0].metadata == {"why": "x"}
        linked = trove.get_linked_events(child.uuid)
        assert [(e.uuid, e.version) for e in linked] == [(parent.uuid, 1), (parent.uuid, 2)]
        assert trove.get_linked_events(child.uuid, type="mentions")[0].payload == {"i": 1}
        assert [e.uuid for e in trove.get_backlinks(parent.uuid)] == [child.uuid]
        assert trove.get_backlinks(parent.uuid, type="nope") == []
        trove.append_version(child.uuid, {}, links=[])
        assert trove.get_backlinks(parent.uuid) == []
        assert len(trove.get_links(child.uuid, version=1)) == 2

    def test_a_link_to_a_missing_event_is_rejected_and_nothing_stored(self):
        with pytest.raises(InvalidEvent) as caught:
            trove.create_event(
                "c", {}, links=[{"type": "parent", "targetEvent": str(uuid.uuid4())}]
            )
        assert "does not exist" in caught.value.problems[0]["message"]
        target = trove.create_event("p", {})
        with pytest.raises(InvalidEvent):
            trove.create_event(
                "c",
                {},
                links=[{"type": "parent", "targetEvent": {"id": str(target.uuid), "version": 2}}],
            )
        assert trove.count_events({}) == 1
        assert trove.get_backlinks(target.uuid) == []

    # Schemas ----------------------------------------------------------------------

    def test_every_violation_is_listed_and_nothing_stored(self, note_schema):
        with pytest.raises(SchemaValidationError) as caught:
            trove.create_event("note.created", {"n": "ten"})
        messages = [p["message"] for p in caught.value.problems]
        assert len(messages) == 2
        assert any("'text' is a required property" in m for m in messages)
        assert {p["field"] for p in caught.value.problems} == {"payload", "payload.n"}
        assert trove.count_events() == 0

    def test_schema_by_id_alone_uses_the_latest_version(self):
        for version, required in (("1.9", ["a"]), ("1.10", ["b"]), ("1.2", ["c"])):
            trove.register_schema("s", version, {"type": "object", "required": required})
        assert trove.create_event("s", {"b": 1}).schema == SchemaRef("s", "1.10")
        assert trove.create_event({"id": "s", "version": "1.9"}, {"a": 1}).schema.version == "1.9"
        with pytest.raises(SchemaValidationError):
            trove.create_event("s", {"a": 1})

    def test_unregistered_schemas_follow_the_strict_setting(self, settings):
        event = trove.create_event("not.registered", {"anything": 1})
        assert event.schema == SchemaRef("not.registered", None)
        settings.TROVE = {**settings.TROVE, "strict_schemas": True}
        with pytest.raises(SchemaNotFound):
            trove.create_event("not.registered", {"anything": 1})
        assert trove.count_events() == 1

    # Hooks ------------------------------------------------------------------------

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_hooks_fire_in_order(self, note_schema):
        recorder = SignalRecorder()
        try:
            event = trove.create_event("note.created", {"text": "x"})
        finally:
            recorder.disconnect()
        assert recorder.names == [
            "event:validating",
            "event:validated",
            "event:received",
            "event:storing",
            "event:stored",
            "event:committed",
        ]
        # Inside its transaction a version may not have its position yet; once committed it has.
        assert recorder.calls[-2][1].with_changes(position=event.position) == event
        assert recorder.calls[-1][1] == event and event.position is not None
        assert recorder.calls[3][1].files == event.files

    @pytest.mark.parametrize(
        "hook", ["event:validating", "event:validated", "event:received", "event:storing"]
    )
    def test_a_failing_receiver_before_storing_aborts_the_write(self, hook):
        signals.HOOKS[hook].connect(_raise)
        try:
            with pytest.raises(RuntimeError):
                trove.create_event(
                    "s", {}, files=[trove.NewFile(f"bytes for {hook}", "text/plain")]
                )
        finally:
            signals.HOOKS[hook].disconnect(_raise)
        assert trove.count_events() == 0
        digest = "sha256:" + hashlib.sha256(f"bytes for {hook}".encode()).hexdigest()
        assert not storages.files.content_exists(digest)

    def test_stored_receivers_can_create_derived_events(self):
        def process(sender, event, **kwargs):
            if event.schema.id == "note.created":
                trove.create_event(
                    "note.processed",
                    {"length": len(event.payload["text"])},
                    producer="processor",
                    links=[{"type": "parent", "targetEvent": event.id.to_dict()}],
                )

        signals.event_stored.connect(process)
        try:
            note = trove.create_event("note.created", {"text": "hello"})
        finally:
            signals.event_stored.disconnect(process)
        [processed] = trove.query_events({"schema": "note.processed"})
        assert processed.payload == {"length": 5}
        assert trove.get_backlinks(note.uuid) == [processed]

    def test_schema_registration_hooks(self):
        recorder = SignalRecorder()
        try:
            trove.register_schema("h", "1", {"type": "object"})
        finally:
            recorder.disconnect()
        assert recorder.names == ["schema:registering", "schema:registered"]

    # Transactions and files -------------------------------------------------------

    def test_transaction_commits_everything_or_nothing(self):
        kept = trove.create_event("s", {"i": 0})
        with pytest.raises(RuntimeError):
            with trove.transaction():
                trove.create_event("s", {"i": 1}, files=[trove.NewFile(b"rolled back bytes")])
                trove.append_version(kept.uuid, {"i": "changed"})
                raise RuntimeError("abort")
        assert [e.payload for e in trove.query_events({})] == [{"i": 0}]
        assert [v.version for v in trove.get_versions(kept.uuid)] == [1]
        digest = "sha256:" + hashlib.sha256(b"rolled back bytes").hexdigest()
        assert not storages.files.content_exists(digest)
        with trove.transaction():
            a = trove.create_event("s", {"i": 2})
            trove.create_event("s", {"i": 3}, links=[{"type": "after", "targetEvent": str(a.uuid)}])
        assert [e.payload["i"] for e in trove.query_events({})] == [0, 2, 3]

    def test_nested_transactions_roll_back_alone(self):
        with trove.transaction():
            trove.create_event("s", {"i": "outer"})
            with pytest.raises(RuntimeError):
                with trove.transaction():
                    trove.create_event("s", {"i": "inner"})
                    raise RuntimeError("inner abort")
        assert [e.payload["i"] for e in trove.query_events({})] == ["outer"]

    def test_create_events_is_atomic(self, note_schema):
        with pytest.raises(SchemaValidationError):
            trove.create_events(
                [
                    {"schema": "note.created", "payload": {"text": "ok"}},
                    {"schema": "note.created", "payload": {"text": 5}},
                ]
            )
        assert trove.count_events() == 0
        created = trove.create_events(
            [{"schema": "note.created", "payload": {"text": str(i)}} for i in range(3)]
        )
        assert [e.payload["text"] for e in trove.query_events({})] == ["0", "1", "2"]
        assert len(created) == 3

    def test_files_are_attached_and_readable(self):
        blob = bytes(range(256)) * 10
        event = trove.create_event(
            "s",
            {},
            files=[
                trove.NewFile(blob, "application/octet-stream", "blob.bin"),
                trove.NewFile("text ✓", "text/plain", "t.txt"),
                trove.FileReference("s3://bucket/key.pdf", "application/pdf", "key.pdf"),
                {
                    "contentType": "image/png",
                    "filename": "b.png",
                    "data": "iVBORw0KGgo=",
                    "encoding": "base64",
                },
            ],
        )
        binary, text, reference, png = trove.get_event(event.uuid).files
        assert binary.size == 2560 and binary.hash == "sha256:" + hashlib.sha256(blob).hexdigest()
        with trove.open_file(binary.id) as stream:
            assert stream.read() == blob
        assert b"".join(storages.files.get_file_data(text.id)) == "text ✓".encode()
        assert (
            reference.is_reference
            and reference.uri == "s3://bucket/key.pdf"
            and reference.hash is None
        )
        assert trove.get_file(png.id).content_type == "image/png"
        with trove.open_file(png.id) as stream:
            assert stream.read() == b"\x89PNG\r\n\x1a\n"
        version_2 = trove.append_version(event.uuid, {"v": 2}, files=[trove.NewFile(b"more")])
        assert len(version_2.files) == 5

    def test_a_declared_hash_that_does_not_match_is_rejected(self):
        with pytest.raises(FileIntegrityError):
            trove.create_event("s", {}, files=[trove.NewFile(b"abc", hash="sha256:" + "0" * 64)])
        assert trove.count_events() == 0
        assert not storages.files.content_exists("sha256:" + hashlib.sha256(b"abc").hexdigest())

    def test_files_over_the_size_limit_are_refused(self, settings):
        settings.TROVE = {**settings.TROVE, "max_file_size": 10}
        with pytest.raises(FileTooLarge):
            trove.create_event("s", {}, files=[trove.NewFile(b"x" * 11)])
        assert trove.count_events() == 0
        trove.create_event("s", {}, files=[trove.NewFile(b"x" * 10)])

    def test_content_already_referenced_survives_a_failed_write(self):
        first = trove.create_event("s", {}, files=[trove.NewFile(b"shared bytes")])
        signals.event_storing.connect(_raise)
        try:
            with pytest.raises(RuntimeError):
                trove.create_event("s", {}, files=[trove.NewFile(b"shared bytes")])
        finally:
            signals.event_storing.disconnect(_raise)
        with trove.open_file(first.files[0].id) as stream:
            assert stream.read() == b"shared bytes"

    # Positions and the feed (SPEC §9) ---------------------------------------------

    def test_every_stored_version_gets_a_position_in_write_order(self):
        first = trove.create_event("s", {"i": 1})
        second = trove.create_event("s", {"i": 2})
        again = trove.append_version(first.uuid, {"i": 3})
        positions = [first.position, second.position, again.position]
        assert all(isinstance(p, int) and p > 0 for p in positions)
        assert positions == sorted(set(positions))
        assert trove.get_event(first.uuid, 1).position == first.position
        assert trove.get_event(first.uuid).to_dict()["position"] == again.position
        assert [v.position for v in trove.get_versions(first.uuid)] == [positions[0], positions[2]]
        assert trove.query_events({"sort": [{"field": "createdAt"}]})[0].position == second.position
        assert (
            "position"
            not in Event(EventId(uuid.uuid4(), 1), first.created_at, SchemaRef("s"), {}).to_dict()
        )
        assert storages.events.last_position() == again.position

    def test_the_feed_holds_every_version_in_position_order(self):
        a = trove.create_event("order.placed", {"n": 1}, producer="web")
        b = trove.create_event("note.created", {"n": 2}, producer="api")
        a2 = trove.append_version(a.uuid, {"n": 3})
        c = trove.create_event("order.placed", {"n": 4}, producer="api")
        everything = trove.read_feed()
        assert [(e.uuid, e.version) for e in everything] == [
            (a.uuid, 1),
            (b.uuid, 1),
            (a.uuid, 2),
            (c.uuid, 1),
        ]
        assert everything[2] == a2 and everything[0].payload == {"n": 1}
        assert trove.read_feed(after=b.position) == [a2, c]
        assert trove.read_feed(after=a.position, limit=2) == [b, a2]
        assert trove.read_feed(after=c.position) == []
        assert trove.read_feed(schema="order.placed") == [everything[0], a2, c]
        assert trove.read_feed(producer=["api"]) == [b, c]
        assert trove.read_feed(schema="order.placed", producer="api") == [c]
        for bad in ({"after": -1}, {"limit": 0}, {"limit": 1001}, {"after": "1"}, {"schema": 5}):
            with pytest.raises(InvalidEvent):
                trove.read_feed(**bad)

    def test_a_batch_gets_consecutive_positions_in_its_order(self):
        before = trove.create_event("s", {"i": -1})
        created = trove.create_events([{"schema": "s", "payload": {"i": i}} for i in range(150)])
        positions = [e.position for e in created]
        assert positions == sorted(positions) and positions[0] > before.position
        assert len(set(positions)) == 150
        feed = trove.read_feed(after=before.position)
        assert [e.payload["i"] for e in feed] == list(range(150))
        assert [e.position for e in feed] == positions

    def test_rolled_back_versions_never_reach_the_feed(self):
        kept = trove.create_event("s", {"i": "kept"})
        with pytest.raises(RuntimeError):
            with trove.transaction():
                trove.create_event("s", {"i": "gone"})
                trove.append_version(kept.uuid, {"i": "gone too"})
                raise RuntimeError("abort")
        later = trove.create_event("s", {"i": "later"})
        assert [e.payload["i"] for e in trove.read_feed()] == ["kept", "later"]
        assert later.position > kept.position

    def test_a_transaction_gives_positions_in_its_order(self):
        with trove.transaction():
            a = trove.create_event("s", {"i": 1})
            trove.append_version(a.uuid, {"i": 2})
            trove.create_event("s", {"i": 3})
        feed = trove.read_feed()
        assert [e.payload["i"] for e in feed] == [1, 2, 3]
        assert [e.position for e in feed] == sorted({e.position for e in feed})

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_concurrent_writers_and_a_tailing_reader_agree(self):
        """Writers in threads hold transactions open after taking positions; a reader that
        only ever asks for what is after the last position it saw still gets everything."""
        if not self.concurrent_writers:
            pytest.skip("this database cannot take concurrent writers")
        acknowledged: list[tuple[uuid.UUID, int]] = []

        def write(writer: int) -> None:
            for i in range(12):
                with trove.transaction():
                    event = trove.create_event("s", {"w": writer, "i": i})
                    time.sleep(0.002 * (i % 3))  # positions taken, commit still to come
                    again = trove.append_version(event.uuid, {"w": writer, "i": i, "v": 2})
                acknowledged.extend([(event.uuid, 1), (again.uuid, 2)])

        seen = tail_while_writing(write)
        positions = [e.position for e in seen if e.position is not None]
        assert len(positions) == len(seen)
        assert positions == sorted(set(positions))
        assert sorted((e.uuid, e.version) for e in seen) == sorted(acknowledged)
        assert len(acknowledged) == 96

    def test_follow_yields_what_commits_after_the_start(self):
        first = trove.create_event("s", {"i": 1})
        trove.create_event("other", {"i": 2})
        follower = trove.follow(after=0, schema="s")
        assert next(follower) == first
        third = trove.create_event("s", {"i": 3})
        assert next(follower) == third
        follower.close()

    # event:committed ------------------------------------------------------------------

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_committed_fires_once_per_event_after_the_outermost_commit(self):
        received: list[Event] = []

        def receiver(sender, event, **kwargs):
            received.append(event)

        signals.event_committed.connect(receiver)
        try:
            single = trove.create_event("s", {"i": 0})
            assert received == [single]
            with trove.transaction():
                a = trove.create_event("s", {"i": 1})
                with trove.transaction():
                    b = trove.create_event("s", {"i": 2})
                assert received == [single]
            assert [(e.uuid, e.version) for e in received[1:]] == [(a.uuid, 1), (b.uuid, 1)]
            assert all(e.position is not None for e in received)
            batch = trove.create_events([{"schema": "s", "payload": {"i": i}} for i in (3, 4)])
            assert [e.uuid for e in received[3:]] == [e.uuid for e in batch]
            assert len(received) == 5
        finally:
            signals.event_committed.disconnect(receiver)

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_committed_never_fires_for_a_rolled_back_write(self):
        received: list[Event] = []

        def receiver(sender, event, **kwargs):
            received.append(event)

        signals.event_committed.connect(receiver)
        try:
            with pytest.raises(RuntimeError):
                with trove.transaction():
                    trove.create_event("s", {"i": "gone"})
                    raise RuntimeError("abort")
            with trove.transaction():
                kept = trove.create_event("s", {"i": "kept"})
                with pytest.raises(RuntimeError):
                    with trove.transaction():
                        trove.create_event("s", {"i": "inner, gone"})
                        raise RuntimeError("inner abort")
            with pytest.raises(VersionConflict):
                trove.create_event("s", {}, event_id=kept.uuid)
        finally:
            signals.event_committed.disconnect(receiver)
        assert [e.payload for e in received] == [{"i": "kept"}]

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_a_failing_committed_receiver_is_logged_and_the_write_stays(self, caplog):
        signals.event_committed.connect(_raise)
        try:
            event = trove.create_event("s", {"i": 1})
        finally:
            signals.event_committed.disconnect(_raise)
        assert trove.get_event(event.uuid) == event
        assert "receiver refused" in caplog.text and str(event.uuid) in caplog.text

    # Interchange (SPEC §10) -----------------------------------------------------------

    def test_an_imported_version_keeps_everything_but_its_position(self):
        from trove.interchange import ImportConflict, import_event

        target = trove.create_event("s", {"i": 0})
        created = "2020-02-29T12:00:00.000001Z"
        document: dict[str, Any] = {
            "id": {"id": str(uuid.uuid4()), "version": 1},
            "createdAt": created,
            "producer": "elsewhere",
            "schema": {"id": "s", "version": None},
            "payload": {"i": 1},
            "files": [],
            "links": [
                {
                    "type": "t",
                    "targetEvent": {"id": str(target.uuid), "version": 1},
                    "metadata": {"m": 1},
                }
            ],
            "metadata": {"k": "v"},
            "position": 999_999,
        }
        second = {**document, "id": {**document["id"], "version": 2}, "payload": {"i": 2}}
        first = import_event(document)
        assert first.imported and import_event(second).imported
        stored = trove.get_event(document["id"]["id"], 1).to_dict()
        assert stored.pop("position") > target.position
        assert stored == {key: value for key, value in document.items() if key != "position"}
        assert trove.get_event(document["id"]["id"]).version == 2
        assert [e.version for e in trove.read_feed(target.position)] == [1, 2]
        assert trove.get_backlinks(target.uuid)[0].version == 2
        assert not import_event(document).imported  # a rerun skips it
        with pytest.raises(ImportConflict):
            import_event({**document, "payload": {"i": "changed"}})
        assert trove.get_event(document["id"]["id"], 1).payload == {"i": 1}

    def test_get_latest_answers_many_ids_at_once(self):
        one = trove.create_event("s", {"i": 1})
        two = trove.create_event("s", {"i": 2})
        newer = trove.append_version(two.uuid, {"i": 3})
        found = storages.events.get_latest({one.uuid, two.uuid, uuid.uuid4()})
        assert found == {one.uuid: one, two.uuid: newer}


def tail_while_writing(write: Callable[[int], None], writers: int = 4) -> list[Event]:
    """What a reader saw that only ever asked the feed for what is after the last position
    it saw, while ``writers`` threads ran ``write(n)``: until they all ended, then once
    more. Fails with what any thread raised."""
    seen: list[Event] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def run_writer(writer: int) -> None:
        try:
            write(writer)
        except BaseException as error:  # reported by the main thread
            failures.append(error)
        finally:
            _close_connections()

    def read() -> None:
        try:
            while True:
                finished = done.is_set()
                after = seen[-1].position if seen else 0
                page = trove.read_feed(after=after)
                seen.extend(page)
                if not page:
                    # As a follower polls: a reader spinning without pause holds the GIL,
                    # so writers holding SQLite's write lock wait for it.
                    time.sleep(0.001)
                if finished:
                    return
        except BaseException as error:
            failures.append(error)
        finally:
            _close_connections()

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=run_writer, args=(n,)) for n in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    done.set()
    reader.join(120)
    assert not failures, failures
    return seen


def _close_connections() -> None:
    """A thread's database connections, closed as Django closes a request's."""
    from django.db import connections

    connections.close_all()


class FileStorageConformance(BackendFixture):
    """One file storage, driven directly through the :class:`FileStorage` interface."""

    @property
    def files(self):
        return storages.files

    def test_save_streams_hashes_and_reads_back(self):
        data = b"0123456789" * 300_000  # 3 MB: several chunks
        stored = self.files.save_file(io.BytesIO(data), content_type="text/plain", filename="n.txt")
        record = stored.record
        assert stored.new_content
        assert record.size == len(data)
        assert record.hash == "sha256:" + hashlib.sha256(data).hexdigest()
        assert self.files.get_file(record.id) == record
        assert b"".join(self.files.get_file_data(record.id)) == data
        with self.files.open_file(record.id) as stream:
            assert stream.read(10) == b"0123456789"
        assert self.files.content_exists(record.hash)

    def test_the_health_probe_passes_empty_and_full(self):
        self.files.check()
        self.files.save_file(io.BytesIO(b"x"), content_type="text/plain", filename="x")
        self.files.check()

    def test_same_bytes_are_stored_once(self):
        one = self.files.save_file(io.BytesIO(b"same"), content_type="text/plain", filename="1")
        two = self.files.save_file(io.BytesIO(b"same"), content_type="text/csv", filename="2")
        assert one.new_content and not two.new_content
        assert one.record.hash == two.record.hash and one.record.id != two.record.id
        assert self.files.get_file(two.record.id).content_type == "text/csv"
        self.files.delete_file(two.record.id, delete_content=False)
        assert self.files.get_file(two.record.id) is None
        assert b"".join(self.files.get_file_data(one.record.id)) == b"same"

    def test_binary_bytes_round_trip(self):
        data = bytes(range(256)) * 4097
        stored = self.files.save_file(io.BytesIO(data), content_type="application/octet-stream")
        with self.files.open_file(stored.record.id) as stream:
            assert stream.read() == data

    def test_hash_mismatch_and_size_limit_store_nothing(self):
        digest = "sha256:" + hashlib.sha256(b"payload").hexdigest()
        with pytest.raises(FileIntegrityError):
            self.files.save_file(
                io.BytesIO(b"payload"), content_type="x/y", expected_hash="sha256:00"
            )
        with pytest.raises(FileTooLarge):
            self.files.save_file(io.BytesIO(b"payload"), content_type="x/y", max_size=3)
        assert not self.files.content_exists(digest)
        ok = self.files.save_file(
            io.BytesIO(b"payload"), content_type="x/y", expected_hash=digest, max_size=7
        )
        assert ok.record.hash == digest

    def test_references_are_recorded_not_fetched(self):
        record = self.files.save_reference(
            "https://example.invalid/a.pdf", content_type="application/pdf"
        )
        assert self.files.get_file(record.id) == record
        assert record.is_reference and record.size is None
        with pytest.raises(NotFound):
            self.files.open_file(record.id)

    def test_unknown_files_and_deletion(self):
        assert self.files.get_file(uuid.uuid4()) is None
        with pytest.raises(NotFound):
            self.files.open_file(uuid.uuid4())
        stored = self.files.save_file(io.BytesIO(b"gone"), content_type="text/plain")
        self.files.delete_file(stored.record.id, delete_content=True)
        assert self.files.get_file(stored.record.id) is None
        assert not self.files.content_exists(stored.record.hash)
        self.files.delete_file(stored.record.id, delete_content=True)  # twice is harmless

    def test_a_file_can_keep_the_id_it_is_given(self):
        wanted, reference = uuid.uuid4(), uuid.uuid4()
        stored = self.files.save_file(
            io.BytesIO(b"kept"), content_type="text/plain", file_id=wanted
        )
        assert stored.record.id == wanted and self.files.get_file(wanted) == stored.record
        record = self.files.save_reference(
            "s3://bucket/key", content_type="text/plain", file_id=reference
        )
        assert record.id == reference and self.files.get_file(reference) == record


class EventStatisticsConformance(BackendFixture):
    """An event backend that is an :class:`~trove.storage.base.EventStatistics` answers
    as counting through ``query_events`` would."""

    EPOCH = datetime(2026, 3, 1, 12, tzinfo=UTC)

    @pytest.fixture
    def stored(self) -> list[Event]:
        """Events over four days (two of them near midnight UTC), in several schema
        versions, producers and schemas; one with an older version."""
        specs = [
            (0, "order.placed", "1", "web", {"n": 1}),
            (0, "order.placed", "2", "api", {"n": 2}),
            (1, "order.placed", None, "web", {"n": 3}),
            (1, "note.created", "1", "web", {"n": 4}),
            (2.49, "note.created", "1", "batch", {"n": 5}),  # 23:45 UTC
            (2.51, "order.placed", "2", "web", {"n": 6}),  # 00:15 UTC
        ]
        events = [
            storages.events.save_event(
                Event(
                    EventId(uuid.uuid4(), 1),
                    self.EPOCH + timedelta(days=days),
                    SchemaRef(schema, version),
                    payload,
                    producer=producer,
                )
            )
            for days, schema, version, producer, payload in specs
        ]
        newer = events[0].with_changes(
            id=EventId(events[0].uuid, 2), schema=SchemaRef("order.placed", "3"), position=None
        )
        storages.events.save_event(newer)
        return trove.query_events({})

    def expected(self, field: str, events: list[Event]) -> list[tuple[str, int]]:
        values = {
            "schema": lambda e: e.schema.id,
            "producer": lambda e: e.producer,
            "schemaVersion": lambda e: e.schema.version or "",
        }[field]
        counts = Counter(values(event) for event in events)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    @property
    def statistics(self) -> EventStatistics:
        storage = storages.events
        assert isinstance(storage, EventStatistics)
        return storage

    def test_the_backend_has_statistics(self):
        assert isinstance(storages.events, EventStatistics)

    @pytest.mark.parametrize("field", ["schema", "producer", "schemaVersion"])
    def test_counts_by_field_are_those_of_the_matching_latest_versions(self, stored, field):
        statistics = self.statistics
        assert statistics.count_by_field(field, EventQuery()) == self.expected(field, stored)
        query = EventQuery.parse(
            {"producer": ["web", "batch"], "where": [{"path": "n", "op": "gte", "value": 3}]}
        )
        expected = self.expected(field, query.apply(stored))
        assert statistics.count_by_field(field, query) == expected

    @pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Tokyo"])
    def test_counts_per_day_follow_the_time_zone(self, stored, zone):
        tz = ZoneInfo(zone)
        start, end = self.EPOCH - timedelta(days=2), self.EPOCH + timedelta(days=5)
        expected = Counter(event.created_at.astimezone(tz).date() for event in stored)
        assert self.statistics.count_per_day(start, end, tz) == dict(expected)
        narrow = self.statistics.count_per_day(self.EPOCH, self.EPOCH + timedelta(hours=1), tz)
        assert sum(narrow.values()) == 2

    def test_distinct_values_are_sorted_and_limited(self, stored):
        assert self.statistics.distinct_values("producer", 100) == ["api", "batch", "web"]
        assert self.statistics.distinct_values("producer", 2) == ["api", "batch"]
        assert self.statistics.distinct_values("schema", 100) == ["note.created", "order.placed"]

    def test_schema_versions_in_use(self, stored):
        assert self.statistics.schema_version_in_use("order.placed", "3")
        assert self.statistics.schema_version_in_use("note.created", "1")
        assert not self.statistics.schema_version_in_use("note.created", "2")
        assert not self.statistics.schema_version_in_use("nothing", "1")

    def test_an_estimate_is_none_or_a_number(self, stored):
        estimate = self.statistics.estimate_count(EventQuery())
        assert estimate is None or estimate >= 0


class LinkStorageConformance(BackendFixture):
    """A stand-alone :class:`~trove.storage.base.LinkStorage` (``TROVE["storage"]["links"]``
    naming its own plugin): what it saves, it answers, in both directions."""

    def test_the_links_role_is_a_link_storage_of_its_own(self):
        assert isinstance(storages.link_writer, LinkStorage)
        assert storages.links is not storages.events

    def test_saved_links_are_answered_by_source_version_in_order(self):
        source, target, other = EventId(uuid.uuid4(), 1), uuid.uuid4(), uuid.uuid4()
        links = [
            Link("parent", EventId(target, None), {"why": "é"}),
            Link("about", EventId(other, 2)),
            Link("parent", EventId(other, None)),
        ]
        for link in links:
            storages.link_writer.save_link(source, link)
        storages.link_writer.save_link(EventId(source.id, 2), Link("parent", EventId(target, 1)))
        assert storages.links.get_links(source) == links
        assert storages.links.get_links(source, type="parent") == [links[0], links[2]]
        assert storages.links.get_links(EventId(source.id, 2)) == [
            Link("parent", EventId(target, 1))
        ]
        assert storages.links.get_links(EventId(uuid.uuid4(), 1)) == []

    def test_backlinks_name_every_source_version(self):
        target = uuid.uuid4()
        first, second = EventId(uuid.uuid4(), 1), EventId(uuid.uuid4(), 3)
        storages.link_writer.save_link(first, Link("parent", EventId(target, None)))
        storages.link_writer.save_link(second, Link("ref", EventId(target, 2)))
        storages.link_writer.save_link(second, Link("ref", EventId(uuid.uuid4(), None)))
        found = storages.links.get_backlinks(target)
        assert sorted((source.id, source.version, link.type) for source, link in found) == sorted(
            [(first.id, 1, "parent"), (second.id, 3, "ref")]
        )
        assert [source for source, _ in storages.links.get_backlinks(target, type="ref")] == [
            second
        ]
        assert storages.links.get_backlinks(uuid.uuid4()) == []

    def test_events_written_through_trove_keep_their_links_there(self):
        parent = trove.create_event("s", {"n": 1})
        child = trove.create_event(
            "s", {"n": 2}, links=[{"type": "parent", "targetEvent": {"id": str(parent.uuid)}}]
        )
        assert [link.type for link in storages.links.get_links(child.id)] == ["parent"]
        assert [source for source, _ in storages.links.get_backlinks(parent.uuid)] == [child.id]
        assert [e.uuid for e in trove.get_backlinks(parent.uuid)] == [child.uuid]
