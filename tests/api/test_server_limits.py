"""The request limits against a real server: the example project under gunicorn, spoken to
over a socket, so that what Django's test client smooths over (a body longer than the
client ever sends, chunked transfer) is what the server really meets."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.servers import gunicorn_command
from tests.test_project import ROOT, SAFE_ENV, free_port, manage

USER, PASSWORD = "ops", "s3cret-Pass-9"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
MAX_REQUEST_SIZE = 10 * 1024 * 1024  # the default of TROVE["max_request_size"]


class Server:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict | None = None,
        send_all: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send a request (``send_all=False``: its headers only, none of the body it
        declares) and read the answer; the server closes the connection after it."""
        head = {"Host": "127.0.0.1", "Authorization": AUTHORIZATION, "Connection": "close"}
        head.update(headers or {})
        if "Transfer-Encoding" not in head:
            head["Content-Length"] = str(len(body))
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items())]
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as connection:
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            try:
                connection.sendall(body if send_all else b"")
            except OSError:  # the server answered and closed before reading it all
                pass
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        header_block, _, content = rest.partition(b"\r\n\r\n")
        answer_headers = {}
        for line in header_block.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), answer_headers, content

    def count(self) -> int:
        status, _, content = self.request("GET", "/api/events/?limit=0")
        assert status == 200, content
        return json.loads(content)["count"]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("server")
    manage(data, "migrate", "--noinput")
    manage(
        data,
        "createsuperuser",
        "--noinput",
        env={
            "DJANGO_SUPERUSER_USERNAME": USER,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": "ops@example.com",
        },
    )
    port = free_port()
    process = subprocess.Popen(
        gunicorn_command(port, "--workers=1", "--timeout=30"),
        cwd=ROOT,
        env={**SAFE_ENV, "TROVE_DATA_DIR": str(data)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield Server(port)
    finally:
        process.terminate()
        process.wait(10)


def json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_a_declared_oversize_body_is_413_before_it_is_sent(server):
    before = server.count()
    body = b'{"schema": "s", "payload": {"t": "' + b"x" * MAX_REQUEST_SIZE + b'"}}'
    started = time.monotonic()
    status, headers, content = server.request(
        "POST", "/api/events/", body, json_headers(), send_all=False
    )
    assert status == 413
    assert json.loads(content)["error"]["code"] == "request_too_large"
    assert time.monotonic() - started < 20  # answered without waiting for the 10 MiB
    assert server.count() == before


def test_a_chunked_body_is_411_not_read_as_empty(server):
    before = server.count()
    event = b'{"schema": "s", "payload": {}}'
    body = f"{len(event):x}\r\n".encode() + event + b"\r\n0\r\n\r\n"
    status, _, content = server.request(
        "POST", "/api/events/", body, {**json_headers(), "Transfer-Encoding": "chunked"}
    )
    assert status == 411, content[:300]
    assert json.loads(content)["error"]["code"] == "length_required"
    assert server.count() == before


def test_json_nested_100000_deep_is_400(server):
    before = server.count()
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    for path, body in (
        ("/api/events/", f'{{"schema": "s", "payload": {deep}}}'),
        ("/api/query/", f'{{"payload": {{"a": {deep}}}}}'),
        ("/api/schemas/", f'{{"id": "d", "version": "1", "schema": {deep}}}'),
    ):
        status, _, content = server.request("POST", path, body.encode(), json_headers())
        assert status == 400, content[:300]
    assert server.count() == before


def test_an_upload_named_in_latin_1_is_kept(server):
    boundary = "trove-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="schema"\r\n\r\ns\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{{}}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="f"; '
    ).encode()
    body += b'filename="r\xe9sum\xe9.txt"\r\nContent-Type: text/plain\r\n\r\nbytes\r\n'
    body += f"--{boundary}--\r\n".encode()
    status, _, content = server.request(
        "POST",
        "/api/events/",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 201, content[:300]
    (file,) = json.loads(content)["files"]
    assert (file["filename"], file["size"]) == ("r\ufffdsum\ufffd.txt", 5)
