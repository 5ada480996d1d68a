"""The list view's generic predicate fields (``where_path``, ``where_op``, ``where_value``):
how the browsable filter form, whose fields are fixed, asks what a
``payload.<path>__<op>`` parameter asks."""

from __future__ import annotations

import re

import pytest

import trove

pytestmark = pytest.mark.django_db(databases="__all__")

PAYLOADS = [{"n": 1}, {"n": 5}, {"n": "5"}, {"m": True}, {"n": 9, "tags": ["x"]}]


@pytest.fixture
def created(memory, writer) -> list[dict]:
    items = [{"schema": "s", "payload": payload} for payload in PAYLOADS]
    response = writer.post("/api/events/", items, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def payloads(response) -> list:
    assert response.status_code == 200, response.content
    return [event["payload"] for event in response.json()["results"]]


@pytest.mark.parametrize(
    ("form", "parameter"),
    [
        ("where_path=n&where_op=gt&where_value=1", "payload.n__gt=1"),
        ('where_path=n&where_op=eq&where_value="5"', 'payload.n__eq="5"'),
        ("where_path=n&where_op=in&where_value=[1, 9]", "payload.n__in=1&payload.n__in=9"),
        ("where_path=m&where_op=exists&where_value=true", "payload.m__exists=true"),
        ("where_path=tags&where_op=contains&where_value=x", "payload.tags__contains=x"),
    ],
)
def test_the_generic_fields_ask_what_the_parameter_asks(created, reader, form, parameter):
    by_form = payloads(reader.get(f"/api/events/?{form}"))
    assert by_form == payloads(reader.get(f"/api/events/?{parameter}"))
    assert by_form and len(by_form) < len(PAYLOADS)


def test_empty_generic_fields_ask_nothing(created, reader):
    """What the browsable form submits when its predicate boxes are left empty."""
    found = payloads(reader.get("/api/events/?where_path=&where_op=&where_value="))
    assert found == [event.payload for event in trove.query_events({})]


@pytest.mark.parametrize(
    "form",
    [
        "where_path=n",
        "where_path=n&where_op=gt",
        "where_op=gt&where_value=1",
        "where_value=1",
        "where_path=n&where_op=bigger&where_value=1",
        "where_path=n&where_op=in&where_value=1",
        "where_path=n&where_op=gt&where_value=[1]",
        "where_path=a..b&where_op=eq&where_value=1",
    ],
)
def test_an_incomplete_or_wrong_predicate_is_a_bad_request(created, reader, form):
    response = reader.get(f"/api/events/?{form}")
    assert response.status_code == 400, response.content


def test_the_browsable_form_offers_the_generic_fields(memory, django_user_model):
    from tests.api.test_browsable import browser

    page = browser(django_user_model).get("/api/events/", HTTP_ACCEPT="text/html")
    html = page.content.decode()
    assert 'name="where_path"' in html and 'name="where_value"' in html
    select = re.search(r'<select name="where_op"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None, "no operator menu"
    options = re.findall(r'<option value="([^"]*)"', select.group(1))
    assert options == [
        "",
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "exists",
        "contains",
        "startsWith",
    ]
