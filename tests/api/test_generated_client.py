"""A Python client generated from ``/api/schema/`` with openapi-python-client runs every
operation against a real server (gunicorn, SQLite, a token user).

Everything goes through the generated package only: its models build the bodies and
parse the answers, so an operation the document describes wrongly fails here, the way it
fails a user who generates a client (a body it cannot send, an answer it drops).
``raise_on_unexpected_status`` turns an undocumented status code into a failure.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from tests.servers import BASE_ENV, free_port, gunicorn_command

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "trove_generated_client"


def generator() -> str:
    found = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("openapi-python-client is not installed (requirements/dev.txt)")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The example project under gunicorn on a free port, with a superuser and its token."""
    directory = tmp_path_factory.mktemp("generated-client")
    env = {
        **BASE_ENV,
        "DJANGO_SETTINGS_MODULE": "trove_project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "generated-client-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "TROVE_DATA_DIR": str(directory),
    }

    def manage(*args: str, **extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    manage("migrate", "--noinput")
    manage(
        "createsuperuser",
        "--noinput",
        DJANGO_SUPERUSER_USERNAME="client",
        DJANGO_SUPERUSER_PASSWORD="client-Pass-9",
        DJANGO_SUPERUSER_EMAIL="client@example.com",
    )
    token = manage("drf_create_token", "client").split()[2]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "gunicorn.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            gunicorn_command(
                port, "--workers=1", "--worker-class=gthread", "--threads=4", "--timeout=60"
            ),
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/api/", timeout=10).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.2)
        yield SimpleNamespace(url=url, token=token, directory=directory)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def api(server) -> Iterator[SimpleNamespace]:
    """The package generated from the server's own ``/api/schema/``, imported."""
    command = generator()
    schema = server.directory / "schema.json"
    schema.write_bytes(requests.get(f"{server.url}/api/schema/?format=json", timeout=30).content)
    config = server.directory / "generator.json"
    config.write_text(json.dumps({"post_hooks": [], "package_name_override": PACKAGE}))
    output = server.directory / "client"
    result = subprocess.run(
        [
            command,
            "generate",
            f"--path={schema}",
            f"--output-path={output / PACKAGE}",
            "--meta=none",
            f"--config={config}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(output))
    try:
        package = importlib.import_module(PACKAGE)

        def load(name: str):
            return importlib.import_module(f"{PACKAGE}.{name}")

        yield SimpleNamespace(
            client=package.AuthenticatedClient(
                base_url=server.url,
                token=server.token,
                prefix="Token",
                raise_on_unexpected_status=True,
            ),
            anonymous=package.Client(base_url=server.url, raise_on_unexpected_status=True),
            load=load,
            models=load("models"),
            types=load("types"),
        )
    finally:
        sys.path.remove(str(output))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def call(api, operation: str, **kwargs):
    """``api.<group>.<operation>.sync_detailed(client=…, **kwargs)``."""
    group = operation.split("_", 1)[0]
    module = api.load(f"api.{group}.{operation}")
    kwargs.setdefault("client", api.client)
    return module.sync_detailed(**kwargs)


def test_every_operation_through_the_generated_client(api):
    m = api.models
    unique = uuid.uuid4().hex[:8]
    schema_id = f"note.{unique}"

    health = call(api, "health_retrieve", client=api.anonymous)
    assert health.status_code == 200
    assert health.parsed.to_dict() == {
        "status": "ok",
        "storages": {"events": "ok", "files": "ok", "links": "ok"},
    }

    registered = call(
        api,
        "schemas_create",
        body=m.SchemaRegistration.from_dict(
            {
                "id": schema_id,
                "version": "1.0",
                "schema": {
                    "type": "object",
                    "required": ["title"],
                    "properties": {"title": {"type": "string"}},
                },
            }
        ),
    )
    assert registered.status_code == 201 and registered.parsed.id == schema_id
    listed_schemas = call(api, "schemas_list", limit=1000).parsed
    assert schema_id in [s.id for s in listed_schemas.results]
    one_schema = call(api, "schemas_retrieve", schema_id=schema_id, version="1.0").parsed
    assert one_schema.schema.to_dict()["required"] == ["title"]

    # Create: one event (JSON), a batch, multipart with an uploaded file, the original path.
    parent = call(
        api,
        "events_create",
        body=m.EventCreate.from_dict(
            {
                "schema": schema_id,
                "payload": {"title": "Annual Report", "author": {"name": "Jane"}},
                "files": [{"contentType": "text/plain", "filename": "a.txt", "data": "hello"}],
            }
        ),
    )
    assert parent.status_code == 201, parent.content
    parent = parent.parsed
    assert isinstance(parent, m.EventDocument)
    assert parent.url.endswith(f"/api/events/{parent.id.id}/versions/1/")
    batch = call(
        api,
        "events_batch_create",
        body=[
            m.EventCreate.from_dict(
                {
                    "schema": schema_id,
                    "payload": {"title": f"Child {n}"},
                    "links": [{"type": "parent", "targetEvent": {"id": str(parent.id.id)}}],
                }
            )
            for n in range(2)
        ],
    )
    assert batch.status_code == 201, batch.content
    assert [e.payload.to_dict()["title"] for e in batch.parsed] == ["Child 0", "Child 1"]
    child = batch.parsed[0]
    assert child.links[0].target_event.url.endswith(f"/api/events/{parent.id.id}/")

    upload = m.EventsCreateFilesBody(
        schema=schema_id,
        payload=json.dumps({"title": "Scan"}),
        metadata=json.dumps({"source": "scanner"}),
    )
    upload["scan"] = api.types.File(
        payload=BytesIO(b"\x00\x01binary\xff"),
        file_name="scan.bin",
        mime_type="application/octet-stream",
    )
    scanned = call(api, "events_create", body=upload)
    assert scanned.status_code == 201, scanned.content
    scanned = scanned.parsed
    assert [(f.filename, f.size) for f in scanned.files] == [("scan.bin", 9)]
    compat = call(
        api,
        "events_create_compat",
        body=m.EventCreate.from_dict({"schema": schema_id, "payload": {"title": "Old client"}}),
    )
    assert compat.status_code == 201, compat.content

    # Versions: append (JSON and multipart), list, one.
    appended = call(
        api,
        "events_versions_create",
        event_id=str(parent.id.id),
        body=m.EventAppend.from_dict(
            {"payload": {"title": "Annual Report, v2", "author": {"name": "Jane"}}}
        ),
    )
    assert appended.status_code == 201 and appended.parsed.id.version == 2
    more = m.EventsVersionsCreateFilesBody(
        payload=json.dumps({"title": "Annual Report, v3", "author": {"name": "Jane"}})
    )
    more["appendix"] = api.types.File(
        payload=BytesIO(b"appendix"), file_name="appendix.txt", mime_type="text/plain"
    )
    third = call(api, "events_versions_create", event_id=str(parent.id.id), body=more)
    assert third.status_code == 201, third.content
    assert sorted(f.filename for f in third.parsed.files) == ["a.txt", "appendix.txt"]
    versions = call(api, "events_versions_list", event_id=str(parent.id.id)).parsed
    assert [v.id.version for v in versions] == [1, 2, 3]
    second = call(api, "events_versions_retrieve", event_id=str(parent.id.id), version=2).parsed
    assert second.payload.to_dict()["title"] == "Annual Report, v2"
    latest = call(api, "events_retrieve", event_id=str(parent.id.id)).parsed
    assert latest.id.version == 3

    # Links, linked, backlinks, each with ``type``.
    links = call(api, "events_links_list", event_id=str(child.id.id), type_="parent").parsed
    assert [link.target_event.id for link in links] == [parent.id.id]
    linked = call(api, "events_linked_list", event_id=str(child.id.id)).parsed
    assert [e.id.id for e in linked] == [parent.id.id]
    backlinks = call(api, "events_backlinks_list", event_id=str(parent.id.id), type_="parent")
    assert sorted(e.payload.to_dict()["title"] for e in backlinks.parsed) == [
        "Child 0",
        "Child 1",
    ]

    # Query: payload filters through the exploded ``payload`` parameter, and the body query.
    found = call(
        api,
        "events_list",
        schema=[schema_id],
        payload=m.EventsListPayload.from_dict({"payload.author.name": "Jane"}),
    ).parsed
    assert [e.id.id for e in found.results] == [parent.id.id]
    titled = call(
        api,
        "events_list",
        schema=[schema_id],
        payload=m.EventsListPayload.from_dict({"payload.title": "Scan"}),
        ordering="-createdAt",
    ).parsed
    assert [e.id.id for e in titled.results] == [scanned.id.id]
    posted = call(
        api,
        "query_create",
        body=m.EventQuery.from_dict({"schema": schema_id, "payload": {"title": "Child 1"}}),
    ).parsed
    assert posted.count == 1 and posted.results[0].id.id == batch.parsed[1].id.id

    # Files: the record and the bytes.
    record = scanned.files[0]
    assert call(api, "files_retrieve", file_id=str(record.id)).parsed.hash_ == record.hash_
    assert record.content_url.endswith(f"/api/files/{record.id}/content/")
    content = call(api, "files_content_retrieve", file_id=str(record.id))
    assert content.status_code == 200
    assert content.parsed.payload.read() == b"\x00\x01binary\xff"

    # The feed.
    feed = call(api, "feed_retrieve", after=0, limit=1000, schema=[schema_id]).parsed
    assert len(feed.results) == 7 and feed.position == feed.results[-1].position


def test_errors_parse_as_the_error_model(api):
    m = api.models
    missing = call(api, "events_retrieve", event_id=str(uuid.uuid4()))
    assert missing.status_code == 404
    assert isinstance(missing.parsed, m.Error) and missing.parsed.error.code == "not_found"

    schema_id = f"strict.{uuid.uuid4().hex[:8]}"
    call(
        api,
        "schemas_create",
        body=m.SchemaRegistration.from_dict(
            {"id": schema_id, "version": "1", "schema": {"required": ["title"]}}
        ),
    )
    invalid = call(
        api, "events_create", body=m.EventCreate.from_dict({"schema": schema_id, "payload": {}})
    )
    assert invalid.status_code == 422
    problem = invalid.parsed.error.problems[0]
    assert (problem.field, problem.validator) == ("payload", "required")

    malformed = call(
        api,
        "events_batch_create",
        body=[m.EventCreate.from_dict({"schema": "", "payload": {}})],
    )
    assert malformed.status_code == 400
    assert malformed.parsed.error.problems[0].field == "[0].schema"

    denied = call(api, "events_list", client=api.anonymous)
    assert denied.status_code in (401, 403) and isinstance(denied.parsed, m.Error)
