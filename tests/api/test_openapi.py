"""The OpenAPI document describes every endpoint of SPEC §5, with its filters and bodies.

Whether answers match the document is the schemathesis test's job
(``tests/test_api_schemathesis.py``); here: that the document is there and complete.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SPEC_OPERATIONS = {
    ("get", "/api/events/"),
    ("post", "/api/events/"),
    ("post", "/api/events"),
    ("get", "/api/events/{event_id}/"),
    ("get", "/api/events/{event_id}/versions/"),
    ("post", "/api/events/{event_id}/versions/"),
    ("get", "/api/events/{event_id}/versions/{version}/"),
    ("get", "/api/events/{event_id}/links/"),
    ("get", "/api/events/{event_id}/linked/"),
    ("get", "/api/events/{event_id}/backlinks/"),
    ("post", "/api/query/"),
    ("post", "/api/cloudevents/"),
    ("get", "/api/feed/"),
    ("get", "/api/feed/stream/"),
    ("get", "/api/files/{file_id}/"),
    ("get", "/api/files/{file_id}/content/"),
    ("get", "/api/schemas/"),
    ("post", "/api/schemas/"),
    ("get", "/api/schemas/{schema_id}/{version}/"),
    ("get", "/api/schema/"),
}


@pytest.fixture(scope="module")
def document(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_every_endpoint_is_described(document):
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert operations == SPEC_OPERATIONS


def test_the_list_filters_are_described(document):
    parameters = {p["name"]: p for p in document["paths"]["/api/events/"]["get"]["parameters"]}
    assert set(parameters) == {
        "schema",
        "producer",
        "start",
        "end",
        "link_type",
        "link_target",
        "text",
        "ordering",
        "limit",
        "offset",
    }
    assert parameters["schema"]["schema"]["type"] == "array" and parameters["schema"]["explode"]
    assert parameters["start"]["schema"]["format"] == "date-time"
    assert "payload.<path>" in document["paths"]["/api/events/"]["get"]["description"]


def test_the_bodies_are_described(document):
    create = document["paths"]["/api/events/"]["post"]["requestBody"]["content"]
    assert set(create) == {"application/json", "multipart/form-data"}
    multipart = create["multipart/form-data"]["schema"]
    assert multipart["additionalProperties"]["format"] == "binary"
    assert {"schema", "payload"} <= set(multipart["required"])
    query = document["paths"]["/api/query/"]["post"]["requestBody"]["content"]["application/json"]
    component = document["components"]["schemas"][query["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(component["properties"]) == {
        "schema",
        "producer",
        "timeRange",
        "links",
        "payload",
        "where",
        "text",
        "limit",
        "offset",
        "sort",
    }
    assert component["additionalProperties"] is False


def test_swagger_ui_is_served(db):
    page = APIClient().get("/api/docs/")
    assert page.status_code == 200
    assert b"/api/schema/" in page.content
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in page.content, "no CDN"
