"""Registering and reading JSON Schemas, and the original Trove client's way of sending
them inline with each event to ``POST /api/events`` (no trailing slash)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

import trove
from trove import schemas

pytestmark = pytest.mark.django_db

NOTE = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
INLINE = {"$id": "test.event+v1.0.0", **NOTE}


def register(client, schema_id="note", version="1.0", schema=NOTE):
    return client.post(
        "/api/schemas/", {"id": schema_id, "version": version, "schema": schema}, format="json"
    )


def test_a_schema_is_registered_once_and_read_back(memory, writer):
    created = register(writer)
    assert created.status_code == 201
    assert created["Location"].endswith("/api/schemas/note/1.0/")
    assert created.json()["schema"] == NOTE
    assert register(writer).status_code == 200
    conflict = register(writer, schema={"type": "object"})
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "version_conflict")
    assert writer.get("/api/schemas/note/1.0/").json() == created.json()
    listed = writer.get("/api/schemas/").json()
    assert listed["count"] == 1 and listed["results"] == [created.json()]


def test_schema_ids_may_hold_slashes(memory, writer):
    assert register(writer, schema_id="acme/orders/placed").status_code == 201
    assert writer.get("/api/schemas/acme/orders/placed/1.0/").json()["id"] == "acme/orders/placed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "s", "version": "1", "schema": {"type": "no-such-type"}}, "schema.type"),
        ({"id": "s", "version": "1", "schema": ["not", "an", "object"]}, "schema"),
        ({"id": "", "version": "1", "schema": {}}, "id"),
        ({"id": "s", "version": "1/2", "schema": {}}, "version"),
        ({"id": "s", "schema": {}}, "version"),
    ],
)
def test_an_invalid_schema_is_400(memory, writer, body, field):
    response = writer.post("/api/schemas/", body, format="json")
    assert response.status_code == 400
    assert field in [p["field"] for p in response.json()["error"]["problems"]]
    assert not schemas.list_schemas().exists()


def test_an_unknown_schema_is_404(memory, writer):
    assert writer.get("/api/schemas/nothing/1/").status_code == 404


def test_strict_mode_refuses_unregistered_schemas(memory, settings, writer):
    settings.TROVE = {**settings.TROVE, "strict_schemas": True}
    response = writer.post("/api/events/", {"schema": "nothing", "payload": {}}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "schema_not_found")


def test_the_original_clients_inline_schema_is_registered_by_name_and_version(memory, writer):
    body = {"schema": INLINE, "payload": {"text": "Hello, world!"}, "producer": "test-producer"}
    response = writer.post("/api/events", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["schema"] == {"id": "test.event", "version": "1.0.0"}
    assert schemas.get_schema("test.event", "1.0.0").schema == INLINE
    assert writer.post("/api/events", body, format="json").status_code == 201
    sent_on = writer.get("/api/events?schema=test.event")
    assert (sent_on.status_code, sent_on["Location"]) == (302, "/api/events/?schema=test.event")

    other = {"$id": "https://example.com/order.json", "type": "object"}
    plain = writer.post("/api/events", {"schema": other, "payload": {}}, format="json")
    assert plain.json()["schema"] == {"id": "https://example.com/order.json", "version": "1"}


def test_the_original_clients_multipart_form_is_accepted(memory, writer):
    response = writer.post(
        "/api/events",
        {
            "schema": json.dumps(INLINE),
            "payload": json.dumps({"text": "Hello, world!"}),
            "producer": "test-producer",
            "metadata": json.dumps({"tags": ["test", "api"]}),
            "file1": SimpleUploadedFile("test.txt", b"test content", "text/plain"),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    event = response.json()
    assert event["schema"] == {"id": "test.event", "version": "1.0.0"}
    assert event["metadata"] == {"tags": ["test", "api"]}
    assert [(f["filename"], f["contentType"]) for f in event["files"]] == [
        ("test.txt", "text/plain")
    ]


def test_an_event_failing_its_inline_schema_registers_nothing(memory, writer):
    response = writer.post("/api/events", {"schema": INLINE, "payload": {}}, format="json")
    assert response.status_code == 422
    assert schemas.get_schema("test.event", "1.0.0") is None
    assert trove.count_events() == 0


def test_an_inline_schema_conflicting_with_a_registered_one_is_409(memory, writer):
    assert register(writer, "test.event", "1.0.0", {"type": "object"}).status_code == 201
    response = writer.post(
        "/api/events", {"schema": INLINE, "payload": {"text": "x"}}, format="json"
    )
    assert response.status_code == 409
    assert trove.count_events() == 0
