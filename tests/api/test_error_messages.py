"""What an error tells a client: the status and the one error shape, never the server's
insides (paths, addresses, database text), and every endpoint answers whatever it is asked
to render, as HTML for a browser or 406 for a type it cannot make."""

from __future__ import annotations

import shutil
import socket

import pytest
from django.db import DataError

import trove
from trove.api.exceptions import exception_handler
from trove.exceptions import InvalidEvent, StorageUnavailable

from .conftest import use_storage

pytestmark = pytest.mark.django_db(databases="__all__")

EVENT = {"schema": "s", "payload": {"text": "hi"}}


def test_an_unusable_event_directory_is_503_naming_only_the_role(settings, tmp_path, writer):
    directory = tmp_path / "events"
    use_storage(
        settings,
        {
            "events": {"plugin": "storage-json-file", "options": {"directory": str(directory)}},
            "files": {"plugin": "storage-memory"},
        },
    )
    assert writer.post("/api/events/", EVENT, format="json").status_code == 201
    shutil.rmtree(directory)
    directory.write_text("not a directory")
    response = writer.post("/api/events/", EVENT, format="json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error == {
        "code": "storage_unavailable",
        "message": "The events storage is unavailable; try again later.",
        "problems": [],
    }
    assert str(tmp_path) not in response.content.decode()


def test_an_unreachable_file_store_is_503_without_its_address(settings, writer):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    options = {
        "bucket": "trove",
        "endpointUrl": f"http://127.0.0.1:{closed_port}",
        "accessKeyId": "nobody",
        "secretAccessKey": "nothing",
        "region": "us-east-1",
        "connectTimeout": 1,
        "maxAttempts": 1,
    }
    files = {"plugin": "storage-s3", "options": options}
    use_storage(settings, {"events": {"plugin": "storage-memory"}, "files": files})
    body = {**EVENT, "files": [{"contentType": "text/plain", "data": "x"}]}
    response = writer.post("/api/events/", body, format="json")
    assert response.status_code == 503
    assert (
        response.json()["error"]["message"] == "The files storage is unavailable; try again later."
    )
    assert str(closed_port) not in response.content.decode()
    assert trove.count_events() == 0


def test_a_query_answers_html_to_a_browser(memory, writer):
    trove.create_event("s", {"text": "hi"})
    response = writer.post("/api/query/", {"schema": "s"}, format="json", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "hi" in response.content.decode()


def test_a_type_no_renderer_makes_is_406_in_the_error_shape(memory, writer):
    for response in (
        writer.post("/api/query/", {}, format="json", HTTP_ACCEPT="application/xml"),
        writer.get("/api/events/", HTTP_ACCEPT="application/xml"),
        writer.post("/api/events/", EVENT, format="json", HTTP_ACCEPT="image/png"),
    ):
        assert response.status_code == 406
        assert response.json()["error"]["code"] == "not_acceptable"
    assert trove.count_events() == 0


def test_a_refusal_translated_from_the_database_keeps_its_text_to_the_log(caplog):
    try:
        try:
            raise DataError('value too long for type character varying(200) in "trove_event"')
        except DataError as native:
            raise InvalidEvent(f"Event database 'postgres' refused a value: {native}") from native
    except InvalidEvent as error:
        response = exception_handler(error, {})
    assert response.status_code == 400
    assert response.data["error"]["message"] == "A storage refused a value of this request."
    assert "postgres" in caplog.text and "varchar" not in response.data["error"]["message"]
    outage = StorageUnavailable("Cannot reach db.internal:5432 for alias 'default'.")
    response = exception_handler(outage, {})
    assert response.status_code == 503
    assert response.data["error"]["message"] == "A storage backend is unavailable; try again later."
