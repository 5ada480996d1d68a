"""Filtering and paging events: the query string of ``GET /api/events/`` and the EventQuery
body of ``POST /api/query/`` ask the same question and get the same events in the same
order, on every event backend, as the reference evaluator of ``trove.query`` says."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest

import trove
from trove.query import EventQuery

pytestmark = pytest.mark.django_db(databases="__all__")

ROOT, OTHER = str(uuid.uuid4()), str(uuid.uuid4())
DATASET = [
    {
        "id": ROOT,
        "schema": "order.placed",
        "producer": "web",
        "payload": {"n": 1, "tag": "a", "author": {"name": "Jane"}},
    },
    {
        "id": OTHER,
        "schema": "order.placed",
        "producer": "web",
        "payload": {"n": "1", "tag": "b", "author": {"name": "Joe"}},
    },
    {
        "schema": "order.placed",
        "producer": "api",
        "payload": {"n": True, "tag": "a"},
        "links": [{"type": "parent", "targetEvent": {"id": ROOT}}],
    },
    {
        "schema": "order.shipped",
        "producer": "api",
        "payload": {"n": None, "tag": "c"},
        "links": [{"type": "parent", "targetEvent": {"id": ROOT}}],
    },
    {
        "schema": "order.shipped",
        "producer": "batch",
        "payload": {"tag": "a", "author": "Jane"},
        "links": [{"type": "ref", "targetEvent": {"id": OTHER}}],
    },
    {"schema": "order.placed", "producer": "batch", "payload": {"n": 10, "tag": "b", "price": 2.5}},
    {
        "schema": "note.created",
        "producer": "web",
        "payload": {"n": -3, "tag": "", "list": [1, 2, {"k": "v"}]},
    },
    {
        "schema": "note.created",
        "producer": "api",
        "payload": {"n": 1.5, "tag": "é", "author": {"name": None}},
    },
]


@pytest.fixture
def events(backend, writer) -> list[dict]:
    response = writer.post("/api/events/", DATASET, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def instant(events, index: int) -> str:
    return events[index]["createdAt"]


# (query string, EventQuery body); callables receive the created events.
EQUIVALENT = [
    ("", {}),
    (
        "schema=order.placed&schema=note.created&ordering=-createdAt",
        {
            "schema": ["order.placed", "note.created"],
            "sort": [{"field": "createdAt", "direction": "desc"}],
        },
    ),
    ("producer=web&payload.tag=a", {"producer": ["web"], "payload": {"tag": "a"}}),
    ("payload.n=1", {"payload": {"n": 1}}),
    ('payload.n="1"', {"payload": {"n": "1"}}),
    ("payload.n=true", {"payload": {"n": True}}),
    ("payload.n=null", {"payload": {"n": None}}),
    ("payload.tag=", {"payload": {"tag": ""}}),
    ("payload.author.name=Jane", {"payload": {"author.name": "Jane"}}),
    ('payload.list=[1,2,{"k":"v"}]', {"payload": {"list": [1, 2, {"k": "v"}]}}),
    (
        "ordering=payload.n,-producer",
        {"sort": [{"field": "payload.n"}, {"field": "producer", "direction": "desc"}]},
    ),
    (
        "ordering=-payload.author.name,schema&limit=3&offset=2",
        {
            "sort": [{"field": "payload.author.name", "direction": "desc"}, {"field": "schema"}],
            "limit": 3,
            "offset": 2,
        },
    ),
    (
        f"link_type=parent&link_target={ROOT}",
        {"links": [{"type": "parent", "targetEvent": {"id": ROOT}}]},
    ),
    ("link_type=ref", {"links": [{"type": "ref"}]}),
    ("payload.n__eq=1", {"where": [{"path": "n", "op": "eq", "value": 1}]}),
    ("payload.n__ne=1", {"where": [{"path": "n", "op": "ne", "value": 1}]}),
    ("payload.n__gt=1", {"where": [{"path": "n", "op": "gt", "value": 1}]}),
    ("payload.n__gte=1", {"where": [{"path": "n", "op": "gte", "value": 1}]}),
    ("payload.n__lt=1.5", {"where": [{"path": "n", "op": "lt", "value": 1.5}]}),
    ('payload.n__lte="1"', {"where": [{"path": "n", "op": "lte", "value": "1"}]}),
    ("payload.tag__gt=a", {"where": [{"path": "tag", "op": "gt", "value": "a"}]}),
    (
        'payload.n__in=1&payload.n__in="1"&payload.n__in=null',
        {"where": [{"path": "n", "op": "in", "value": [1, "1", None]}]},
    ),
    ("payload.tag__in=c", {"where": [{"path": "tag", "op": "in", "value": ["c"]}]}),
    ("payload.author__exists=true", {"where": [{"path": "author", "op": "exists", "value": True}]}),
    (
        "payload.author.name__exists=false",
        {"where": [{"path": "author.name", "op": "exists", "value": False}]},
    ),
    ("payload.list__contains=2", {"where": [{"path": "list", "op": "contains", "value": 2}]}),
    (
        'payload.list__contains={"k":"v"}',
        {"where": [{"path": "list", "op": "contains", "value": {"k": "v"}}]},
    ),
    (
        "payload.author.name__startsWith=J&payload.n__ne=1&producer=web",
        {
            "producer": "web",
            "where": [
                {"path": "author.name", "op": "startsWith", "value": "J"},
                {"path": "n", "op": "ne", "value": 1},
            ],
        },
    ),
    ("payload.a__b=1", {"payload": {"a__b": 1}}),
    ("text=JANE", {"text": "JANE"}),
    ("text=jane%20A&producer=web", {"text": "jane A", "producer": "web"}),
    ("text=%C3%A9", {"text": "É"}),
    ("text=v&payload.n__lt=0", {"text": "v", "where": [{"path": "n", "op": "lt", "value": 0}]}),
    ("start=0001-01-01T00:00:00Z", {"timeRange": {"start": "0001-01-01T00:00:00Z"}}),
    (
        lambda e: urlencode({"start": instant(e, 2), "end": instant(e, 5), "ordering": "-id"}),
        lambda e: {
            "timeRange": {"start": instant(e, 2), "end": instant(e, 5)},
            "sort": [{"field": "id", "direction": "desc"}],
        },
    ),
]


@pytest.mark.parametrize(("query_string", "body"), EQUIVALENT)
def test_query_string_and_query_body_answer_the_same(events, writer, query_string, body):
    query_string = query_string(events) if callable(query_string) else query_string
    body = body(events) if callable(body) else body
    listed = writer.get(f"/api/events/?{query_string}")
    posted = writer.post("/api/query/", body, format="json")
    assert listed.status_code == posted.status_code == 200, (listed.content, posted.content)
    expected = EventQuery.parse(body).apply(trove.query_events({}))
    ids = [e["id"]["id"] for e in listed.json()["results"]]
    assert ids == [str(e.uuid) for e in expected]
    assert [e["id"]["id"] for e in posted.json()["results"]] == ids
    total = len(
        EventQuery.parse({**body, "limit": None, "offset": 0}).apply(trove.query_events({}))
    )
    assert listed.json()["count"] == posted.json()["count"] == total


def test_pages_link_to_their_neighbours(events, writer):
    first = writer.get("/api/events/?limit=3&ordering=payload.tag").json()
    assert first["count"] == len(DATASET) and first["previous"] is None
    second = writer.get(first["next"]).json()
    third = writer.get(second["next"]).json()
    assert third["next"] is None
    pages = [first, second, third]
    ids = [e["id"]["id"] for page in pages for e in page["results"]]
    assert ids == [
        e["id"]["id"] for e in writer.get("/api/events/?ordering=payload.tag").json()["results"]
    ]
    assert writer.get(second["previous"]).json() == first

    body = {"sort": [{"field": "payload.tag"}], "limit": 3}
    posted = writer.post("/api/query/", body, format="json").json()
    assert posted["previous"] is None and posted["next"] == {**body, "offset": 3}
    following = writer.post("/api/query/", posted["next"], format="json").json()
    assert following["results"] == second["results"]
    assert following["previous"] == {**body, "offset": 0}


def test_limit_zero_counts_without_a_next_page(events, writer):
    page = writer.get("/api/events/?limit=0").json()
    assert (page["count"], page["results"], page["next"]) == (len(DATASET), [], None)


@pytest.mark.parametrize(
    ("query_string", "field"),
    [
        ("start=yesterday", "start"),
        ("start=0001-01-01T00:00:00%2B01:00", "start"),
        ("end=2026-13-01T00:00:00Z", "end"),
        ("ordering=popularity", "ordering"),
        ("ordering=createdAt,,id", "ordering"),
        ("link_target=not-a-uuid", "link_target"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("offset=99999999999999999999999", "offset"),
        ("payload.n=1&payload.n=2", "payload.n"),
        ("payload..n=1", "payload..n"),
        ("payload.n=1e999", "payload.n"),
        ("producer=%00", "producer"),
        ("schemas=order.placed", ""),
        ("payload.n__exists=yes", "payload.n__exists"),
        ("payload.n__gt=1&payload.n__gt=2", "payload.n__gt"),
        ("payload.n__gt=true", "where[0].value"),
        ("payload.n__startsWith=1", "where[0].value"),
        ("payload..n__lt=1", "where[0].path"),
        ("text=", "text"),
        ("text=%20-%20", "text"),
    ],
)
def test_a_bad_filter_is_400_naming_it(memory, writer, query_string, field):
    response = writer.get(f"/api/events/?{query_string}")
    assert response.status_code == 400, response.content
    problems = response.json()["error"]["problems"]
    assert field in [p["field"] for p in problems], problems


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schemas": ["a"]}, "schemas"),
        ({"timeRange": {"start": "soon"}}, "timeRange.start"),
        ({"timeRange": {"end": "0001-01-01T00:00:00+01:00"}}, "timeRange.end"),
        ({"limit": -1}, "limit"),
        ({"sort": [{"field": "popularity"}]}, "sort[0].field"),
        ({"payload": {"n": 2**70}}, "payload.n"),
        ({"producer": "nul\u0000"}, "producer"),
        ({"where": [{"path": "n", "op": "in", "value": []}]}, "where[0].value"),
        ({"where": {"n": 1}}, "where"),
    ],
)
def test_a_bad_query_body_is_400_naming_it(memory, writer, body, field):
    response = writer.post("/api/query/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_query"
    assert field in [p["field"] for p in response.json()["error"]["problems"]]


def test_a_query_body_must_be_an_object(memory, writer):
    response = writer.post("/api/query/", ["schema"], format="json")
    assert response.status_code == 400
