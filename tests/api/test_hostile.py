"""Every endpoint under ``/api/``, asked by a hostile client: no 5xx, the one error shape,
and nothing stored (SPEC §11).

The endpoints are read from the URL resolver, so a new one is walked without editing this
file. Each gets hostile bodies (just over the size limit, nested 65 and 100 000 levels,
malformed, wrong types, NUL, lone surrogates, bytes that are not UTF-8, content types that
lie), hostile query strings and path segments (traversal, NUL, over-long), and an HTML
``Accept``; the client holds every Trove permission, so only the input can be refused.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

import trove
from trove.models import EventSchema
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(databases="__all__")

LIMIT = 1024 * 1024  # large enough for the 100 000-level bodies to be read
PLACEHOLDER = "HOSTILE-PLACEHOLDER-{}"


def api_routes() -> list[tuple[str, list[str]]]:
    """Each URL pattern under /api/ as (path with placeholders, names of its arguments)."""

    def walk(patterns, namespace: str) -> Iterator[tuple[str, list[str]]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}:{pattern.namespace}" if pattern.namespace else namespace
                yield from walk(pattern.url_patterns, inner.strip(":"))
            elif isinstance(pattern, URLPattern) and pattern.name:
                names = list(pattern.pattern.regex.groupindex)
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                kwargs = {arg: PLACEHOLDER.format(i) for i, arg in enumerate(names)}
                try:
                    yield reverse(name, kwargs=kwargs), names
                except Exception:  # a name reversing to another pattern's path
                    continue

    routes = {path: names for path, names in walk(get_resolver().url_patterns, "")}
    return sorted((p, n) for p, n in routes.items() if p.startswith("/api/"))


def nested_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def hostile_bodies() -> list[tuple[str, str, bytes]]:
    """(what, content type, body): none of them can be stored by any endpoint; the first
    few are also sent asking for HTML."""
    deep65 = nested_text(65)
    huge = b'{"schema": "s", "payload": {"text": "' + b"x" * LIMIT + b'"}}'
    json_bodies = {
        "an empty object": b"{}",
        "just over max_request_size": huge,
        "payload nested 65": f'{{"schema": "s", "payload": {deep65}}}'.encode(),
        "schema nested 65": f'{{"id": "d", "version": "1", "schema": {deep65}}}'.encode(),
        "inline schema nested 65": (
            f'{{"schema": {{"$id": "d", "p": {deep65}}}, "payload": {{}}}}'.encode()
        ),
        "query nested 65": f'{{"payload": {{"a": {deep65}}}}}'.encode(),
        "nested 100000": ("[" * 100_000 + "]" * 100_000).encode(),
        "object nested 100000": nested_text(100_000).encode(),
        "malformed": b'{"schema": "s", "payload": {',
        "not an object": b'"just text"',
        "a number": b"1e999999",
        "null": b"null",
        "wrong types": b'{"schema": 5, "payload": [], "limit": "x", "version": {}}',
        "NaN": b'{"schema": "s", "payload": {"n": NaN}}',
        "huge integer": b'{"schema": "s", "payload": {"n": ' + b"9" * 5000 + b"}}",
        "NUL": b'{"schema": "s", "payload": {"t": "\\u0000"}, "id": "d", "version": "1"}',
        "lone surrogate": b'{"schema": "s\\ud800", "payload": {"\\udfff": 1}}',
        "not UTF-8": b'{"schema": "s", "payload": {"t": "\xff\xfe\xfd"}}',
        "bad content type": b'{"schema": "s", "payload": {}, "files": '
        b'[{"contentType": "text/html\\r\\nX-Evil: 1", "data": "x"}]}',
        "traversal in a schema id": b'{"id": "../../etc/passwd", "version": "../1", "schema": 1}',
    }
    bodies = [(what, "application/json", body) for what, body in json_bodies.items()]
    valid = b'{"schema": "s", "payload": {}}'
    bodies += [
        ("text/plain", "text/plain", valid),
        ("unknown charset", "application/json; charset=nope", b"\xff" + valid),
        ("utf-16 declared", "application/json; charset=utf-16", valid),
        ("form", "application/x-www-form-urlencoded", b"schema=s&payload=%7B%7D"),
        ("multipart without boundary", "multipart/form-data", valid),
        ("multipart bad boundary", "multipart/form-data; boundary=\x01", valid),
        ("xml", "application/xml", b"<event/>"),
    ]
    boundary = "b0und"

    def part(name: str, value: bytes, extra: bytes = b"") -> bytes:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        return head + extra + b"\r\n\r\n" + value + b"\r\n"

    multipart_type = f"multipart/form-data; boundary={boundary}"
    end = f"--{boundary}--\r\n".encode()
    bodies += [
        (
            "multipart text over the limit",
            multipart_type,
            part("schema", b"s") + part("payload", b'{"t": "' + b"x" * LIMIT + b'"}') + end,
        ),
        (
            "multipart deep payload",
            multipart_type,
            part("schema", b"s") + part("payload", nested_text(100_000).encode()) + end,
        ),
        (
            "multipart upload with a bad type",
            multipart_type,
            part("schema", b"s")
            + part("payload", b"{}")
            + part("f", b"x", b'; filename="../../x"\r\nContent-Type: text/plain\x01')
            + end,
        ),
        ("multipart truncated", multipart_type, part("schema", b"s")[:-3]),
    ]
    return bodies


HOSTILE_QUERIES = [
    urllib.parse.urlencode(query)
    for query in (
        {"payload.a": nested_text(65)},
        {"payload.a": "[" * 100_000},
        {"schema": "\x00"},
        {"limit": "-1"},
        {"offset": "9" * 40},
        {"ordering": "payload." + "a." * 5000},
        {"type": "../../etc/passwd"},
        {"version": "0"},
        {"start": "not-a-date"},
        {"format": "xml"},
    )
] + ["producer=%ED%A0%80", "schema=%FF%FE", "payload.%FF=1", "type=%00"]
HOSTILE_SEGMENTS = ["../../etc/passwd", "%00", "x" * 3000, "%ED%A0%80", "..", "%FF"]


def stored() -> tuple[int, int, int]:
    """How many events, files and schemas are stored."""
    files = storages.files
    if hasattr(files, "_records"):  # the memory file storage
        count = len(files._records)
    else:
        root = os.path.join(files.storage.location, "records")
        count = sum(len(names) for _, _, names in os.walk(root))
    return trove.count_events(), count, EventSchema.objects.count()


def assert_answer(response, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.content[:300])
    if response.status_code >= 400 and response["Content-Type"].startswith("application/json"):
        error = response.json()["error"]
        assert set(error) == {"code", "message", "problems"}, what
        text = json.dumps(error)
        assert "Traceback" not in text and "/tmp/" not in text, (what, text)


@pytest.fixture
def seeded(backend, settings, writer) -> dict[str, str]:
    """One schema, one event with a file; the values for each path argument."""
    settings.TROVE = {**settings.TROVE, "max_request_size": LIMIT}
    trove.register_schema("s", "1", {"type": "object"})
    event = trove.create_event("s", {}, files=[trove.NewFile(b"x", "text/plain", "x.txt")])
    return {
        "event_id": str(event.uuid),
        "version": "1",
        "file_id": str(event.files[0].id),
        "schema_id": "s",
    }


def concrete(path: str, names: list[str], values: dict[str, str]) -> str:
    for index, name in enumerate(names):
        path = path.replace(PLACEHOLDER.format(index), values.get(name, "x"))
    return path


def test_the_walk_covers_the_api():
    paths = {path for path, _ in api_routes()}
    assert len(paths) >= 12
    assert "/api/query/" in paths and "/api/events" in paths


def test_every_endpoint_refuses_hostile_input_and_stores_nothing(seeded, writer):
    before = stored()
    bodies = hostile_bodies()
    routes = api_routes()
    client: APIClient = writer
    for template, names in routes:
        path = concrete(template, names, seeded)
        takes_posts = client.post(path, b"{}", content_type="application/json").status_code != 405
        for what, content_type, body in bodies if takes_posts else ():
            response = client.generic("POST", path, body, content_type=content_type)
            assert_answer(response, f"POST {path} {what}")
        for query in HOSTILE_QUERIES:
            assert_answer(client.get(f"{path}?{query}"), f"GET {path}?{query[:80]}")
        for accept in ("text/html", "application/xml", "*/*;q=0, x/y"):
            assert_answer(client.get(path, HTTP_ACCEPT=accept), f"GET {path} {accept}")
            for what, content_type, body in bodies[:4] if takes_posts else ():
                response = client.generic(
                    "POST", path, body, content_type=content_type, HTTP_ACCEPT=accept
                )
                assert_answer(response, f"POST {path} {what} as {accept}")
        for method in ("PUT", "PATCH", "DELETE"):
            assert_answer(client.generic(method, path, b"{}"), f"{method} {path}")
        for name in names:
            for segment in HOSTILE_SEGMENTS:
                hostile = {**seeded, name: segment}
                bad_path = concrete(template, names, hostile)
                assert_answer(client.get(bad_path), f"GET {bad_path}")
                assert_answer(client.post(bad_path, {}, format="json"), f"POST {bad_path}")
    assert stored() == before


def test_hostile_paths_name_nothing_on_the_file_system(seeded, writer):
    for segment in ("..%2F..%2F..%2Fetc%2Fpasswd", urllib.parse.quote("/etc/passwd", safe="")):
        for path in (f"/api/files/{segment}/content/", f"/api/events/{segment}/"):
            response = writer.get(path)
            assert response.status_code == 404
            assert_answer(response, path)
            assert b"root:" not in response.content
