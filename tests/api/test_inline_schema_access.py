"""Registering a schema needs ``trove.add_eventschema``, inline in an event too (SPEC §5).

A user who may only add events cannot register a schema by sending one inline, through
any of the paths that take an inline schema, on any backend; nothing is stored then. An
inline schema identical to the one registered under its (id, version) registers nothing,
so it needs no more than naming that schema by id.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

import trove
from trove.models import EventSchema

from .conftest import user_with

pytestmark = pytest.mark.django_db(databases="__all__")

SCHEMA = {"$id": "note+v2.0.0", "type": "object", "required": ["text"]}
TAKEOVER = {"$id": "note+v9.0.0", "type": "object"}


@pytest.fixture
def event_writer(django_user_model) -> APIClient:
    """May add events, not register schemas."""
    client = APIClient()
    client.force_authenticate(user_with(django_user_model, "event-writer", "add_event"))
    return client


def assert_refused(response) -> None:
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    assert "trove.add_eventschema" in error["message"]


def inline_requests(client: APIClient, schema: dict, existing: str):
    """Every way an inline schema reaches the API, each as a zero-argument call."""
    event = {"schema": schema, "payload": {"text": "hi"}}
    return {
        "json": lambda: client.post("/api/events/", event, format="json"),
        "compat": lambda: client.post("/api/events", event, format="json"),
        "batch": lambda: client.post("/api/events/", [event], format="json"),
        "multipart": lambda: client.post(
            "/api/events/",
            {"schema": json.dumps(schema), "payload": '{"text": "hi"}'},
            format="multipart",
        ),
        "version": lambda: client.post(f"/api/events/{existing}/versions/", event, format="json"),
    }


def test_an_inline_schema_needs_the_register_permission_everywhere(backend, event_writer):
    trove.register_schema("note", "1.0.0", {"type": "object"})
    existing = str(trove.create_event("note", {"text": "first"}).uuid)
    for path, call in inline_requests(event_writer, TAKEOVER, existing).items():
        assert_refused(call())
        assert EventSchema.objects.filter(schema_id="note").count() == 1, path
        assert trove.count_events() == 1, path
        assert len(trove.get_versions(existing)) == 1, path
    assert trove.get_event(existing).schema.version == "1.0.0"


def test_the_same_document_already_registered_needs_no_permission(backend, event_writer):
    trove.register_schema("note", "2.0.0", SCHEMA)
    existing = str(trove.create_event("note", {"text": "first"}).uuid)
    for path, call in inline_requests(event_writer, SCHEMA, existing).items():
        response = call()
        assert response.status_code == 201, (path, response.content)
    assert EventSchema.objects.filter(schema_id="note").count() == 1
    assert trove.count_events() == 5  # the first, json, compat, batch, multipart


def test_another_document_under_a_registered_version_is_refused_too(backend, event_writer):
    trove.register_schema("note", "2.0.0", {"type": "object"})
    response = event_writer.post(
        "/api/events/", {"schema": SCHEMA, "payload": {"text": "hi"}}, format="json"
    )
    assert_refused(response)
    assert trove.count_events() == 0


def test_a_user_who_may_register_registers_inline(backend, writer):
    response = writer.post(
        "/api/events/", {"schema": TAKEOVER, "payload": {"text": "hi"}}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["schema"] == {"id": "note", "version": "9.0.0"}
    assert EventSchema.objects.filter(schema_id="note", version="9.0.0").exists()
