"""``POST /api/cloudevents/``: the CloudEvents HTTP binding (SPEC §10), so that any
CloudEvents producer (the official SDKs among them) can write to Trove.

Three modes, told apart by ``Content-Type`` as the binding says: structured
(``application/cloudevents+json``, one event as JSON), batch
(``application/cloudevents-batch+json``, a JSON array, stored all or nothing) and binary
(``ce-*`` headers hold the attributes, the body is ``data``; JSON bodies only, since a
payload is a JSON object). Any other content type is 415.

Delivery is at least once in most CloudEvents transports, so storing is idempotent: a
CloudEvent maps to a fixed event id (see :mod:`trove.cloudevents`) and one already stored
answers 200 with the stored event instead of 201. A CloudEvent exported by Trove (with
``troveid``) writes that event's version, or answers 200 if it is there.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, UnsupportedMediaType, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

import trove
from trove.cloudevents import Incoming, from_cloudevent
from trove.conf import trove_settings
from trove.documents import Event
from trove.exceptions import InvalidEvent, VersionConflict
from trove.jsonvalues import json_depth
from trove.storage.handler import storages

from . import openapi
from .hyperlinks import event_document
from .parsers import TroveJSONParser
from .views import BATCH_LIMIT, TroveAPIMixin

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


class StructuredParser(TroveJSONParser):
    media_type = STRUCTURED


class BatchParser(TroveJSONParser):
    media_type = BATCH


class BinaryParser(TroveJSONParser):
    """Binary mode: the body is the event's ``data``, JSON."""

    media_type = "application/json"


def binary_attributes(request: Request) -> dict[str, Any]:
    """The attributes binary mode sends as ``ce-<name>`` headers (values percent-encoded),
    with ``datacontenttype`` from ``Content-Type``."""
    attributes: dict[str, Any] = {
        key[len("HTTP_CE_") :].lower(): unquote(value)
        for key, value in request.META.items()
        if key.startswith("HTTP_CE_")
    }
    if "specversion" not in attributes:
        raise InvalidEvent(
            "A binary-mode CloudEvent needs its attributes in ce-* headers (ce-specversion, "
            "ce-id, ce-source, ce-type); or send application/cloudevents+json.",
            problems=[{"field": "ce-specversion", "message": "missing header"}],
        )
    if request.content_type:
        attributes["datacontenttype"] = request.content_type
        attributes["data"] = request.data
        return attributes
    # No Content-Type (SDKs send none when datacontenttype is unset): JSON, the default.
    try:
        attributes["data"] = json.loads(request.body)
    except ValueError as error:
        raise ParseError(f"The body of a binary-mode CloudEvent is not JSON: {error}.") from error
    return attributes


def _cloudevent(**kwargs: Any) -> Any:
    """A CloudEvent in the JSON event format (other attributes and extensions allowed), as
    one named component, so that generated clients get one model for both JSON modes."""
    return inline_serializer(
        name="CloudEvent",
        fields={
            "specversion": serializers.CharField(),
            "id": serializers.CharField(),
            "source": serializers.CharField(),
            "type": serializers.CharField(),
            "data": serializers.JSONField(required=False),
        },
        **kwargs,
    )


@extend_schema(
    summary="Store CloudEvents (structured, batch or binary mode)",
    request={
        STRUCTURED: _cloudevent(),
        BATCH: _cloudevent(many=True),
        "application/json": OpenApiTypes.OBJECT,
    },
    responses={
        200: OpenApiResponse(description="Already stored: the stored event (or list)."),
        201: OpenApiResponse(description="Stored: the event, or the list of a batch."),
        415: OpenApiResponse(description="Not a CloudEvents content type."),
        **openapi.error_responses(*openapi.WRITE_ERRORS),
    },
)
class CloudEventsView(TroveAPIMixin, APIView):
    """Receives CloudEvents over HTTP and stores each as an event."""

    write_permission = "trove.add_event"
    parser_classes = [StructuredParser, BatchParser, BinaryParser]

    def post(self, request: Request) -> Response:
        media = (request.content_type or "").split(";")[0].strip().lower()
        if media == BATCH:
            items = request.data
            if not isinstance(items, list) or not 1 <= len(items) <= BATCH_LIMIT:
                raise ValidationError(
                    {"batch": [f"A batch is a JSON array of 1 to {BATCH_LIMIT} CloudEvents."]}
                )
        elif media == STRUCTURED:
            items = [request.data]
        elif media == BinaryParser.media_type or (not media and "HTTP_CE_ID" in request.META):
            items = [binary_attributes(request)]
        else:
            raise UnsupportedMediaType(
                media or "none",
                detail=f"Unsupported content type {media or '(none)'}: send {STRUCTURED}, "
                f"{BATCH} or a binary-mode CloudEvent (ce-* headers, a JSON body).",
            )
        self._check_depth(items)
        now = timezone.now()
        incoming = []
        for index, item in enumerate(items):
            try:
                incoming.append(from_cloudevent(item, now=now))
            except InvalidEvent as error:
                if media != BATCH:
                    raise
                raise InvalidEvent(
                    f"CloudEvent {index}: {error.message}",
                    problems=[
                        {"field": f"[{index}].{p['field']}", "message": p["message"]}
                        for p in error.problems
                    ],
                ) from error
        with trove.transaction():
            stored = [self._store(item) for item in incoming]
        created = any(new for _, new in stored)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        documents = [event_document(event, request) for event, _ in stored]
        return Response(documents if media == BATCH else documents[0], status=code)

    def _check_depth(self, items: list[Any]) -> None:
        limit = trove_settings.max_json_depth
        if json_depth(items) > limit + 1:
            raise ParseError(f"The CloudEvents nest deeper than {limit} levels.")

    def _producer(self, source: str) -> str:
        from .exceptions import ProducerMismatch

        if not trove_settings.bind_producer_to_user:
            return source
        username = self.request.user.get_username()
        if source != username:
            raise ProducerMismatch(
                f"Events you write have producer {username!r}, not the source {source!r} "
                "(bind_producer_to_user is on)."
            )
        return username

    def _store(self, item: Incoming) -> tuple[Event, bool]:
        """The stored event, and whether this request stored it."""
        event = item.event
        if event.files:
            raise InvalidEvent(
                "trovefiles cannot be sent over HTTP: the bytes are not part of a CloudEvent "
                "(use manage.py trove_import --files).",
                problems=[{"field": "trovefiles", "message": "not accepted here"}],
            )
        producer = self._producer(event.producer)
        existing = storages.events.get_event(event.uuid, event.version)
        if existing is not None:
            return existing, False
        writing = {
            "payload": event.payload,
            "schema": event.schema,
            "producer": producer,
            "metadata": event.metadata,
            "links": [link.to_dict() for link in event.links],
        }
        try:
            if event.version == 1:
                return trove.create_event(**writing, event_id=event.uuid), True
            return trove.append_version(
                event.uuid, **writing, expected_version=event.version - 1
            ), True
        except VersionConflict:
            again = storages.events.get_event(event.uuid, event.version)
            if again is None or item.from_trove:
                raise
            return again, False  # delivered twice at once: the other request stored it
