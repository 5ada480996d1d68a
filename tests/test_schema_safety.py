"""A JSON Schema is hostile input: it never makes Trove open a connection or read a file,
it compiles when it is registered or not at all, and no pattern or keyword holds a worker.

The references point at a real HTTP server on 127.0.0.1 that counts the connections it
gets, and at a real file holding a secret; registration through the Python API, through
``POST /api/schemas/`` and inline in ``POST /api/events/`` is refused before either is
touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

import trove
from tests.api import conftest as api
from trove import jsonschema_keywords, schemas
from trove.documents import SchemaRef
from trove.exceptions import InvalidSchema, SchemaValidationError
from trove.models import EventSchema
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db

SECRET = "TROVE-SECRET-7f3a"
# Seconds that only a hang exceeds: the unbounded versions take minutes to hours.
HANG = 30
memory, writer = api.memory, api.writer  # the REST tests' fixtures


class _Recorder(ThreadingHTTPServer):
    """Answers every request with a schema, and counts every connection it accepts."""

    daemon_threads = True
    connections = 0

    def verify_request(self, request, client_address) -> bool:
        type(self).connections += 1
        return True


class _Schema(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"type": "string", "enum": [SECRET]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    recorder = _Recorder(("127.0.0.1", 0), _Schema)
    thread = threading.Thread(target=recorder.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    yield recorder
    recorder.shutdown()
    recorder.server_close()
    thread.join(timeout=5)


@pytest.fixture
def outside(server, tmp_path) -> dict[str, str]:
    """References to places outside Trove, by kind; the server's count starts at zero."""
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"type": "string", "enum": [SECRET]}))
    type(server).connections = 0
    port = server.server_address[1]
    return {
        "http": f"http://127.0.0.1:{port}/schema.json",
        "https": f"https://127.0.0.1:{port}/schema.json",
        "file": secret.as_uri(),
        "relative": "secret.json",
        "unknown urn": "urn:trove:schema:nothing:1",
        "pointer": f"http://127.0.0.1:{port}/schema.json#/enum",
        "meta-schema": "https://json-schema.org/draft/2020-12/schema",
    }


@pytest.fixture
def python_only(monkeypatch):
    """As where jsonschema-rs is not installed: the Python validator answers alone."""
    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)
    monkeypatch.setattr(schemas, "_registry", {})


@pytest.fixture
def in_memory(settings):
    settings.TROVE = {
        "storage": {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}
    }
    yield
    storages.close_all()


def referring(refs: dict[str, str]) -> dict:
    return {"type": "object", "properties": {name: {"$ref": ref} for name, ref in refs.items()}}


def assert_untouched(server, response_text: str = "") -> None:
    time.sleep(0.05)  # a connection the server is about to count would show by now
    assert type(server).connections == 0
    assert SECRET not in response_text


# References ---------------------------------------------------------------------------


def test_a_reference_outside_trove_is_refused_at_registration(server, outside):
    with pytest.raises(InvalidSchema) as error:
        trove.register_schema("s", "1", referring(outside))
    problems = error.value.problems
    assert [p["field"] for p in problems] == [f"schema.properties.{name}.$ref" for name in outside]
    assert all("not a schema Trove knows" in p["message"] for p in problems)
    assert_untouched(server, str(error.value))
    assert not EventSchema.objects.exists()


def test_the_meta_schema_keywords_refuse_an_unknown_dialect(server, outside):
    with pytest.raises(InvalidSchema) as error:
        trove.register_schema("s", "1", {"$schema": outside["http"], "type": "object"})
    assert [p["field"] for p in error.value.problems] == ["schema.$schema"]
    assert_untouched(server)


def test_the_rest_api_refuses_such_a_schema(server, outside, memory, writer):
    body = {"id": "s", "version": "1", "schema": referring(outside)}
    response = writer.post("/api/schemas/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_schema"
    assert len(error["problems"]) == len(outside)
    assert_untouched(server, response.content.decode())
    assert not EventSchema.objects.exists()


@pytest.mark.parametrize("path", ["/api/events/", "/api/events"])
def test_an_inline_schema_with_such_a_reference_is_refused(server, outside, memory, writer, path):
    inline = {"$id": "test.event+v1.0.0", **referring({"file": outside["file"]})}
    response = writer.post(path, {"schema": inline, "payload": {"file": "x"}}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_schema")
    inline = {"$id": "test.event+v1.0.0", **referring({"http": outside["http"]})}
    response = writer.post(path, {"schema": inline, "payload": {"http": "x"}}, format="json")
    assert response.status_code == 400
    assert_untouched(server, response.content.decode())
    assert not EventSchema.objects.exists()
    assert trove.count_events() == 0


@pytest.mark.parametrize("fast", [True, False], ids=["jsonschema-rs", "python"])
def test_a_stored_schema_never_fetches_at_validation(
    server, outside, memory, writer, monkeypatch, fast
):
    if not fast:
        monkeypatch.setitem(sys.modules, "jsonschema_rs", None)
    monkeypatch.setattr(schemas, "_registry", {})
    # Written before these rules, or straight into the table: checked again when compiled.
    EventSchema.objects.create(schema_id="old", version="1", schema=referring(outside))
    payload = dict.fromkeys(outside, "x")
    response = writer.post("/api/events/", {"schema": "old", "payload": payload}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_schema")
    assert_untouched(server, response.content.decode())
    assert trove.count_events() == 0


def test_references_inside_trove_resolve(in_memory, python_only):
    trove.register_schema("name", "1", {"type": "string", "minLength": 2})
    trove.register_schema("age", "1", {"$id": "https://example.com/age", "minimum": 0})
    tree = {
        "type": "object",
        "properties": {
            "name": {"$ref": "urn:trove:schema:name:1"},
            "age": {"$ref": "https://example.com/age"},
            "tag": {"$ref": "#/$defs/tag"},
            "child": {"$ref": "urn:trove:schema:tree:1"},
        },
        "$defs": {"tag": {"enum": ["a", "b"]}},
    }
    trove.register_schema("tree", "1", tree)
    good = {"name": "Jo", "age": 3, "tag": "a", "child": {"name": "Al"}}
    assert trove.create_event("tree", good).payload == good
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("tree", {"name": "J", "age": -1, "tag": "c", "child": {"age": -2}})
    assert [(p["field"], p["validator"]) for p in error.value.problems] == [
        ("payload.age", "minimum"),
        ("payload.child.age", "minimum"),
        ("payload.name", "minLength"),
        ("payload.tag", "enum"),
    ]


# Compiling at registration ------------------------------------------------------------


def test_a_schema_that_cannot_compile_is_refused_with_every_problem(in_memory):
    schema = {
        "type": "object",
        "properties": {
            "code": {"pattern": "[a-"},
            "nowhere": {"$ref": "#/$defs/missing"},
            "anchor": {"$ref": "#no-such-anchor"},
            "size": {"minLength": -1},
        },
        "patternProperties": {"(": {}},
    }
    with pytest.raises(InvalidSchema) as error:
        trove.register_schema("s", "1", schema)
    # A schema the meta-schema refuses is not read further.
    assert [p["field"] for p in error.value.problems] == ["schema.properties.size.minLength"]
    del schema["properties"]["size"]
    with pytest.raises(InvalidSchema) as error:
        trove.register_schema("s", "1", schema)
    assert [p["field"] for p in error.value.problems] == [
        "schema.patternProperties",
        "schema.properties.code.pattern",
        "schema.properties.nowhere.$ref",
        "schema.properties.anchor.$ref",
    ]
    assert not EventSchema.objects.exists()


def test_the_rest_api_lists_every_problem(memory, writer):
    schema = {"properties": {"a": {"pattern": "("}, "b": {"$ref": "#/nope"}}}
    response = writer.post(
        "/api/schemas/", {"id": "s", "version": "1", "schema": schema}, format="json"
    )
    assert response.status_code == 400
    problems = response.json()["error"]["problems"]
    assert [p["field"] for p in problems] == [
        "schema.properties.a.pattern",
        "schema.properties.b.$ref",
    ]


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"$ref": "#", "type": "string"}, "schema.$ref"),
        ({"$ref": "urn:trove:schema:s:1", "type": "string"}, "schema.$ref"),
        (
            {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}}},
            "schema.$defs.b.anyOf.0.$ref",
        ),
    ],
)
def test_a_loop_of_references_is_refused(in_memory, schema, field):
    with pytest.raises(InvalidSchema) as error:
        trove.register_schema("s", "1", schema)
    assert [p["field"] for p in error.value.problems] == [field]
    assert "loop" in error.value.problems[0]["message"]


@pytest.mark.parametrize("pattern", ["^(a)\\1$", "^(?=a)a", "(?<!x)y", "\\k<n>(?<n>a)"])
def test_a_pattern_that_needs_backtracking_is_refused(in_memory, pattern):
    with pytest.raises(InvalidSchema) as error:
        trove.register_schema("s", "1", {"properties": {"a": {"pattern": pattern}}})
    [problem] = error.value.problems
    assert problem["field"] == "schema.properties.a.pattern"
    assert "linear time" in problem["message"]


def test_a_schema_nested_beyond_the_limit_is_refused(in_memory, memory, writer):
    deep: dict = {"type": "object"}
    for _ in range(70):
        deep = {"properties": {"a": deep}}
    with pytest.raises(InvalidSchema, match="deeper than 64"):
        trove.register_schema("s", "1", deep)
    response = writer.post(
        "/api/schemas/", {"id": "s", "version": "1", "schema": deep}, format="json"
    )
    # The body nests deeper still, so the API refuses it before reading the schema.
    assert response.status_code == 400
    assert "nested deeper than" in response.json()["error"]["message"]
    assert schemas.get_schema("s") is None


def test_the_admin_form_check_applies_the_same_rules(server, outside):
    row = EventSchema(schema_id="s", version="1", schema=referring({"x": outside["http"]}))
    with pytest.raises(ValidationError) as error:
        row.full_clean()
    assert "properties.x.$ref" in error.value.message_dict["schema"][0]
    assert_untouched(server)


# Linear-time validation ---------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["jsonschema-rs", "python"])
def test_a_backtracking_pattern_matches_in_linear_time(in_memory, monkeypatch, fast):
    if not fast:
        monkeypatch.setitem(sys.modules, "jsonschema_rs", None)
    monkeypatch.setattr(schemas, "_registry", {})
    trove.register_schema("s", "1", {"properties": {"a": {"pattern": "^(a+)+$"}}})
    started = time.monotonic()
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("s", {"a": "a" * 40 + "!"})
    assert time.monotonic() - started < HANG  # a backtracking engine takes hours here
    assert [p["validator"] for p in error.value.problems] == ["pattern"]
    assert trove.create_event("s", {"a": "a" * 40}).payload == {"a": "a" * 40}


def test_patterns_read_ecma_unicode_escapes(in_memory, python_only):
    trove.register_schema("s", "1", {"properties": {"a": {"pattern": "^\\u00e9+$"}}})
    assert trove.create_event("s", {"a": "éé"}).payload == {"a": "éé"}
    with pytest.raises(SchemaValidationError):
        trove.create_event("s", {"a": "e"})


def test_a_regex_format_is_checked_by_the_same_rules(in_memory, python_only):
    trove.register_schema("s", "1", {"properties": {"re": {"format": "regex"}}})
    assert trove.create_event("s", {"re": "^a+$"}).payload == {"re": "^a+$"}
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("s", {"re": "(a)\\1"})
    assert [p["validator"] for p in error.value.problems] == ["format"]


def test_unique_items_on_a_large_array_is_linear(in_memory, python_only):
    trove.register_schema("s", "1", {"properties": {"rows": {"uniqueItems": True}}})
    rows = [{"n": n, "tags": [n, "x"]} for n in range(200_000)]
    assert len(trove.create_event("s", {"rows": rows}).payload["rows"]) == 200_000
    rows.append({"tags": [7, "x"], "n": 7})
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("s", {"rows": rows})
    [problem] = error.value.problems
    assert (problem["field"], problem["validator"]) == ("payload.rows", "uniqueItems")
    assert "items 7 and 200000 are equal" in problem["message"]


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([1, True], True),
        ([0, False], True),
        ([1, 1.0], False),
        ([{"a": 1, "b": 2}, {"b": 2, "a": 1}], False),
        ([[1, 2], [2, 1]], True),
        ([{"a": [1]}, {"a": [True]}], True),
        ([None, False, 0, "", [], {}], True),
        ([2**63, float(2**63)], False),
        ([2**53 + 1, float(2**53)], True),
    ],
)
def test_unique_items_compares_as_json_schema_does(in_memory, python_only, items, unique):
    trove.register_schema("s", "1", {"properties": {"v": {"uniqueItems": True}}})
    if unique:
        assert trove.create_event("s", {"v": items}).payload == {"v": items}
    else:
        with pytest.raises(SchemaValidationError):
            trove.create_event("s", {"v": items})


@pytest.mark.parametrize("fast", [True, False], ids=["jsonschema-rs", "python"])
def test_a_large_enum_of_objects_is_checked_by_hash(in_memory, monkeypatch, fast):
    if not fast:
        monkeypatch.setitem(sys.modules, "jsonschema_rs", None)
    monkeypatch.setattr(schemas, "_registry", {})
    allowed = [{"k": n} for n in range(20_000)]
    trove.register_schema("s", "1", {"properties": {"v": {"items": {"enum": allowed}}}})
    started = time.monotonic()
    assert len(trove.create_event("s", {"v": allowed[::-1]}).payload["v"]) == 20_000
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("s", {"v": [*allowed, {"k": 1.0}, {"k": True}]})
    assert time.monotonic() - started < HANG  # compared pairwise, this takes minutes
    assert [p["field"] for p in error.value.problems] == ["payload.v.20001"]
    assert len(error.value.problems[0]["message"]) < 300


def test_the_fast_path_serves_schemas_with_references(in_memory):
    trove.register_schema("name", "1", {"type": "string"})
    trove.register_schema("p", "1", {"properties": {"name": {"$ref": "urn:trove:schema:name:1"}}})
    assert schemas.compiled_schema(SchemaRef("p")).fast is not None
    with pytest.raises(SchemaValidationError):
        trove.create_event("p", {"name": 1})


def _nested(depth: int) -> dict:
    value: dict = {"x": 1}
    for _ in range(depth):
        value = {"a": value, "x": 1}
    return value


@pytest.mark.parametrize(
    ("schema", "payload", "validator"),
    [
        (
            {"patternProperties": {"^(a+)+$": {}}, "additionalProperties": False},
            {"a" * 40 + "!": 1},
            "additionalProperties",
        ),
        (
            {"patternProperties": {"^(a+)+$": {}}, "unevaluatedProperties": False},
            {"a" * 40 + "!": 1},
            "unevaluatedProperties",
        ),
        (
            {"patternProperties": {"^k": {}}, "unevaluatedProperties": False},
            {**{f"k{n}": n for n in range(80_000)}, "extra": 1},
            "unevaluatedProperties",
        ),
        (
            {"properties": {"v": {"contains": {"type": "integer"}, "unevaluatedItems": False}}},
            {"v": [*range(100_000), "x"]},
            "unevaluatedItems",
        ),
    ],
    ids=["additional", "unevaluated-pattern", "unevaluated-keys", "unevaluated-items"],
)
def test_keywords_jsonschema_runs_slowly_are_linear(
    in_memory, python_only, monkeypatch, schema, payload, validator
):
    monkeypatch.setattr(
        jsonschema_keywords, "TIME_LIMIT", 60
    )  # linear on its own, not by the clock
    trove.register_schema("s", "1", schema)
    started = time.monotonic()
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("s", payload)
    assert time.monotonic() - started < HANG  # quadratic or backtracking, these take minutes
    assert [p["validator"] for p in error.value.problems] == [validator]


def test_the_python_validator_stops_at_its_time_limit(in_memory, python_only):
    # Each level checks the level below twice (anyOf, then unevaluatedProperties): 2**40.
    schema = {
        "type": "object",
        "anyOf": [{"properties": {"a": {"$ref": "#"}}}],
        "unevaluatedProperties": False,
    }
    trove.register_schema("s", "1", schema)
    started = time.monotonic()
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("s", _nested(40))
    assert time.monotonic() - started < HANG
    assert error.value.problems[-1]["validator"] == "timeLimit"
    assert trove.count_events() == 0


def test_the_rules_hold_through_a_schema_naming_its_dialect(in_memory, python_only):
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {"child": {"$ref": "#"}, "a": {"pattern": "^(a+)+$"}},
    }
    trove.register_schema("s", "1", schema)
    started = time.monotonic()
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("s", {"child": {"a": "a" * 40 + "!"}})
    assert time.monotonic() - started < HANG  # Python's re, reached through "#": hours
    assert [p["field"] for p in error.value.problems] == ["payload.child.a"]


def test_checking_a_large_invalid_schema_keeps_to_the_time_limit(in_memory, memory, writer):
    properties = {f"p{n}": {"type": "string", "maxLength": n} for n in range(80_000)}
    schema = {"type": "object", "properties": {**properties, "bad": {"minLength": -1}}}
    started = time.monotonic()
    response = writer.post(
        "/api/schemas/", {"id": "s", "version": "1", "schema": schema}, format="json"
    )
    assert time.monotonic() - started < HANG  # the Python meta-schema check: minutes
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_schema")
    assert not EventSchema.objects.exists()


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("database", ["default", "postgres"])
def test_a_registered_schema_is_found_by_its_id_on_every_database(request, database):
    if database == "postgres":
        database = request.getfixturevalue("postgres_alias")
    rows = EventSchema.objects.using(database)
    rows.create(schema_id="a", version="1", schema={"$id": "https://example.com/a", "minimum": 1})
    rows.create(schema_id="a", version="10", schema={"$id": "https://example.com/a", "minimum": 10})
    assert rows.document("https://example.com/a") == {"$id": "https://example.com/a", "minimum": 10}
    assert rows.document("urn:trove:schema:a:1")["minimum"] == 1
    assert rows.document("https://example.com/b") is None


def test_a_pattern_with_a_lone_surrogate_is_refused(in_memory):
    with pytest.raises(InvalidSchema, match="lone surrogate"):
        trove.register_schema("s", "1", {"pattern": "\ud800"})


def test_many_pattern_properties_keep_to_the_time_limit(in_memory):
    patterns = {f"^k{n}x": {"type": "integer"} for n in range(1_000)}
    trove.register_schema("s", "1", {"patternProperties": patterns})
    assert schemas.compiled_schema(SchemaRef("s")).fast is None  # keys × patterns there
    assert trove.create_event("s", {"k1x": 1, "other": "x"}).payload == {"k1x": 1, "other": "x"}
    started = time.monotonic()
    with pytest.raises(SchemaValidationError) as error:
        trove.create_event("s", {f"k{n}": n for n in range(200_000)} | {"k1x": "x"})
    assert time.monotonic() - started < HANG
    assert {p["validator"] for p in error.value.problems} <= {"type", "timeLimit"}


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"$id": "http://[::1"}, "schema.$id"),
        ({"$schema": "http://[::1"}, "schema.$schema"),
        (
            {"properties": {"a": {"$schema": "https://example.com/meta"}}},
            "schema.properties.a.$schema",
        ),
        (
            {"properties": {"a": {"$id": "http://[::1", "type": "string"}}},
            "schema.properties.a.$id",
        ),
    ],
)
def test_a_malformed_identifier_is_a_problem_listed(memory, writer, schema, field):
    response = writer.post(
        "/api/schemas/", {"id": "s", "version": "1", "schema": schema}, format="json"
    )
    assert response.status_code == 400
    assert field in [p["field"] for p in response.json()["error"]["problems"]]


def test_the_validation_rules_run_without_django():
    check = (
        "import sys, trove.validation; "
        "sys.exit(any(name.split('.')[0] == 'django' for name in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0
