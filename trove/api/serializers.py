"""Request bodies validated with DRF serializers, and the documents the API answers with.

Input serializers check the shape of a request and name every problem; the Python API
(``trove.create_event`` …) then applies Trove's own rules. ``payload`` and ``metadata``
pass through untouched: no coercion, no stripping, no trimming of strings.

Responses are the canonical documents of ``trove.documents`` (``Event.to_dict`` …), not
serializer output; the ``*DocumentSerializer`` classes describe those documents for the
OpenAPI schema only, and the schemathesis test holds the two to each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from trove.documents import EventId, SchemaRef
from trove.exceptions import InvalidEvent
from trove.jsonvalues import json_problems
from trove.limits import (
    MAX_FILE_FIELD,
    MAX_HASH,
    MAX_NAME,
    MAX_SCHEMA_VERSION,
    MAX_VERSION,
    content_type_problems,
    schema_version_problems,
)
from trove.query import OPERATORS
from trove.schemas import split_inline_id


def raise_json_problems(value: Any, field: str = "") -> None:
    """Raise a DRF ``ValidationError`` if :func:`json_problems` finds any."""
    problems = json_problems(value, field)
    if problems:
        raise serializers.ValidationError(
            [f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems]
        )


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object, kept exactly as sent."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        raise_json_problems(value)
        return value


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, so that a misspelt field is an error, not a default."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(self.fields)
                raise serializers.ValidationError(
                    {key: [f"Unknown field; known fields: {known}."] for key in unknown}
                )
        return super().to_internal_value(data)


class StrictSerializerExtension(OpenApiSerializerExtension):
    """Tells the OpenAPI document that :class:`StrictSerializer` bodies take no other keys."""

    target_class = StrictSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


def text_field(max_length: int | None = None, **kwargs: Any) -> serializers.CharField:
    """A string taken as sent: never trimmed (DRF trims by default)."""
    return serializers.CharField(max_length=max_length, trim_whitespace=False, **kwargs)


# Event creation -----------------------------------------------------------------------


@dataclass(frozen=True)
class InlineSchema:
    """A JSON Schema sent with the event, to register as (``id``, ``version``)."""

    id: str
    version: str
    document: dict[str, Any]


_SCHEMA_REFERENCE = {
    "oneOf": [
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME,
            "description": "A schema id: its latest version.",
        },
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                "version": {"type": "string", "minLength": 1, "maxLength": MAX_SCHEMA_VERSION},
            },
            "required": ["id"],
            "additionalProperties": False,
            "description": "A schema id and version.",
        },
        {
            "type": "object",
            "properties": {"$id": {"type": "string", "minLength": 1}},
            "required": ["$id"],
            "additionalProperties": True,
            "description": "An inline JSON Schema, registered on the way: an `$id` of the form "
            "`name+vX.Y.Z` as schema `name` version `X.Y.Z`, any other `$id` as version `1`.",
        },
    ]
}


@extend_schema_field(_SCHEMA_REFERENCE)
class SchemaField(serializers.Field):
    """An event's schema: an id, ``{id, version}``, or an inline JSON Schema with ``$id``."""

    default_error_messages = {
        "invalid": "Give a schema id, {{id, version}}, or a JSON Schema with a '$id'.",
    }

    def to_internal_value(self, data: Any) -> SchemaRef | InlineSchema:
        if isinstance(data, str):
            return SchemaRef(self._name(data, "id", MAX_NAME))
        if not isinstance(data, dict):
            self.fail("invalid")
        if "$id" in data:
            if not isinstance(data["$id"], str) or not data["$id"]:
                raise serializers.ValidationError("'$id' must be a non-empty string.")
            raise_json_problems(data)
            name, version = split_inline_id(data["$id"])
            return InlineSchema(
                self._name(name, "$id", MAX_NAME),
                self._name(version, "$id", MAX_SCHEMA_VERSION),
                data,
            )
        if not isinstance(data.get("id"), str) or set(data) - {"id", "version"}:
            self.fail("invalid")
        version = data.get("version")
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, str | int | float):
                raise serializers.ValidationError("A schema version must be a string.")
            version = self._name(str(version), "version", MAX_SCHEMA_VERSION)
        return SchemaRef(self._name(data["id"], "id", MAX_NAME), version)

    @staticmethod
    def _name(value: str, label: str, limit: int) -> str:
        if not value:
            raise serializers.ValidationError(f"The schema {label} may not be empty.")
        if len(value) > limit:
            raise serializers.ValidationError(f"The schema {label} is longer than {limit}.")
        raise_json_problems(value)
        return value

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "uuid"},
            {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "version": {"type": "integer", "enum": [1]},
                },
                "required": ["id"],
            },
        ],
        "description": "An id for the new event (a UUID); Trove chooses one when omitted.",
    }
)
class NewEventIdField(serializers.Field):
    """The id a client chooses for a new event: a UUID, or ``{id, version: 1}``."""

    def to_internal_value(self, data: Any):
        try:
            event_id = EventId.coerce(data)
        except InvalidEvent as error:
            raise serializers.ValidationError(error.message) from error
        if event_id.version not in (None, 1):
            raise serializers.ValidationError(
                "A new event is version 1; append versions at /api/events/{id}/versions/."
            )
        return event_id.id

    def to_representation(self, value: Any) -> Any:
        return str(value)


class LinkTargetSerializer(StrictSerializer):
    id = serializers.UUIDField()
    version = serializers.IntegerField(
        min_value=1, max_value=MAX_VERSION, required=False, allow_null=True
    )


class LinkInputSerializer(StrictSerializer):
    """A link to write: it points at an existing event, optionally at one of its versions."""

    type = text_field(MAX_NAME)
    targetEvent = LinkTargetSerializer()
    metadata = JSONObjectField(required=False)


class FileInputSerializer(StrictSerializer):
    """A file sent inside a JSON body: text, base64 (``encoding``), or a reference."""

    contentType = text_field(MAX_FILE_FIELD, required=False, default="application/octet-stream")
    filename = text_field(MAX_FILE_FIELD, required=False, allow_null=True)
    data = text_field(allow_blank=True, help_text="Text, base64 text, or the URI of a reference.")
    encoding = serializers.ChoiceField(choices=["base64", "utf-8", "text"], required=False)
    isReference = serializers.BooleanField(required=False)
    hash = text_field(
        MAX_HASH, required=False, help_text="The expected `sha256:<hex>` of the bytes."
    )

    def validate_contentType(self, value: str) -> str:
        problems = content_type_problems(value)
        if problems:
            raise serializers.ValidationError(problems[0]["message"])
        return value

    def validate_filename(self, value: str | None) -> str | None:
        if value is not None:
            raise_json_problems(value)
        return value


class EventWriteSerializer(StrictSerializer):
    """What creating an event and appending a version have in common."""

    payload = JSONObjectField()
    producer = text_field(MAX_NAME, required=False)
    metadata = JSONObjectField(required=False)
    links = LinkInputSerializer(many=True, required=False)
    files = FileInputSerializer(many=True, required=False)


class EventCreateSerializer(EventWriteSerializer):
    """``POST /api/events/``: a new event (version 1)."""

    id = NewEventIdField(required=False)
    schema = SchemaField()


#: The keys of the bodies :func:`simple_creation` reads; any other goes to the serializer.
_SIMPLE_KEYS = frozenset({"schema", "payload", "producer", "metadata"})


def simple_creation(data: Any) -> dict[str, Any] | None:
    """What :class:`EventCreateSerializer` validates ``data`` to, for the common body (a
    schema id, a payload, optionally a producer and metadata) that it accepts; ``None`` for
    any other body, which the serializer then validates, naming every problem.

    The serializer takes most of a small request's validation time to find nothing
    wrong; these checks are its own for those fields (no unknown keys, a non-empty schema
    id within ``MAX_NAME``, JSON objects, text within ``MAX_NAME``, and nothing
    :func:`json_problems` refuses), and a body that fails any of them is left to it.
    """
    if not isinstance(data, dict) or not _SIMPLE_KEYS.issuperset(data):
        return None
    schema, payload = data.get("schema"), data.get("payload")
    if not (isinstance(schema, str) and 0 < len(schema) <= MAX_NAME):
        return None
    if not isinstance(payload, dict):
        return None
    validated: dict[str, Any] = {"schema": SchemaRef(schema), "payload": payload}
    producer = data.get("producer", None)
    if "producer" in data:
        if not (isinstance(producer, str) and 0 < len(producer) <= MAX_NAME):
            return None
        validated["producer"] = producer
    if "metadata" in data:
        if not isinstance(data["metadata"], dict):
            return None
        validated["metadata"] = data["metadata"]
    if json_problems([schema, producer, payload, data.get("metadata")], ""):
        return None
    return validated


def validated_creations(data: Any, many: bool = False, max_length: int | None = None) -> Any:
    """The validated data of :class:`EventCreateSerializer` for ``data`` (a list of them
    with ``many``, at most ``max_length``), by :func:`simple_creation` where it answers;
    a 400 naming every problem otherwise."""
    if many and isinstance(data, list) and (max_length is None or len(data) <= max_length):
        simple = [simple_creation(item) for item in data]
        if None not in simple:
            return simple
    elif not many:
        simple_one = simple_creation(data)
        if simple_one is not None:
            return simple_one
    serializer = (
        EventCreateSerializer(data=data, many=True, max_length=max_length)
        if many
        else EventCreateSerializer(data=data)
    )
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class EventAppendSerializer(EventWriteSerializer):
    """``POST /api/events/{id}/versions/``: what is left out is kept from the latest version."""

    schema = SchemaField(required=False)
    expectedVersion = serializers.IntegerField(
        min_value=1,
        max_value=MAX_VERSION,
        required=False,
        help_text="Refuse the append (409) unless this is the latest version.",
    )
    links = LinkInputSerializer(
        many=True, required=False, help_text="Replaces the links; left out, they are kept."
    )


# The browsable API's forms ----------------------------------------------------------


def _json_text(help_text: str, initial: Any, **kwargs: Any) -> serializers.JSONField:
    return serializers.JSONField(
        help_text=help_text, initial=initial, style={"base_template": "textarea.html"}, **kwargs
    )


class EventCreateFormSerializer(serializers.Serializer):
    """The fields of the browsable API's form for ``POST /api/events/``, which posts them
    as multipart parts; :class:`EventCreateSerializer` validates what arrives. ``file`` is
    any uploaded part, and write-only so that the raw JSON form does not offer it."""

    schema = serializers.CharField(
        help_text="A schema id, or a JSON Schema with a $id (as JSON).", initial=""
    )
    payload = _json_text("A JSON object.", {})
    producer = serializers.CharField(required=False, write_only=True)
    metadata = _json_text("A JSON object.", {}, required=False)
    links = _json_text(
        'A JSON list, e.g. [{"type": "parent", "targetEvent": {"id": "…"}}].', [], required=False
    )
    file = serializers.FileField(required=False, write_only=True, help_text="A file to attach.")

    def get_initial(self) -> dict[str, Any]:
        """What the raw JSON form starts with: no write-only field, as none is JSON."""
        return {
            name: value
            for name, value in super().get_initial().items()
            if not self.fields[name].write_only
        }


class EventAppendFormSerializer(EventCreateFormSerializer):
    """The browsable API's form for ``POST /api/events/{id}/versions/``."""

    schema = serializers.CharField(
        required=False, write_only=True, help_text="Left empty: the schema of the latest version."
    )
    links = serializers.CharField(
        required=False,
        write_only=True,
        style={"base_template": "textarea.html"},
        help_text="A JSON list; left empty, the links are kept.",
    )
    expectedVersion = serializers.IntegerField(
        required=False, write_only=True, help_text="Refuse (409) unless this is the latest."
    )


# Schemas ---------------------------------------------------------------------------


class SchemaRegistrationSerializer(StrictSerializer):
    """``POST /api/schemas/``: a JSON Schema to register under (id, version)."""

    id = text_field(MAX_NAME)
    version = text_field(MAX_SCHEMA_VERSION)
    schema = JSONObjectField(help_text="A JSON Schema document.")
    description = text_field(required=False, allow_blank=True)

    def validate_id(self, value: str) -> str:
        raise_json_problems(value)
        return value

    def validate_version(self, value: str) -> str:
        problems = schema_version_problems(value)
        if problems:
            raise serializers.ValidationError(problems[0]["message"])
        return value

    def validate_description(self, value: str) -> str:
        raise_json_problems(value)
        return value


class SchemaDocumentSerializer(serializers.Serializer):
    id = serializers.CharField()
    version = serializers.CharField()
    schema = JSONObjectField()
    description = serializers.CharField(allow_blank=True)
    createdAt = serializers.DateTimeField()


# Documents (OpenAPI only) -----------------------------------------------------------


class EventIdDocumentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.IntegerField(min_value=1)


class LinkTargetDocumentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.IntegerField(min_value=1, allow_null=True)
    url = serializers.URLField(help_text="The pinned version's address, else the event's.")


class SchemaRefDocumentSerializer(serializers.Serializer):
    id = serializers.CharField()
    version = serializers.CharField(allow_null=True)


class FileDocumentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField(help_text="The address of this record.")
    contentUrl = serializers.URLField(help_text="The address of the bytes.")
    contentType = serializers.CharField()
    filename = serializers.CharField(allow_null=True)
    size = serializers.IntegerField(allow_null=True)
    hash = serializers.CharField(allow_null=True)
    isReference = serializers.BooleanField()
    uri = serializers.CharField(required=False, help_text="Only for references.")


class LinkDocumentSerializer(serializers.Serializer):
    type = serializers.CharField()
    targetEvent = LinkTargetDocumentSerializer()
    metadata = JSONObjectField()


class EventDocumentSerializer(serializers.Serializer):
    """The event document of SPEC §1."""

    id = EventIdDocumentSerializer()
    url = serializers.URLField(help_text="The address of this version.")
    createdAt = serializers.DateTimeField()
    producer = serializers.CharField()
    schema = SchemaRefDocumentSerializer()
    payload = JSONObjectField()
    files = FileDocumentSerializer(many=True)
    links = LinkDocumentSerializer(many=True)
    metadata = JSONObjectField()
    position = serializers.IntegerField(
        min_value=1, help_text="The version's place in the store's commit order (the feed's)."
    )


class ProblemSerializer(serializers.Serializer):
    field = serializers.CharField(allow_blank=True)
    message = serializers.CharField()
    validator = serializers.CharField(
        required=False, help_text="For a payload that fails its schema: the failing keyword."
    )


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    problems = ProblemSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    """The one shape of every error response (see ``trove.api.exceptions``)."""

    error = ErrorDetailSerializer()


# Queries (OpenAPI only: EventQuery.parse validates) ---------------------------------


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
)
class StringsField(serializers.JSONField):
    """A string or a list of strings (OpenAPI only)."""


class TimeRangeSerializer(StrictSerializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)


class LinkFilterSerializer(StrictSerializer):
    type = serializers.CharField(required=False)
    targetEvent = LinkTargetSerializer(required=False)


class SortKeySerializer(StrictSerializer):
    field = serializers.CharField(
        help_text="`createdAt`, `producer`, `schema`, `id`, `version`, or `payload.<path>`."
    )
    direction = serializers.ChoiceField(choices=["asc", "desc"], required=False)


class PredicateSerializer(StrictSerializer):
    path = serializers.CharField(help_text="A dotted payload path, as in payload.")
    op = serializers.ChoiceField(choices=list(OPERATORS))
    value = serializers.JSONField(
        help_text="eq/ne/contains: any JSON; gt/gte/lt/lte: a number or a string; "
        "in: a non-empty list; exists: true or false; startsWith: a string."
    )


class EventQuerySerializer(StrictSerializer):
    """The EventQuery of SPEC §3."""

    schema = StringsField(required=False, help_text="The schema id is one of these.")
    producer = StringsField(required=False, help_text="The producer is one of these.")
    timeRange = TimeRangeSerializer(required=False)
    links = LinkFilterSerializer(many=True, required=False)
    payload = JSONObjectField(
        required=False,
        help_text="Each key (a dotted path) equals the given JSON value, type-exactly.",
    )
    where = PredicateSerializer(
        many=True, required=False, help_text="Predicates on the payload; every one must hold."
    )
    text = serializers.CharField(
        required=False,
        help_text="Words (runs of letters and digits); each must occur as a whole word in "
        "some string value of the payload, case-insensitively.",
    )
    limit = serializers.IntegerField(min_value=0, required=False)
    offset = serializers.IntegerField(min_value=0, required=False)
    sort = SortKeySerializer(many=True, required=False)


class QueryPageSerializer(serializers.Serializer):
    """A page of ``POST /api/query/``: ``next``/``previous`` are the queries to post for the
    adjacent pages (``null`` at either end)."""

    count = serializers.IntegerField()
    next = EventQuerySerializer(allow_null=True)
    previous = EventQuerySerializer(allow_null=True)
    results = EventDocumentSerializer(many=True)
