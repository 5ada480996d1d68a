"""The plain-code validation of common event bodies accepts exactly what the serializer
accepts, and validates it to the same data: every other body, and every error, is the
serializer's."""

from __future__ import annotations

import pytest

from trove.api.serializers import EventCreateSerializer, simple_creation, validated_creations
from trove.limits import MAX_NAME

VALID = {"schema": "note.created", "payload": {"text": "hi", "n": [1, 2.5, None, True]}}

BODIES = [
    VALID,
    {**VALID, "producer": "billing"},
    {**VALID, "metadata": {"trace": "abc"}},
    {**VALID, "producer": "p" * MAX_NAME, "metadata": {}},
    {**VALID, "producer": "p" * (MAX_NAME + 1)},
    {**VALID, "producer": ""},
    {**VALID, "producer": " "},
    {**VALID, "producer": None},
    {**VALID, "producer": 5},
    {**VALID, "producer": "nul\x00"},
    {**VALID, "producer": "lone \ud800"},
    {**VALID, "metadata": None},
    {**VALID, "metadata": []},
    {**VALID, "metadata": {"k": "nul\x00"}},
    {**VALID, "payload": {"k": "lone \udfff"}},
    {**VALID, "payload": {"k": float("inf")}},
    {**VALID, "payload": []},
    {**VALID, "payload": "text"},
    {**VALID, "schema": ""},
    {**VALID, "schema": "s" * MAX_NAME},
    {**VALID, "schema": "s" * (MAX_NAME + 1)},
    {**VALID, "schema": "nul\x00"},
    {**VALID, "schema": 7},
    {**VALID, "schema": {"id": "note.created", "version": "1"}},
    {**VALID, "id": "8d5e0e5a-7a3b-4a52-9a80-0d2c9f8e7a11"},
    {**VALID, "links": []},
    {**VALID, "files": []},
    {**VALID, "colour": "red"},
    {"payload": {}},
    {"schema": "note.created"},
    {},
    [],
    "text",
    None,
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_plain_validation_agrees_with_the_serializer(body):
    serializer = EventCreateSerializer(data=body)
    simple = simple_creation(body)
    if simple is not None:
        assert serializer.is_valid(), serializer.errors
        assert simple == dict(serializer.validated_data)


@pytest.mark.parametrize("body", BODIES[:4], ids=range(4))
def test_the_common_bodies_need_no_serializer(body):
    assert simple_creation(body) is not None


def test_a_batch_is_validated_item_by_item_and_errors_name_the_item():
    assert (
        validated_creations([VALID, VALID], many=True, max_length=2) == [simple_creation(VALID)] * 2
    )
    with pytest.raises(Exception) as refused:
        validated_creations([VALID, {**VALID, "producer": ""}], many=True, max_length=2)
    assert refused.value.detail[1]["producer"] == ["This field may not be blank."]
    with pytest.raises(Exception) as refused:
        validated_creations([VALID] * 3, many=True, max_length=2)
    assert "no more than 2" in str(refused.value.detail)
