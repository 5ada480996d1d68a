"""Creating, versioning and reading events through the REST API, on every event backend."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(databases="__all__")

NOTE_SCHEMA = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
}


def create(client, body, **kwargs):
    return client.post("/api/events/", body, format="json", **kwargs)


def count(client) -> int:
    return client.get("/api/events/?limit=0").json()["count"]


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert set(response.json()) == {"error"}
    return response.json()["error"]


def content(client, file_id: str) -> bytes:
    response = client.get(f"/api/files/{file_id}/content/")
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_an_event_is_created_read_and_versioned(backend, writer):
    created = create(
        writer,
        {
            "schema": {"id": "note.created", "version": "1.0"},
            "payload": {"text": "hello", "author": {"name": "Jane"}},
            "producer": "web",
            "metadata": {"ip": "10.0.0.1"},
            "files": [
                {"contentType": "text/plain", "filename": "note.txt", "data": "plain text"},
                {
                    "contentType": "application/octet-stream",
                    "filename": "blob.bin",
                    "data": base64.b64encode(b"\x00\xff\x10").decode(),
                    "encoding": "base64",
                },
                {
                    "contentType": "application/pdf",
                    "isReference": True,
                    "data": "s3://bucket/report.pdf",
                },
            ],
        },
    )
    assert created.status_code == 201, created.content
    event = created.json()
    event_id = event["id"]["id"]
    assert event["id"]["version"] == 1
    assert created["Location"].endswith(f"/api/events/{event_id}/")
    assert event["schema"] == {"id": "note.created", "version": "1.0"}
    assert event["payload"] == {"text": "hello", "author": {"name": "Jane"}}
    assert (event["producer"], event["metadata"]) == ("web", {"ip": "10.0.0.1"})
    text, blob, reference = event["files"]
    assert content(writer, text["id"]) == b"plain text"
    assert content(writer, blob["id"]) == b"\x00\xff\x10"
    assert reference["isReference"] and reference["uri"] == "s3://bucket/report.pdf"
    assert writer.get(f"/api/events/{event_id}/").json() == event

    appended = writer.post(
        f"/api/events/{event_id}/versions/",
        {"payload": {"text": "edited"}, "expectedVersion": 1},
        format="json",
    )
    assert appended.status_code == 201, appended.content
    assert appended["Location"].endswith(f"/api/events/{event_id}/versions/2/")
    second = appended.json()
    assert second["id"] == {"id": event_id, "version": 2}
    assert (second["producer"], second["files"]) == ("web", event["files"])
    assert writer.get(f"/api/events/{event_id}/").json() == second
    versions = writer.get(f"/api/events/{event_id}/versions/").json()
    assert [v["payload"]["text"] for v in versions] == ["hello", "edited"]
    assert writer.get(f"/api/events/{event_id}/versions/1/").json() == event


def test_a_stale_expected_version_is_a_conflict(backend, writer):
    event_id = create(writer, {"schema": "note", "payload": {}}).json()["id"]["id"]
    path = f"/api/events/{event_id}/versions/"
    assert writer.post(path, {"payload": {"v": 2}}, format="json").status_code == 201
    stale = writer.post(path, {"payload": {"v": 3}, "expectedVersion": 1}, format="json")
    assert error(stale, 409)["code"] == "version_conflict"
    assert len(writer.get(path).json()) == 2


def test_a_client_chosen_id_is_kept_and_cannot_be_reused(backend, writer):
    chosen = str(uuid.uuid4())
    assert create(writer, {"id": chosen, "schema": "s", "payload": {}}).json()["id"]["id"] == chosen
    assert error(create(writer, {"id": chosen, "schema": "s", "payload": {"other": 1}}), 409)
    assert error(create(writer, {"id": "not-a-uuid", "schema": "s", "payload": {}}), 400)


@pytest.mark.parametrize(
    "path",
    [
        "/api/events/{unknown}/",
        "/api/events/{unknown}/versions/",
        "/api/events/{unknown}/links/",
        "/api/events/{unknown}/backlinks/",
        "/api/events/not-a-uuid/",
        "/api/events/{known}/versions/0/",
        "/api/events/{known}/versions/2/",
        "/api/events/{known}/versions/two/",
        "/api/events/{known}/versions/99999999999999999999/",
    ],
)
def test_what_does_not_exist_is_404(backend, writer, path):
    known = create(writer, {"schema": "s", "payload": {}}).json()["id"]["id"]
    response = writer.get(path.format(unknown=uuid.uuid4(), known=known))
    assert error(response, 404)["code"] == "not_found"


def test_appending_to_an_unknown_event_is_404(backend, writer):
    response = writer.post(f"/api/events/{uuid.uuid4()}/versions/", {"payload": {}}, format="json")
    assert error(response, 404)["code"] == "not_found"


def test_links_linked_events_and_backlinks_by_type(backend, writer):
    parent = create(writer, {"schema": "s", "payload": {"name": "parent"}}).json()
    other = create(writer, {"schema": "s", "payload": {"name": "other"}}).json()
    child = create(
        writer,
        {
            "schema": "s",
            "payload": {"name": "child"},
            "links": [
                {"type": "parent", "targetEvent": {"id": parent["id"]["id"], "version": 1}},
                {
                    "type": "see-also",
                    "targetEvent": {"id": other["id"]["id"]},
                    "metadata": {"n": 1},
                },
            ],
        },
    ).json()
    base = f"/api/events/{child['id']['id']}"
    assert [link["type"] for link in writer.get(f"{base}/links/").json()] == ["parent", "see-also"]
    assert writer.get(f"{base}/links/?type=see-also").json() == [
        {
            "type": "see-also",
            "targetEvent": {
                "id": other["id"]["id"],
                "version": None,
                "url": f"http://testserver/api/events/{other['id']['id']}/",
            },
            "metadata": {"n": 1},
        }
    ]
    assert writer.get(f"{base}/linked/?type=parent").json() == [parent]
    assert writer.get(f"/api/events/{parent['id']['id']}/backlinks/").json() == [child]
    assert writer.get(f"/api/events/{parent['id']['id']}/backlinks/?type=see-also").json() == []
    assert writer.get(f"{base}/links/?version=2").status_code == 404
    assert (
        error(writer.get(f"{base}/links/?version=first"), 400)["problems"][0]["field"] == "version"
    )


def test_a_payload_failing_its_schema_is_422_with_every_violation(backend, writer):
    assert (
        writer.post(
            "/api/schemas/", {"id": "note", "version": "1", "schema": NOTE_SCHEMA}, format="json"
        ).status_code
        == 201
    )
    response = create(writer, {"schema": "note", "payload": {"n": "three"}})
    failure = error(response, 422)
    assert failure["code"] == "schema_validation_failed"
    assert {p["field"] for p in failure["problems"]} == {"payload", "payload.n"}
    assert count(writer) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": {}}, "schema"),
        ({"schema": "s"}, "payload"),
        ({"schema": "s", "payload": ["not", "an", "object"]}, "payload"),
        ({"schema": "s", "payload": {}, "metadata": "text"}, "metadata"),
        ({"schema": "s", "payload": {}, "producer": ""}, "producer"),
        ({"schema": "s", "payload": {}, "prodcuer": "web"}, "prodcuer"),
        ({"schema": 42, "payload": {}}, "schema"),
        ({"schema": "s" * 201, "payload": {}}, "schema"),
        ({"schema": "s", "payload": {"text": "nul \u0000"}}, "payload"),
        ({"schema": "s", "payload": {}, "links": [{"type": "parent"}]}, "links[0].targetEvent"),
        (
            {
                "schema": "s",
                "payload": {},
                "files": [{"contentType": "text/plain\r\nX: y", "data": ""}],
            },
            "files[0].contentType",
        ),
    ],
)
def test_a_malformed_event_is_400_naming_the_field(backend, writer, body, field):
    failure = error(create(writer, body), 400)
    assert field in [p["field"] for p in failure["problems"]], failure
    assert count(writer) == 0


def test_a_body_that_is_not_json_is_400(backend, writer):
    response = writer.post("/api/events/", "{not json", content_type="application/json")
    assert error(response, 400)["code"] == "parse_error"


def test_a_failed_write_leaves_no_event_and_no_file(backend, writer):
    response = create(
        writer,
        {
            "schema": "s",
            "payload": {},
            "files": [{"contentType": "text/plain", "data": "orphan candidate"}],
            "links": [{"type": "parent", "targetEvent": {"id": str(uuid.uuid4())}}],
        },
    )
    assert "does not exist" in error(response, 400)["message"]
    assert count(writer) == 0
    digest = "sha256:" + hashlib.sha256(b"orphan candidate").hexdigest()
    assert not storages.files.content_exists(digest)


def test_a_batch_is_created_whole_or_not_at_all(backend, writer):
    parent_id = str(uuid.uuid4())
    batch = [
        {"id": parent_id, "schema": "s", "payload": {"n": 1}},
        {
            "schema": "s",
            "payload": {"n": 2},
            "links": [{"type": "parent", "targetEvent": {"id": parent_id}}],
        },
    ]
    created = create(writer, batch)
    assert created.status_code == 201, created.content
    assert [e["payload"]["n"] for e in created.json()] == [1, 2]

    failing = [
        {"schema": "s", "payload": {"n": 3}},
        {
            "schema": "s",
            "payload": {"n": 4},
            "links": [{"type": "parent", "targetEvent": {"id": str(uuid.uuid4())}}],
        },
    ]
    assert error(create(writer, failing), 400)
    invalid = [{"schema": "s", "payload": {"n": 5}}, {"schema": "s", "payload": "five"}]
    assert error(create(writer, invalid), 400)["problems"][0]["field"] == "[1].payload"
    assert count(writer) == 2


def test_a_multipart_upload_becomes_an_event_with_files(backend, writer):
    parent = create(writer, {"schema": "s", "payload": {}}).json()
    response = writer.post(
        "/api/events/",
        {
            "schema": "note.created",
            "payload": json.dumps({"text": "with files"}),
            "metadata": json.dumps({"source": "form"}),
            "links": json.dumps([{"type": "parent", "targetEvent": {"id": parent["id"]["id"]}}]),
            "producer": "uploader",
            "attachment": SimpleUploadedFile("notes.txt", b"some notes", "text/plain"),
            "image": SimpleUploadedFile("pixel.png", b"\x89PNG\r\n\x1a\n", "image/png"),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    event = response.json()
    assert (event["payload"], event["metadata"], event["producer"]) == (
        {"text": "with files"},
        {"source": "form"},
        "uploader",
    )
    assert event["links"][0]["targetEvent"]["id"] == parent["id"]["id"]
    files = {f["filename"]: f for f in event["files"]}
    assert files["notes.txt"]["contentType"] == "text/plain"
    assert content(writer, files["notes.txt"]["id"]) == b"some notes"
    assert content(writer, files["pixel.png"]["id"]) == b"\x89PNG\r\n\x1a\n"


def test_multipart_json_text_that_is_not_json_is_400(backend, writer):
    response = writer.post(
        "/api/events/", {"schema": "s", "payload": "{not json"}, format="multipart"
    )
    assert error(response, 400)["problems"][0]["field"] == "payload"
    assert count(writer) == 0


@pytest.mark.parametrize(
    "changed",
    [
        {},
        {"payload": {"n": 2}},
        {"producer": "elsewhere"},
        {"metadata": {"m": 2}},
        {"schema": "t"},
        {"files": [{"contentType": "text/plain", "filename": "a.txt", "data": "other bytes"}]},
        {"files": [{"contentType": "text/csv", "filename": "a.txt", "data": "bytes"}]},
        {"files": []},
    ],
)
def test_a_repeated_create_answers_the_stored_event_and_anything_else_is_a_conflict(
    backend, writer, changed
):
    body = {
        "id": str(uuid.uuid4()),
        "schema": "s",
        "producer": "p",
        "payload": {"n": 1},
        "metadata": {"m": 1},
        "files": [{"contentType": "text/plain", "filename": "a.txt", "data": "bytes"}],
    }
    first = create(writer, body)
    assert first.status_code == 201
    again = create(writer, {**body, **changed})
    if changed:
        assert error(again, 409)["code"] == "version_conflict"
    else:
        assert again.status_code == 200
        assert again.json() == first.json()
    versions = writer.get(f"/api/events/{body['id']}/versions/").json()
    assert [doc["payload"] for doc in versions] == [{"n": 1}]
