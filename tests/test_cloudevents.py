"""CloudEvents in and out (SPEC §10), with the official SDK (``cloudevents`` on PyPI) as
the producer and the parser: structured, batch and binary HTTP modes against the test
client and a real gunicorn, idempotent redelivery, and exported CloudEvents that the SDK
reads as valid ones."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime

import pytest
import requests
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

import trove
from tests.interchange_corpus import build_corpus, register_schemas
from tests.test_feed_server import Project
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(databases="__all__")
URL = "/api/cloudevents/"
FORMAT = JSONFormat()


def order(n: int, id: str | None = None, **extra) -> CloudEvent:
    return CloudEvent(
        {"type": "order.placed", "source": "shop", "id": id or f"order-{n}", **extra},
        {"n": n},
    )


def structured(event: CloudEvent) -> tuple[bytes, dict[str, str]]:
    message = to_structured(event, FORMAT)
    return message.body, dict(message.headers)


def binary(event: CloudEvent) -> tuple[bytes, dict[str, str]]:
    message = to_binary(event, FORMAT)
    return message.body, dict(message.headers)


def batch(events: list[CloudEvent]) -> tuple[bytes, dict[str, str]]:
    """The SDK has no batch writer: a JSON array of the events it writes, as the batch
    format defines it."""
    items = [json.loads(FORMAT.write(event)) for event in events]
    return json.dumps(items).encode(), {"content-type": "application/cloudevents-batch+json"}


@pytest.fixture
def client():
    storages.close_all()
    register_schemas()
    user = User.objects.create_user("writer", password="x")
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    api = APIClient()
    api.force_authenticate(User.objects.get(pk=user.pk))
    yield api
    storages.close_all()


def post(client, body: bytes, headers: dict[str, str]):
    headers = dict(headers)
    content_type = headers.pop("content-type", None)  # none in binary mode without datacontenttype
    return client.generic("POST", URL, body, content_type=content_type, headers=headers)


@pytest.mark.parametrize("mode", [structured, binary])
def test_one_cloudevent_is_stored_once_however_often_delivered(client, mode):
    event = order(1, time=datetime(2026, 11, 30, 10, tzinfo=UTC), subject="cart-9", tenant="acme")
    first = post(client, *mode(event))
    assert first.status_code == 201, first.content
    document = first.json()
    assert document["id"] == {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "shop\norder-1")),
        "version": 1,
    }
    assert document["schema"] == {"id": "order.placed", "version": "1.0"}
    assert document["producer"] == "shop" and document["payload"] == {"n": 1}
    kept = document["metadata"]["cloudevents"]
    assert kept["id"] == "order-1" and kept["subject"] == "cart-9" and kept["tenant"] == "acme"
    assert kept["time"].startswith("2026-11-30T10:00:00")
    again = post(client, *mode(event))
    assert again.status_code == 200 and again.json() == document
    assert trove.count_events({"schema": "order.placed"}) == 1


def test_a_batch_is_stored_all_or_nothing(client):
    response = post(client, *batch([order(1), order(2)]))
    assert response.status_code == 201, response.content
    assert [d["payload"] for d in response.json()] == [{"n": 1}, {"n": 2}]
    assert post(client, *batch([order(1), order(2)])).status_code == 200

    bad = CloudEvent({"type": "order.placed", "source": "shop", "id": "bad"}, {"no": "n"})
    failed = post(client, *batch([order(3), bad]))
    assert failed.status_code == 422
    assert set(failed.json()["error"]) == {"code", "message", "problems"}
    assert trove.count_events({"schema": "order.placed"}) == 2


def test_dataschema_pins_the_schema_version(client):
    trove.register_schema("order.placed", "2.0", {"type": "object", "required": ["m"]})
    event = order(5, dataschema="urn:trove:schema:order.placed:1.0")
    response = post(client, *structured(event))
    assert response.status_code == 201, response.content
    assert response.json()["schema"] == {"id": "order.placed", "version": "1.0"}
    assert post(client, *structured(order(6))).status_code == 422  # latest, 2.0, needs m


def test_unknown_content_types_and_malformed_events_get_the_error_shape(client):
    response = client.post(URL, "hello", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    missing = client.post(
        URL,
        json.dumps({"specversion": "1.0", "data": {}}),
        content_type="application/cloudevents+json",
    )
    assert missing.status_code == 400
    fields = {p["field"] for p in missing.json()["error"]["problems"]}
    assert {"id", "source", "type"} <= fields
    plain_json = client.post(URL, '{"n": 1}', content_type="application/json")  # no ce-*
    assert plain_json.status_code == 400
    assert trove.count_events() == 0


def test_hostile_bodies_are_refused_and_change_nothing(client, settings):
    deep: dict = {}
    for _ in range(200):
        deep = {"d": deep}
    body, headers = structured(CloudEvent({"type": "t", "source": "s", "id": "1"}, deep))
    assert post(client, body, headers).status_code == 400
    settings.TROVE = {**settings.TROVE, "max_request_size": 1000}
    body, headers = batch([order(n) for n in range(50)])
    too_big = post(client, body, headers)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"
    assert trove.count_events() == 0


def test_writing_needs_the_add_event_permission(client):
    anonymous = APIClient()
    response = post(anonymous, *structured(order(1)))
    assert response.status_code in (401, 403)
    assert trove.count_events() == 0


def test_exported_cloudevents_validate_with_the_sdk_and_import_back(tmp_path):
    source = {
        "events": {"plugin": "storage-json-file", "options": {"directory": str(tmp_path / "a")}},
        "files": {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "fa")}},
    }
    target = {
        "events": {"plugin": "storage-orm"},
        "files": {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "fb")}},
    }
    storages.close_all()
    with override_settings(TROVE={"storage": source}):
        written = build_corpus(orders=2)
        out = io.StringIO()
        call_command(
            "trove_export",
            "--all-versions",
            "--format",
            "cloudevents",
            "--files",
            str(tmp_path / "bytes"),
            stdout=out,
            stderr=io.StringIO(),
        )
        before = [e.to_dict() for e in trove.read_feed(0, 100)]
    lines = out.getvalue().splitlines()
    parsed = [FORMAT.read(None, line) for line in lines]
    note = written[2]
    third = parsed[2]
    assert third.get_id() == f"{note.uuid}:3" and third.get_source() == "web-api"
    assert third.get_type() == "note.created" and third.get_data() == note.payload
    assert third.get_dataschema() == "urn:trove:schema:note.created:2.0"
    attributes = third.get_attributes()
    assert attributes["troveid"] == str(note.uuid) and attributes["troveversion"] == 3
    assert json.loads(attributes["trovefiles"]) == [f.to_dict() for f in note.files]
    storages.close_all()
    with override_settings(TROVE={"storage": target}):
        (tmp_path / "ce.jsonl").write_text(out.getvalue())
        call_command(
            "trove_import",
            str(tmp_path / "ce.jsonl"),
            "--files",
            str(tmp_path / "bytes"),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        after = [e.to_dict() for e in trove.read_feed(0, 100)]
    storages.close_all()
    for document in before + after:
        document.pop("position")
    assert after == before


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    project = Project("sqlite", tmp_path_factory.mktemp("cloudevents-server"))
    project.start()
    yield project
    project.stop()


def test_the_sdk_writes_to_a_real_server_in_every_mode(server):
    session = requests.Session()
    session.headers["Authorization"] = server.auth
    url = f"{server.url}{URL}"
    typed = order(2, "b-1", datacontenttype="application/json")
    for mode, event in ((structured, order(1, "s-1")), (binary, typed)):
        body, headers = mode(event)
        created = session.post(url, data=body, headers=headers, timeout=30)
        assert created.status_code == 201, created.text
        again = session.post(url, data=body, headers=headers, timeout=30)
        assert again.status_code == 200 and again.json() == created.json()
    body, headers = batch([order(3, "m-1"), order(4, "m-2")])
    created = session.post(url, data=body, headers=headers, timeout=30)
    assert created.status_code == 201 and len(created.json()) == 2
    refused = session.post(url, data=b"x", headers={"content-type": "text/plain"}, timeout=30)
    assert refused.status_code == 415 and "error" in refused.json()
    feed = session.get(f"{server.url}/api/feed/?limit=10", timeout=30).json()
    assert [e["payload"]["n"] for e in feed["results"]] == [1, 2, 3, 4]
