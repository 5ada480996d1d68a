"""SPEC §11's limits as a client meets them: 413 for a body beyond ``max_request_size``,
400 for JSON nested beyond ``max_json_depth`` (even far past Python's recursion limit), 400
for names and content types no backend may hold, and uploads never silently dropped."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.test import APIRequestFactory

import trove
from trove.api.parsers import TroveJSONParser
from trove.exceptions import InvalidEvent, InvalidSchema, QueryError
from trove.models import EventSchema

pytestmark = pytest.mark.django_db(databases="__all__")

LIMIT = 4096


def nested(depth: int, leaf=None):
    """A value nested ``depth`` levels deep (alternating objects and lists)."""
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def deep_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "problems"}
    if code:
        assert error["code"] == code
    return error


@pytest.fixture
def small_requests(settings):
    settings.TROVE = {**settings.TROVE, "max_request_size": LIMIT}


# max_request_size -------------------------------------------------------------------------


def event_of_size(size: int) -> bytes:
    head, tail = b'{"schema": "s", "payload": {"text": "', b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_a_json_body_over_the_limit_is_413_and_nothing_is_stored(backend, small_requests, writer):
    at_limit = writer.post("/api/events/", event_of_size(LIMIT), content_type="application/json")
    assert at_limit.status_code == 201
    for path in ("/api/events/", "/api/events", "/api/query/", "/api/schemas/"):
        response = writer.post(path, event_of_size(LIMIT + 1), content_type="application/json")
        error = assert_error(response, 413, "request_too_large")
        assert str(LIMIT) in error["message"]
    assert trove.count_events() == 1


def test_the_limit_holds_whatever_content_length_says(small_requests):
    """A body is counted as it is read, so a missing or lying length changes nothing."""
    request = APIRequestFactory().post("/api/events/")
    body = event_of_size(LIMIT + 1)
    request.META.pop("CONTENT_LENGTH", None)
    with pytest.raises(Exception) as caught:
        TroveJSONParser().parse(io.BytesIO(body), "application/json", {"request": request})
    assert caught.value.status_code == 413
    fits = TroveJSONParser().parse(
        io.BytesIO(event_of_size(LIMIT)), "application/json", {"request": request}
    )
    assert fits["schema"] == "s"


def test_multipart_text_counts_and_uploaded_files_do_not(backend, small_requests, writer):
    big_file = io.BytesIO(b"f" * (LIMIT * 4))
    big_file.name = "big.bin"
    stored = writer.post(
        "/api/events/", {"schema": "s", "payload": "{}", "upload": big_file}, format="multipart"
    )
    assert stored.status_code == 201, stored.content
    assert stored.json()["files"][0]["size"] == LIMIT * 4
    text = json.dumps({"text": "x" * LIMIT})
    response = writer.post("/api/events/", {"schema": "s", "payload": text}, format="multipart")
    assert_error(response, 413, "request_too_large")
    assert trove.count_events() == 1


# max_json_depth ---------------------------------------------------------------------------


def test_payload_metadata_and_link_metadata_nest_at_most_max_json_depth(backend, writer):
    target = str(trove.create_event("s", {}).uuid)
    assert (
        writer.post(
            "/api/events/", {"schema": "s", "payload": {"v": nested(63)}}, format="json"
        ).status_code
        == 201
    )
    bodies = [
        {"schema": "s", "payload": {"v": nested(64)}},
        {"schema": "s", "payload": {}, "metadata": {"v": nested(64)}},
        {
            "schema": "s",
            "payload": {},
            "links": [{"type": "t", "targetEvent": {"id": target}, "metadata": {"v": nested(64)}}],
        },
        [{"schema": "s", "payload": {"v": nested(64)}}],
    ]
    for body in bodies:
        error = assert_error(writer.post("/api/events/", body, format="json"), 400)
        assert "deeper than 64" in error["message"]
    appended = writer.post(
        f"/api/events/{target}/versions/", {"payload": {"v": nested(64, 1)}}, format="json"
    )
    assert_error(appended, 400)
    assert trove.count_events() == 2


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_json_is_400_everywhere_it_is_read(memory, writer, depth):
    deep = deep_text(depth)
    event = f'{{"schema": "s", "payload": {deep}}}'
    for path, body in (
        ("/api/events/", event),
        ("/api/events", event),
        ("/api/events/", f"[{event}]"),
        ("/api/query/", f'{{"payload": {{"a": {deep}}}}}'),
        ("/api/schemas/", f'{{"id": "d", "version": "1", "schema": {deep}}}'),
        ("/api/events/", f'{{"schema": {{"$id": "d", "properties": {deep}}}, "payload": {{}}}}'),
    ):
        assert_error(writer.post(path, body, content_type="application/json"), 400)
    multipart = writer.post("/api/events/", {"schema": "s", "payload": deep}, format="multipart")
    assert_error(multipart, 400)
    inline = writer.post(
        "/api/events/",
        {"schema": f'{{"$id": "d", "properties": {deep}}}', "payload": "{}"},
        format="multipart",
    )
    assert_error(inline, 400)
    listed = writer.get("/api/events/", {"payload.a": deep})
    assert_error(listed, 400)
    assert trove.count_events() == 0
    assert not EventSchema.objects.exists()


def test_the_python_api_refuses_the_same_depths(memory):
    too_deep = nested(65)
    with pytest.raises(InvalidEvent):
        trove.create_event("s", {"v": nested(64)})
    with pytest.raises(InvalidEvent):
        trove.create_event("s", {}, metadata={"v": too_deep})
    with pytest.raises(InvalidSchema):
        trove.register_schema("d", "1", {"properties": too_deep})
    with pytest.raises(QueryError):
        trove.query_events({"payload": {"a": too_deep}})
    very_deep: dict = {}
    for _ in range(100_000):
        very_deep = {"a": very_deep}
    with pytest.raises(InvalidEvent):
        trove.create_event("s", very_deep)
    target = trove.create_event("s", {}).uuid
    with pytest.raises(InvalidEvent):
        trove.create_event(
            "s", {}, links=[{"type": "t", "targetEvent": target, "metadata": very_deep}]
        )
    with pytest.raises(InvalidSchema):
        trove.register_schema("d", "1", very_deep)
    with pytest.raises(QueryError):
        trove.query_events({"payload": {"a": very_deep}})
    assert trove.count_events() == 1


# Names and content types -------------------------------------------------------------------


def test_names_have_one_limit_on_every_backend(backend, writer):
    target = str(trove.create_event("s", {}).uuid)
    long_name = "n" * 201
    for body in (
        {"schema": "s", "payload": {}, "producer": long_name},
        {"schema": long_name, "payload": {}},
        {"schema": {"id": "s", "version": "v" * 51}, "payload": {}},
        {"schema": "s", "payload": {}, "links": [{"type": long_name, "targetEvent": target}]},
    ):
        assert_error(writer.post("/api/events/", body, format="json"), 400)
    with pytest.raises(InvalidEvent):
        trove.create_event("s", {}, links=[{"type": long_name, "targetEvent": target}])
    with pytest.raises(InvalidEvent):
        trove.create_event("s", {}, files=[trove.NewFile(b"x", filename="f" * 256)])
    with pytest.raises(InvalidSchema):
        trove.register_schema("s", "1/2", {})
    assert trove.count_events() == 1


@pytest.mark.parametrize(
    "content_type", ["text/plain\n", "text/plain\r\nX-Evil: 1", "text", "text/plain; a=\x01"]
)
def test_a_content_type_must_be_a_media_type(backend, writer, content_type):
    body = {"schema": "s", "payload": {}, "files": [{"contentType": content_type, "data": "x"}]}
    assert_error(writer.post("/api/events/", body, format="json"), 400)
    with pytest.raises(InvalidEvent):
        trove.create_event("s", {}, files=[trove.NewFile(b"x", content_type)])
    assert trove.count_events() == 0


# Uploads are never dropped -------------------------------------------------------------------


def multipart(filename_header: bytes) -> tuple[bytes, str]:
    boundary = "trove-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="schema"\r\n\r\ns\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{{}}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="upload"; '
    ).encode()
    body += filename_header + b"\r\nContent-Type: text/plain\r\n\r\nthe bytes\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "header, filename",
    [
        (b'filename="r\xe9sum\xe9.txt"', "r\ufffdsum\ufffd.txt"),
        (b'filename=".."', "upload"),
        (b"filename*=x-unknown''notes.txt", "upload"),
        (b'filename="plain.txt"', "plain.txt"),
    ],
)
def test_an_upload_with_an_unusable_name_is_kept_under_a_safe_one(
    backend, writer, header, filename
):
    body, content_type = multipart(header)
    response = writer.post("/api/events/", body, content_type=content_type)
    assert response.status_code == 201, response.content
    (file,) = response.json()["files"]
    assert file["filename"] == filename
    assert b"".join(trove.open_file(file["id"])) == b"the bytes"


def test_the_guarded_stream_reads_large_uploads_unchanged(memory, writer):
    payload = bytes(range(256)) * 4096 + b"--trove-bound"  # a near-delimiter at the end
    body, content_type = multipart(b'filename="data.bin"')
    body = body.replace(b"the bytes", payload)
    response = writer.post("/api/events/", body, content_type=content_type)
    assert response.status_code == 201, response.content
    file = response.json()["files"][0]
    with trove.open_file(file["id"]) as stream:
        assert stream.read() == payload


def test_parsed_multipart_matches_django_for_ordinary_bodies(memory, writer):
    upload = io.BytesIO(b"abc")
    upload.name = "a.txt"
    response = writer.post(
        "/api/events/",
        {"schema": "s", "payload": '{"k": "v"}', "producer": "p", "upload": upload},
        format="multipart",
    )
    assert response.status_code == 201
    document = response.json()
    assert (document["payload"], document["producer"]) == ({"k": "v"}, "p")
    assert document["files"][0]["filename"] == "a.txt"
