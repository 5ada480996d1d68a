"""Documents in REST answers carry addresses to follow: the version's ``url``, each file's
``url`` and ``contentUrl``, each link target's ``url``; following each answers what it names."""

from __future__ import annotations

import pytest

import trove

pytestmark = pytest.mark.django_db(databases="__all__")


def path(url: str) -> str:
    assert url.startswith("http://testserver/api/"), url
    return url.removeprefix("http://testserver")


def test_every_address_in_a_document_answers_what_it_names(backend, writer):
    parent = writer.post("/api/events/", {"schema": "s", "payload": {"n": 1}}, format="json").json()
    writer.post(f"/api/events/{parent['id']['id']}/versions/", {"payload": {"n": 2}}, format="json")
    child = writer.post(
        "/api/events/",
        {
            "schema": "s",
            "payload": {"n": 3},
            "files": [{"contentType": "text/plain", "filename": "a.txt", "data": "hello"}],
            "links": [
                {"type": "pinned", "targetEvent": {"id": parent["id"]["id"], "version": 1}},
                {"type": "latest", "targetEvent": {"id": parent["id"]["id"]}},
            ],
        },
        format="json",
    ).json()
    assert path(child["url"]) == f"/api/events/{child['id']['id']}/versions/1/"
    assert writer.get(path(child["url"])).json() == child
    (file,) = child["files"]
    assert writer.get(path(file["url"])).json() == file
    assert writer.get(path(file["contentUrl"])).getvalue() == b"hello"
    pinned, latest = (link["targetEvent"] for link in child["links"])
    assert writer.get(path(pinned["url"])).json()["id"] == {"id": parent["id"]["id"], "version": 1}
    assert writer.get(path(latest["url"])).json()["id"] == {"id": parent["id"]["id"], "version": 2}
    # The same addresses wherever the document appears.
    listed = writer.get("/api/events/", {"schema": "s", "ordering": "payload.n"}).json()
    assert listed["results"][-1] == child
    queried = writer.post("/api/query/", {"payload": {"n": 3}}, format="json").json()
    assert queried["results"] == [child]
    assert writer.get(f"/api/events/{child['id']['id']}/links/").json() == child["links"]


def test_addresses_are_not_stored(memory, writer):
    created = writer.post("/api/events/", {"schema": "s", "payload": {}}, format="json").json()
    stored = trove.get_event(created["id"]["id"]).to_dict()
    assert "url" not in stored and created["url"]


@pytest.mark.parametrize("prefix", ["/", "/trove/", "/a b/"])
def test_addresses_are_those_django_reverses_under_any_script_prefix(prefix):
    from django.urls import reverse, set_script_prefix

    from trove.api.hyperlinks import path

    event_id = "0b7d6b70-5c1e-4b8a-8f4e-2f1a9d3c6e10"
    set_script_prefix(prefix)
    try:
        for name, kwargs in [
            ("trove-event-detail", {"event_id": event_id}),
            ("trove-event-version", {"event_id": event_id, "version": 3}),
            ("trove-file-content", {"file_id": event_id}),
            ("trove-event-detail", {"event_id": "not plain ü"}),
        ]:
            assert path(name, **kwargs) == reverse(name, kwargs=kwargs)
    finally:
        set_script_prefix("/")
