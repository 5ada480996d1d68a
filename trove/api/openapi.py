"""What drf-spectacular cannot infer: the filter parameters, multipart bodies, error responses.

The filter parameters are read off :class:`~trove.api.filters.EventFilterSet` itself, so the
document follows the FilterSet. ``payload.<path>`` parameters have open-ended names, which
OpenAPI cannot list; the list operation's description explains them.
"""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.extensions import OpenApiFilterExtension
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
                    description=str(event_filter.extra.get("help_text", "")),
                    explode=True if repeated else None,
                    style="form" if repeated else None,
                )
            )
        return parameters


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
