"""``GET /api/feed/`` and ``GET /api/feed/stream/``: the feed of SPEC §9 over HTTP.

The feed page is the answer to "what is after the last position I saw": a client keeps
the ``position`` of the page and asks for what is after it, and, positions having no late
arrivals, it never misses a version nor sees one twice. The stream sends the same versions
as server-sent events, so a browser's ``EventSource`` resumes by itself after a reconnect
(it sends ``Last-Event-ID``). A stream holds a worker for up to ``timeout`` seconds: serve
it with threaded workers (gunicorn ``--worker-class gthread``) or ASGI. Between reads it
holds no database connection on PostgreSQL (one listening connection per process wakes it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

from django.db import connections
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trove import feed
from trove.documents import Event
from trove.jsonvalues import json_problems

from . import hyperlinks, openapi
from .serializers import EventDocumentSerializer
from .views import (
    IgnoreAcceptNegotiation,
    TroveAPIMixin,
    raise_bad_parameter,
    refuse_unknown_parameters,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = feed.MAX_LIMIT
#: Seconds a stream stays open by default, and at most.
DEFAULT_TIMEOUT = 300
MAX_TIMEOUT = 3600
#: A comment is sent when nothing else was for this long (SPEC §9: at least every 15 s).
KEEP_ALIVE = 10.0
#: The largest position accepted in a request (a signed 64-bit integer).
MAX_POSITION = 2**63 - 1


def _integer(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise_bad_parameter(name, f"{name} must be an integer from {low} to {high}.")
    return int(raw)


def _filters(request: Request) -> dict[str, list[str]]:
    """``schema`` and ``producer``, each repeatable; every value text a storage can compare."""
    found = {}
    for name in ("schema", "producer"):
        values = request.query_params.getlist(name)
        if any(not value or json_problems(value, name) for value in values):
            raise_bad_parameter(name, f"{name} must be non-empty text without control characters.")
        found[name] = values
    return found


_FILTER_PARAMETERS = [
    OpenApiParameter(
        "schema", str, many=True, description="Only versions of this schema id (repeatable)."
    ),
    OpenApiParameter(
        "producer", str, many=True, description="Only versions by this producer (repeatable)."
    ),
]


class FeedView(TroveAPIMixin, APIView):
    """``GET /api/feed/``: every version after a position, in position order."""

    view_description = "Every version after `?after=` (a position), in commit order; follow `next`."

    @extend_schema(
        summary="The feed: every version after a position",
        description="Every stored version (not only the latest) with a position greater "
        "than `after`, in position order. Positions follow commit order with no late "
        "arrivals: once a version at position P is seen, no version at or below P ever "
        "appears later, so asking for `after=<position of the page>` again and again sees "
        "each version exactly once. No count is given. A query parameter not listed here "
        "is a 400.",
        parameters=[
            OpenApiParameter("after", int, description="A position (default 0: from the start)."),
            OpenApiParameter(
                "limit",
                int,
                description=f"Versions per page (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).",
            ),
            *_FILTER_PARAMETERS,
        ],
        responses={
            200: inline_serializer(
                "FeedPage",
                {
                    "results": EventDocumentSerializer(many=True),
                    "position": serializers.IntegerField(
                        help_text="The last position returned, or `after` when none was."
                    ),
                    "next": serializers.URLField(help_text="The URL of what comes after."),
                },
            ),
            **openapi.error_responses(400, *openapi.READ_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        refuse_unknown_parameters(request, ("after", "limit", "schema", "producer"))
        after = _integer(request.query_params.get("after"), "after", 0, 0, MAX_POSITION)
        raw_limit = request.query_params.get("limit")
        limit = min(_integer(raw_limit, "limit", DEFAULT_LIMIT, 1, MAX_POSITION), MAX_LIMIT)
        filters = _filters(request)
        events = feed.read_feed(after, limit, filters["schema"], filters["producer"])
        position = events[-1].position if events else after
        query = {"after": position, "limit": limit, **filters}
        url = request.build_absolute_uri(request.path) + "?" + urlencode(query, doseq=True)
        return Response(
            {
                "results": [hyperlinks.event_document(event, request) for event in events],
                "position": position,
                "next": url,
            }
        )


class FeedStreamView(TroveAPIMixin, APIView):
    """``GET /api/feed/stream/``: the feed as server-sent events, for as long as ``timeout``."""

    content_negotiation_class = IgnoreAcceptNegotiation
    view_description = "The feed as server-sent events (`Accept: text/event-stream`)."

    @extend_schema(
        summary="The feed as server-sent events",
        description="Each version after `after` (or after the `Last-Event-ID` header, which "
        "wins) as an event: `id: <position>`, `event: <schema id>`, `data: <the document "
        "as one line of JSON>`, then a blank line; versions committed later follow as they "
        "commit. A `: keep-alive` comment comes at least every 15 seconds. The stream ends "
        "after `timeout` seconds; EventSource clients reconnect and resume by themselves. "
        "A query parameter not listed here is a 400.",
        parameters=[
            OpenApiParameter("after", int, description="A position (default 0)."),
            OpenApiParameter(
                "timeout",
                int,
                description=f"Seconds before the stream closes (default {DEFAULT_TIMEOUT}, "
                f"at most {MAX_TIMEOUT}).",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                int,
                OpenApiParameter.HEADER,
                description="Resume after this position (sent by EventSource on reconnect).",
            ),
            *_FILTER_PARAMETERS,
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="A stream of server-sent events."
            ),
            **openapi.error_responses(400, *openapi.READ_ERRORS),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        refuse_unknown_parameters(request, ("after", "timeout", "schema", "producer"))
        after = _integer(request.query_params.get("after"), "after", 0, 0, MAX_POSITION)
        resume = request.headers.get("Last-Event-ID")
        if resume is not None:
            after = _integer(resume.strip(), "Last-Event-ID", 0, 0, MAX_POSITION)
        timeout = _integer(
            request.query_params.get("timeout"), "timeout", DEFAULT_TIMEOUT, 1, MAX_TIMEOUT
        )
        filters = _filters(request)
        response = StreamingHttpResponse(
            event_stream(after, filters["schema"], filters["producer"], timeout, request),
            content_type="text/event-stream; charset=utf-8",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # proxies (nginx) must pass each event on at once
        return response


def server_sent_event(event: Event, request: Request) -> bytes:
    """One version as a server-sent event (the schema id cannot break out of its line)."""
    name = event.schema.id.replace("\r", " ").replace("\n", " ")
    document = hyperlinks.event_document(event, request)
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.position}\nevent: {name}\ndata: {data}\n\n".encode()


def event_stream(
    after: int, schemas: list[str], producers: list[str], timeout: float, request: Request
) -> Iterator[bytes]:
    """The body of a stream: events as they commit, keep-alives while idle, until timeout."""
    deadline = time.monotonic() + timeout
    yield b": connected\n\n"
    versions = feed.tail(
        after,
        schemas,
        producers,
        wait=min(KEEP_ALIVE, timeout),
        on_idle=_release_connections,
    )
    try:
        for event in versions:
            yield b": keep-alive\n\n" if event is None else server_sent_event(event, request)
            if time.monotonic() >= deadline:
                return
    finally:
        versions.close()
        _release_connections()


def _release_connections() -> None:
    """Close this thread's idle database connections: a stream may last minutes, and
    Django would otherwise keep each one open (and out of the pool) until the end."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()
