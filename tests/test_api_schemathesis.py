"""Property-based run of the REST API against its own OpenAPI document (schemathesis).

Every operation of ``/api/schema/`` gets requests generated from the document, valid and
invalid ones, sent through the Django WSGI application as an authenticated superuser. No
answer may be a server error, and every answer must be one the document describes
(status code, content type, body, headers). A few events exist beforehand so that
generated requests also reach events that exist, not only 404s.
"""

from __future__ import annotations

import base64

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import trove
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(databases="__all__")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
AUTHORIZATION = "Basic " + base64.b64encode(b"fuzzer:fuzzer-password").decode()


@pytest.fixture(autouse=True)
def trove_with_events(settings, django_user_model):
    """Events in the ORM on PostgreSQL (the production database, and the strictest about
    what text it stores) when the test server has it, else on SQLite."""
    database = "postgres" if "postgres" in settings.DATABASES else "default"
    settings.TROVE = {
        "storage": {
            "events": {"plugin": "storage-orm", "options": {"database": database}},
            "files": {"plugin": "storage-memory"},
        }
    }
    django_user_model.objects.create_superuser("fuzzer", password="fuzzer-password")
    parent = trove.create_event("note.created", {"text": "parent"}, producer="fuzzer")
    trove.create_event(
        "note.created",
        {"text": "child"},
        links=[{"type": "parent", "targetEvent": {"id": str(parent.uuid)}}],
        files=[{"contentType": "text/plain", "filename": "a.txt", "data": "hello"}],
    )
    trove.register_schema("note.created", "1.0", {"type": "object"})
    # As Django's test client does: the test's transaction must outlive each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    storages.close_all()


# Loaded at collection: each operation becomes its own test. Only the document is read.
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    get_wsgi_application(),
    config=schemathesis.Config.from_dict({"generation": {"max-examples": 20}}),
).exclude(path="/api/feed/stream/")  # a stream lasts its timeout: tests/test_feed_server.py


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_none_is_a_server_error(case):
    case.call_and_validate(headers={"Authorization": AUTHORIZATION}, checks=CHECKS)
