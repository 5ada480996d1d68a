"""The lists of one event (versions, links, linked, backlinks) are bare lists that read
only their own parameters; creating takes one event, ``/api/events/batch/`` a list."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def event_path(memory, writer) -> str:
    parent = writer.post("/api/events/", {"schema": "s", "payload": {}}, format="json").json()
    child = writer.post(
        "/api/events/",
        {
            "schema": "s",
            "payload": {},
            "links": [{"type": "parent", "targetEvent": {"id": parent["id"]["id"]}}],
        },
        format="json",
    ).json()
    return f"/api/events/{child['id']['id']}/"


@pytest.mark.parametrize(
    ("suffix", "query"),
    [
        ("", "limit=1"),
        ("versions/", "limit=1"),
        ("versions/", "offset=1"),
        ("versions/1/", "schema=s"),
        ("links/", "ordering=-createdAt"),
        ("linked/", "typo=parent"),
        ("backlinks/", "version=1"),
    ],
)
def test_a_parameter_a_list_does_not_read_is_a_400(event_path, writer, suffix, query):
    response = writer.get(f"{event_path}{suffix}?{query}")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    name = query.split("=")[0]
    assert error["problems"][0]["field"] == name
    assert f"Unknown query parameter(s) {name}" in error["message"]


@pytest.mark.parametrize(
    ("suffix", "query"),
    [("versions/", ""), ("links/", "type=parent&version=1"), ("linked/", "type=parent")],
)
def test_the_parameters_a_list_reads_answer_a_bare_list(event_path, writer, suffix, query):
    response = writer.get(f"{event_path}{suffix}?{query}&format=json")
    assert response.status_code == 200, response.content
    assert isinstance(response.json(), list) and len(response.json()) == 1


def test_a_batch_is_a_list_and_the_old_list_post_still_works(memory, writer):
    body = [{"schema": "s", "payload": {"n": n}} for n in range(3)]
    batch = writer.post("/api/events/batch/", body, format="json")
    assert batch.status_code == 201
    assert [e["payload"]["n"] for e in batch.json()] == [0, 1, 2]
    assert writer.post("/api/events/", body, format="json").status_code == 201
    single = writer.post("/api/events/batch/", body[0], format="json")
    assert single.status_code == 400
    assert "A batch is a JSON list" in single.json()["error"]["message"]
    assert writer.get("/api/events/?limit=0").json()["count"] == 6
