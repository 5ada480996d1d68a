"""What drf-spectacular cannot infer: the filter parameters, multipart bodies, error responses.

The filter parameters are read off :class:`~trove.api.filters.EventFilterSet` itself, so the
document follows the FilterSet. ``payload.<path>`` parameters have open-ended names, which
OpenAPI cannot list: they are described as one object parameter ``payload`` with
``style: form, explode: true``, whose keys are the parameter names, so that a generated
client sends ``payload.author.name=Jane`` for ``{"payload.author.name": "Jane"}``.
"""

from __future__ import annotations

import html
from typing import Any

import django_filters
from drf_spectacular.extensions import OpenApiFilterExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_parameter_type
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from trove.limits import MAX_NAME

from .filters import EventFilterSet, InstantFilter, RepeatableFilter, SortFilter
from .serializers import ErrorSerializer

_FILTER_SCHEMAS: tuple[tuple[type, dict[str, Any]], ...] = (
    (RepeatableFilter, {"type": "array", "items": {"type": "string"}}),
    (InstantFilter, {"type": "string", "format": "date-time"}),
    (django_filters.UUIDFilter, {"type": "string", "format": "uuid"}),
    (SortFilter, {"type": "string", "example": "-createdAt,payload.author.name"}),
    (django_filters.CharFilter, {"type": "string"}),
)


class EventFilterExtension(OpenApiFilterExtension):
    """The query parameters of :class:`~trove.api.filters.EventFilterBackend`."""

    target_class = "trove.api.filters.EventFilterBackend"
    priority = 1

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs) -> list[dict]:
        parameters = []
        for name, event_filter in EventFilterSet.base_filters.items():
            schema = next(s for cls, s in _FILTER_SCHEMAS if isinstance(event_filter, cls))
            repeated = schema["type"] == "array"
            parameters.append(
                build_parameter_type(
                    name=name,
                    schema=dict(schema),
                    location=OpenApiParameter.QUERY,
                    description=markdown_help(str(event_filter.extra.get("help_text", ""))),
                    explode=True if repeated else None,
                    style="form" if repeated else None,
                )
            )
        parameters.append(PAYLOAD_PARAMETER)
        return parameters


#: Every ``payload.<path>`` parameter, as an exploded object (see the module docstring).
PAYLOAD_PARAMETER: dict[str, Any] = {
    "name": "payload",
    "in": "query",
    "style": "form",
    "explode": True,
    "required": False,
    "description": "Payload filters: each key is a parameter name `payload.<path>` (a dotted "
    "path into the payload) and its value the value to equal, read as JSON when it parses "
    'as JSON, else as text: `{"payload.author.name": "Jane"}` sends '
    "`payload.author.name=Jane`.",
    "schema": {
        "type": "object",
        "additionalProperties": {"type": "string"},
    },
}


def markdown_help(text: str) -> str:
    """A filter's help text, written as HTML for the browsable form, as Markdown: the
    entities decoded and ``payload.<path>`` in backticks so that it is not read as a tag."""
    return html.unescape(text).replace("payload.<path>", "`payload.<path>`")


#: Component descriptions for API users. drf-spectacular would otherwise use serializer
#: docstrings, which are written for Trove's developers; other components get none.
COMPONENT_DESCRIPTIONS = {
    "EventDocument": "One version of an event, as every endpoint answers it.",
    "EventCreate": "A new event (version 1).",
    "EventAppend": "A new version: what is left out is kept from the latest version.",
    "LinkInput": "A link to an existing event, optionally pinned to one of its versions.",
    "FileInput": "A file inside a JSON body: text, base64 text (`encoding`), or a reference "
    "(`isReference`, `data` is its URI).",
    "SchemaRegistration": "A JSON Schema to register under (id, version).",
    "EventQuery": "A query: every criterion given must hold.",
    "QueryPage": "A page of answers; `next` and `previous` are the queries to post for the "
    "adjacent pages (`null` at either end).",
    "Error": "The one shape of every error response.",
}


def describe_components(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular post-processing hook applying :data:`COMPONENT_DESCRIPTIONS`
    (enumerations keep the list of their values)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name in COMPONENT_DESCRIPTIONS:
            component["description"] = COMPONENT_DESCRIPTIONS[name]
        elif "enum" not in component:
            component.pop("description", None)
    return result


#: The settings ``/api/schema/`` is generated with, on top of the project's.
SCHEMA_SETTINGS = {
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "trove.api.openapi.describe_components",
    ],
    "ENUM_NAME_OVERRIDES": {"StorageStateEnum": ["ok", "unavailable"]},
}


class TroveAutoSchema(AutoSchema):
    """Operations described for users: where ``extend_schema`` gives no description, the
    view's ``view_description`` (what the browsable API shows), never its docstring."""

    def get_description(self) -> str:
        return self.view.get_view_description()


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The error document under each status code an operation can answer with."""
    meaning = {
        400: "Malformed request or query; every problem is listed.",
        401: "Not authenticated (when the first authentication class can challenge).",
        403: "Not authenticated, or not allowed.",
        404: "No such event, version, file or schema.",
        409: "Version conflict.",
        411: "A chunked request body: send it with a Content-Length.",
        413: "A file is larger than TROVE['max_file_size'], or the JSON body (or the text "
        "parts of a multipart body) is larger than TROVE['max_request_size'].",
        415: "Unsupported content type.",
        422: "The payload fails its schema (every violation listed), the schema is not "
        "registered in strict mode, or file bytes do not match their declared hash.",
        503: "A storage backend is unavailable.",
    }
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=meaning[code]) for code in codes
    }


READ_ERRORS = (401, 403, 503)
WRITE_ERRORS = (400, 401, 403, 409, 411, 413, 415, 422, 503)

_EVENT_PARTS: dict[str, Any] = {
    "schema": {
        "type": "string",
        "description": "A schema id, or a JSON Schema object (with `$id`) as JSON text.",
    },
    "payload": {"type": "string", "description": "The payload: a JSON object, as JSON text."},
    "producer": {"type": "string", "maxLength": MAX_NAME},
    "metadata": {"type": "string", "description": "A JSON object, as JSON text."},
    "links": {"type": "string", "description": "A JSON list of links, as JSON text."},
    "files": {"type": "string", "description": "A JSON list of inline files, as JSON text."},
}

#: ``multipart/form-data`` of ``POST /api/events/``: every uploaded part is a file.
EVENT_MULTIPART: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_EVENT_PARTS,
        "id": {"type": "string", "format": "uuid"},
    },
    "required": ["schema", "payload"],
    "additionalProperties": {
        "type": "string",
        "format": "binary",
        "description": "Any uploaded part, whatever its name, becomes a file of the event.",
    },
}

#: ``multipart/form-data`` of ``POST /api/events/{id}/versions/``.
VERSION_MULTIPART: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_EVENT_PARTS,
        "expectedVersion": {"type": "integer", "minimum": 1},
    },
    "required": ["payload"],
    "additionalProperties": EVENT_MULTIPART["additionalProperties"],
}
