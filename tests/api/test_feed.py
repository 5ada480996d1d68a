"""``GET /api/feed/`` on every backend, and the argument checks of the feed stream.

The stream itself is tested against a real server (``tests/test_feed_server.py``)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

import trove

pytestmark = pytest.mark.django_db(databases="__all__")


def test_the_feed_pages_through_every_version_by_position(backend, reader):
    a = trove.create_event("order.placed", {"n": 1}, producer="web")
    b = trove.create_event("note.created", {"n": 2}, producer="api")
    a2 = trove.append_version(a.uuid, {"n": 3})
    response = reader.get("/api/feed/", {"limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"results", "position", "next"}
    assert [e["position"] for e in page["results"]] == [a.position, b.position]
    assert page["position"] == b.position
    following = reader.get(page["next"]).json()
    assert [(e["id"]["id"], e["id"]["version"]) for e in following["results"]] == [(str(a.uuid), 2)]
    assert following["results"][0] == {
        **a2.to_dict(),
        "url": f"http://testserver/api/events/{a.uuid}/versions/2/",
    }
    empty = reader.get(following["next"]).json()
    assert empty["results"] == [] and empty["position"] == a2.position
    assert "after=" + str(a2.position) in empty["next"]


def test_the_feed_filters_by_schema_and_producer(backend, reader):
    a = trove.create_event("order.placed", {}, producer="web")
    b = trove.create_event("note.created", {}, producer="api")
    c = trove.create_event("order.placed", {}, producer="api")

    def positions(query):
        return [e["position"] for e in reader.get("/api/feed/", query).json()["results"]]

    assert positions({"schema": "order.placed"}) == [a.position, c.position]
    assert positions({"producer": ["web", "api"]}) == [a.position, b.position, c.position]
    assert positions({"schema": "order.placed", "producer": "api"}) == [c.position]
    page = reader.get("/api/feed/", {"schema": "order.placed", "limit": 1}).json()
    assert "schema=order.placed" in page["next"]
    assert positions({"after": a.position, "schema": "order.placed"}) == [c.position]


@pytest.mark.parametrize(
    "query",
    [
        {"after": "-1"},
        {"after": "x"},
        {"after": str(2**63)},
        {"limit": "0"},
        {"limit": "1.5"},
        {"schema": ""},
        {"producer": "a\x00b"},
    ],
)
def test_bad_feed_parameters_are_a_400_in_the_error_shape(memory, reader, query):
    trove.create_event("s", {})
    paths = ["/api/feed/"] if "limit" in query else ["/api/feed/", "/api/feed/stream/"]
    for path in paths:
        response = reader.get(path, query)
        assert response.status_code == 400, (path, query)
        assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("path", "query", "unknown"),
    [
        ("/api/feed/", {"aftr": "5"}, "aftr"),
        ("/api/feed/", {"after": "1", "schemas": "s", "offset": "3"}, "offset, schemas"),
        ("/api/feed/", {"timeout": "3"}, "timeout"),  # a stream parameter, not the page's
        ("/api/feed/stream/", {"limit": "3"}, "limit"),  # the page's, not the stream's
        ("/api/feed/stream/", {"last-event-id": "2"}, "last-event-id"),  # that is a header
    ],
)
def test_a_misspelt_or_foreign_parameter_is_a_400_naming_it(memory, reader, path, query, unknown):
    trove.create_event("s", {})
    response = reader.get(path, query)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert f"Unknown query parameter(s) {unknown}; known: " in error["message"]
    assert error["problems"][0]["field"] == unknown.split(",")[0]


def test_limit_is_capped_and_reading_needs_a_user(memory, reader):
    trove.create_events([{"schema": "s", "payload": {"i": i}} for i in range(1005)])
    assert len(reader.get("/api/feed/", {"limit": "5000"}).json()["results"]) == 1000
    assert len(reader.get("/api/feed/").json()["results"]) == 100
    from rest_framework.test import APIClient

    for path in ("/api/feed/", "/api/feed/stream/"):
        assert APIClient().get(path).status_code in (401, 403)


def test_stream_bounds_its_timeout_and_last_event_id(memory, reader):
    assert reader.get("/api/feed/stream/", {"timeout": "0"}).status_code == 400
    assert reader.get("/api/feed/stream/", {"timeout": "3601"}).status_code == 400
    bad = reader.get("/api/feed/stream/", HTTP_LAST_EVENT_ID="seven")
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["error"]["message"]


def test_the_openapi_document_describes_the_feed(memory, reader):
    document = reader.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    page = document["paths"]["/api/feed/"]["get"]
    assert {p["name"] for p in page["parameters"]} >= {"after", "limit", "schema", "producer"}
    stream = document["paths"]["/api/feed/stream/"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert {p["name"] for p in stream["parameters"]} >= {"after", "timeout", "Last-Event-ID"}
    event = document["components"]["schemas"]["EventDocument"]
    assert "position" in event["properties"]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_filtered_stream_keeps_alive_and_ends_while_other_versions_pour_in(memory, reader):
    """Versions the filter skips wake the stream without being sent: it must still send
    keep-alives and end after its timeout, not only once the store falls quiet."""
    writing = threading.Event()
    writing.set()

    def write() -> None:
        stop_at = time.monotonic() + 20  # a stream that waits for quiet ends after this
        try:
            while writing.is_set() and time.monotonic() < stop_at:
                trove.create_event("busy", {})
                time.sleep(0.02)
        finally:
            connections.close_all()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        response = reader.get("/api/feed/stream/", {"schema": "quiet", "timeout": "2"})
        chunks = list(response.streaming_content)
        ended_while_busy = writer.is_alive()
    finally:
        writing.clear()
        writer.join(10)
    assert ended_while_busy and b": keep-alive\n\n" in chunks
    assert not any(chunk.startswith(b"id:") for chunk in chunks)
