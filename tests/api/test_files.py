"""File records and bytes: streamed downloads with safe headers, size limits, and on S3
(a real SeaweedFS server) presigned redirects and an unreachable store."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import tracemalloc
import urllib.request
import uuid
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

import trove
from tests.conftest import require
from trove.testing.seaweedfs import SeaweedFSServer, weed_unavailable_reason

from .conftest import use_storage, user_with

pytestmark = pytest.mark.django_db

BUCKET = "trove-api-tests"


def attach(client, filename, data=b"bytes", content_type="text/plain", **extra):
    response = client.post(
        "/api/events/",
        {
            "schema": "s",
            "payload": "{}",
            "upload": SimpleUploadedFile(filename, data, content_type),
            **extra,
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["files"][0]


def download(client, record):
    return client.get(f"/api/files/{record['id']}/content/")


def test_a_files_record_and_bytes(memory, writer):
    record = attach(writer, "report.txt", b"annual report")
    assert writer.get(f"/api/files/{record['id']}/").json() == record
    response = download(writer, record)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"annual report"
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Length"] == "13"
    assert response["Content-Disposition"] == 'attachment; filename="report.txt"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_bytes_are_served_whatever_the_client_accepts(memory, writer):
    record = attach(writer, "page.html", b"<script>alert(1)</script>", "text/html")
    response = writer.get(f"/api/files/{record['id']}/content/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("filename", "disposition"),
    [
        ("../../etc/passwd", 'attachment; filename="passwd"'),
        ("C:\\Users\\x\\evil.txt", 'attachment; filename="evil.txt"'),
        ('quote".txt', 'attachment; filename="quote\\".txt"'),
        ("rapport été.pdf", "attachment; filename*=utf-8''rapport%20%C3%A9t%C3%A9.pdf"),
        ("tab\there.txt", 'attachment; filename="tabhere.txt"'),
    ],
)
def test_the_download_name_is_sanitized(memory, writer, filename, disposition):
    record = writer.post(
        "/api/events/",
        {
            "schema": "s",
            "payload": {},
            "files": [{"contentType": "text/plain", "filename": filename, "data": "x"}],
        },
        format="json",
    ).json()["files"][0]
    assert download(writer, record)["Content-Disposition"] == disposition


def test_an_unnamed_file_is_named_after_its_id(memory, writer):
    response = writer.post(
        "/api/events/",
        {
            "schema": "s",
            "payload": {},
            "files": [{"contentType": "application/json", "data": "{}"}],
        },
        format="json",
    )
    record = response.json()["files"][0]
    expected = f'attachment; filename="{record["id"]}.json"'
    assert download(writer, record)["Content-Disposition"] == expected


def test_a_reference_has_no_bytes_here(memory, writer):
    file = {
        "contentType": "application/pdf",
        "isReference": True,
        "data": "https://example.com/a.pdf",
    }
    record = writer.post(
        "/api/events/", {"schema": "s", "payload": {}, "files": [file]}, format="json"
    ).json()["files"][0]
    response = download(writer, record)
    assert response.status_code == 404
    assert "https://example.com/a.pdf" in response.json()["error"]["message"]


def test_an_unknown_file_is_404(memory, writer):
    assert writer.get(f"/api/files/{uuid.uuid4()}/").status_code == 404
    assert writer.get("/api/files/not-an-id/content/").status_code == 404


def test_a_file_over_the_size_limit_is_413_and_nothing_is_kept(memory, settings, writer):
    settings.TROVE = {**settings.TROVE, "max_file_size": 10}
    response = writer.post(
        "/api/events/",
        {"schema": "s", "payload": "{}", "upload": SimpleUploadedFile("big.bin", b"x" * 11)},
        format="multipart",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "file_too_large")
    assert trove.count_events() == 0


def test_a_declared_hash_that_does_not_match_is_422(memory, writer):
    file = {"contentType": "text/plain", "data": "abc", "hash": "sha256:" + "0" * 64}
    response = writer.post(
        "/api/events/", {"schema": "s", "payload": {}, "files": [file]}, format="json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "file_hash_mismatch")


def test_large_files_stream_in_and_out_in_flat_memory(
    live_server, transactional_db, settings, tmp_path, django_user_model
):
    """A 48 MB upload and download through a real HTTP server (in this process) allocate
    a small fraction of the file: neither side ever holds it whole."""
    size, chunk = 48 * 1024 * 1024, os.urandom(1024 * 1024)
    files = {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "files")}}
    use_storage(settings, {"events": {"plugin": "storage-memory"}, "files": files})
    user_with(django_user_model, "streamer", "add_event")
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="schema"\r\n\r\nbig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{{}}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    authorization = "Basic " + base64.b64encode(b"streamer:streamer-password").decode()
    address = urlsplit(live_server.url)

    tracemalloc.start()
    try:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        connection.request(
            "POST",
            "/api/events/",
            body=iter([head, *([chunk] * (size // len(chunk))), tail]),
            headers={
                "Authorization": authorization,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + size + len(tail)),
            },
        )
        answer = connection.getresponse()
        assert answer.status == 201, answer.read()
        record = json.loads(answer.read())["files"][0]
        connection.request(
            "GET", f"/api/files/{record['id']}/content/", headers={"Authorization": authorization}
        )
        download = connection.getresponse()
        received = 0
        while block := download.read(1024 * 1024):
            assert block == chunk
            received += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (record["size"], received) == (size, size)
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file"


# On S3 -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server():
    reason = weed_unavailable_reason()
    require("TROVE_REQUIRE_S3", reason is None, f"real S3 tests need SeaweedFS: {reason}")
    with SeaweedFSServer() as server:
        server.create_bucket(BUCKET)
        yield server


def s3_storage(server) -> dict:
    options = {
        "bucket": BUCKET,
        "region": server.region,
        "accessKeyId": server.access_key,
        "secretAccessKey": server.secret_key,
        "endpointUrl": server.endpoint_url,
        "prefix": f"t-{uuid.uuid4().hex}",
    }
    return {
        "events": {"plugin": "storage-memory"},
        "files": {"plugin": "storage-s3", "options": options},
    }


def test_s3_bytes_stream_or_redirect_to_a_presigned_url(settings, writer, s3_server):
    use_storage(settings, s3_storage(s3_server))
    record = attach(writer, "notes.txt", b"kept on S3")
    streamed = download(writer, record)
    assert b"".join(streamed.streaming_content) == b"kept on S3"

    use_storage(settings, settings.TROVE["storage"], presigned_downloads=True, presigned_expiry=60)
    redirect = download(writer, record)
    assert redirect.status_code == 302
    assert "no-cache" in redirect["Cache-Control"]
    with urllib.request.urlopen(redirect["Location"], timeout=10) as answer:
        assert answer.read() == b"kept on S3"
        assert answer.headers["Content-Disposition"] == 'attachment; filename="notes.txt"'


def test_an_unreachable_file_store_is_503_and_nothing_is_kept(settings, writer):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    options = {
        "bucket": BUCKET,
        "endpointUrl": f"http://127.0.0.1:{closed_port}",
        "accessKeyId": "nobody",
        "secretAccessKey": "nothing",
        "region": "us-east-1",
        "connectTimeout": 1,
        "maxAttempts": 1,
    }
    use_storage(
        settings,
        {
            "events": {"plugin": "storage-memory"},
            "files": {"plugin": "storage-s3", "options": options},
        },
    )
    response = writer.post(
        "/api/events/",
        {"schema": "s", "payload": {}, "files": [{"contentType": "text/plain", "data": "x"}]},
        format="json",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (503, "storage_unavailable")
    assert trove.count_events() == 0
