"""The OpenAPI document describes every endpoint of SPEC §5, with its filters and bodies.

Whether answers match the document is the schemathesis test's job
(``tests/test_api_schemathesis.py``); here: that the document is there and complete.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SPEC_OPERATIONS = {
    ("get", "/api/events/"),
    ("post", "/api/events/"),
    ("post", "/api/events/batch/"),
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
    ("get", "/api/health/"),
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
        "where_path",
        "where_op",
        "where_value",
        "ordering",
        "limit",
        "offset",
        "payload",
    }
    assert parameters["schema"]["schema"]["type"] == "array" and parameters["schema"]["explode"]
    assert parameters["start"]["schema"]["format"] == "date-time"
    assert "payload.<path>" in document["paths"]["/api/events/"]["get"]["description"]
    # payload.<path> filters: an exploded object whose keys are the parameter names.
    payload = parameters["payload"]
    assert (payload["style"], payload["explode"]) == ("form", True)
    assert payload["schema"]["additionalProperties"] == {"type": "string"}
    # Markdown, where a bare <path> would be read as an HTML tag and vanish.
    assert "`payload.<path>`" in parameters["ordering"]["description"]


LISTS = [
    "/api/events/{event_id}/versions/",
    "/api/events/{event_id}/links/",
    "/api/events/{event_id}/linked/",
    "/api/events/{event_id}/backlinks/",
]


@pytest.mark.parametrize("path", LISTS)
def test_the_lists_of_one_event_are_described_as_the_bare_lists_they_are(document, path):
    operation = document["paths"][path]["get"]
    parameters = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    expected = {"type", "version"} if path.endswith(("/links/", "/linked/")) else set()
    assert parameters == (expected | {"type"} if path.endswith("/backlinks/") else expected)
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert body["type"] == "array", "not a page"


def test_every_create_body_is_one_shape_a_generated_client_can_build(document):
    create = document["paths"]["/api/events/"]["post"]
    single = create["requestBody"]["content"]["application/json"]["schema"]
    assert single == {"$ref": "#/components/schemas/EventCreate"}
    answer = create["responses"]["201"]["content"]["application/json"]["schema"]
    answered = document["components"]["schemas"][answer["$ref"].rsplit("/", 1)[1]]["oneOf"]
    assert answered[0] == {"$ref": "#/components/schemas/EventDocument"}, "one event first"
    batch = document["paths"]["/api/events/batch/"]["post"]
    listed = batch["requestBody"]["content"]["application/json"]["schema"]
    assert listed == {"type": "array", "items": {"$ref": "#/components/schemas/EventCreate"}}


def test_file_content_is_binary(document):
    content = document["paths"]["/api/files/{file_id}/content/"]["get"]["responses"]["200"]
    assert next(iter(content["content"])) == "application/octet-stream"
    assert content["content"]["application/octet-stream"]["schema"]["format"] == "binary"


def test_the_error_model_has_the_keys_errors_carry(document):
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"field", "message", "validator"}
    assert problem["required"] == ["field", "message"]


def test_descriptions_are_for_users(document):
    text = json.dumps(document)
    assert "SPEC" not in text
    assert "``" not in text, "reStructuredText"
    components = document["components"]["schemas"]
    assert "Refuses keys" not in json.dumps(components), "a developer's docstring"
    assert components["EventDocument"]["description"].startswith("One version of an event")


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
