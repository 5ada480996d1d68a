"""The REST API of SPEC §5, over the Python API so that it serves every storage backend.

Events are created and versioned, never updated or deleted. Every view answers errors
with the one shape of :mod:`trove.api.exceptions` and checks access with
:class:`~trove.api.permissions.TroveAccess`; neither needs a project setting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db import transaction as db_transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse as api_reverse
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

import trove
from trove import schemas
from trove.conf import trove_settings
from trove.documents import Event, SchemaRef, format_instant
from trove.downloads import file_response
from trove.exceptions import NotFound
from trove.jsonvalues import json_problems
from trove.limits import MAX_VERSION, content_type_problems
from trove.query import OPERATORS, EventQuery
from trove.service import NewFile, is_registered

from . import openapi
from .exceptions import ProducerMismatch, exception_handler
from .filters import EventFilterBackend, EventFilterSet, EventSequence
from .pagination import EventPagination
from .parsers import EventMultiPartParser, TroveJSONParser, refuse_unsized_body
from .permissions import TroveAccess
from .serializers import (
    EventAppendSerializer,
    EventCreateSerializer,
    EventDocumentSerializer,
    EventQuerySerializer,
    FileDocumentSerializer,
    InlineSchema,
    LinkDocumentSerializer,
    QueryPageSerializer,
    SchemaDocumentSerializer,
    SchemaRegistrationSerializer,
)

#: Events created by one batch request, at most.
BATCH_LIMIT = 1000


class TroveAPIMixin(APIView):
    """What every Trove view shares: access rules and the error shape."""

    permission_classes = [TroveAccess]
    parser_classes = [TroveJSONParser]

    def get_exception_handler(self):
        return exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        refuse_unsized_body(request)


def event_uuid(value: str) -> uuid.UUID:
    """The event id of a URL; anything that is not a UUID names no event (404)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"Event {value!r} does not exist.") from None


def text_parameter(request: Request, name: str) -> str | None:
    """A query-string parameter that must be text a storage can compare; empty means none."""
    value = request.query_params.get(name)
    if value and json_problems(value, name):
        raise_bad_parameter(name, f"{name} contains a character no event can hold.")
    return value or None


def version_parameter(request: Request) -> int | None:
    value = request.query_params.get("version")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_VERSION:
        raise_bad_parameter("version", "version must be a positive integer.")
    return int(value)


def raise_bad_parameter(name: str, message: str) -> None:
    raise ValidationError({name: [message]})


def document(request: Request) -> Any:
    """The body without the uploaded parts, which DRF merges into ``request.data``."""
    if not request.FILES:
        return request.data
    return {key: value for key, value in request.data.items() if key not in request.FILES}


def documents(events: list[Event]) -> list[dict[str, Any]]:
    return [event.to_dict() for event in events]


#: What registering a schema needs, through /api/schemas/ or inline in an event (SPEC §5).
REGISTER_PERMISSION = "trove.add_eventschema"


@contextmanager
def registering_inline_schemas(request: Request, items: list[dict[str, Any]]) -> Iterator[None]:
    """Register the inline schemas of ``items`` in the transaction that writes the events,
    so that a failed write leaves no schema behind.

    An inline schema registers a schema, so the user needs ``trove.add_eventschema``
    (403 before anything is written), unless exactly that document is registered under
    that (id, version) already: then nothing is registered, and writing an event that
    names it by its document needs no more than writing one that names it by id.
    """
    inline = [item["schema"] for item in items if isinstance(item.get("schema"), InlineSchema)]
    new = [s for s in inline if not is_registered(s.id, s.version, s.document)]
    if new and not request.user.has_perm(REGISTER_PERMISSION):
        names = ", ".join(sorted({f"{s.id} version {s.version}" for s in new}))
        raise PermissionDenied(
            f"Registering schema {names} (inline in the event) needs the "
            f"{REGISTER_PERMISSION} permission."
        )
    if not new:
        yield
        return
    with db_transaction.atomic(using=DEFAULT_DB_ALIAS):
        for schema in new:
            trove.register_schema(schema.id, schema.version, schema.document)
        yield


_EVENT_CREATE_JSON = PolymorphicProxySerializer(
    component_name="EventCreateOrBatch",
    serializers=[EventCreateSerializer, EventCreateSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)

_TYPE = OpenApiParameter("type", str, description="Only links of this type.")
_VERSION = OpenApiParameter(
    "version", int, description="Of this version of the event (default: the latest)."
)


@extend_schema_view(
    list=extend_schema(
        summary="List and filter events",
        description="The latest version of each event, filtered and ordered by the query "
        "string, in pages. Besides the parameters below, `payload.<path>=<value>` keeps "
        "events whose payload at the dotted path equals the value, read as JSON when it "
        'parses as JSON (`payload.n=1` is the number 1, `payload.n="1"` the string) '
        "and as text otherwise; `payload.<path>__<op>=<value>` holds a `where` predicate, "
        f"`op` one of {', '.join(OPERATORS)}, its value read the same way (`in`: repeat "
        "the parameter for each value; `exists`: true or false). The same question "
        "posted to /api/query/ answers the same events in the same order.",
        responses={
            200: EventDocumentSerializer(many=True),
            **openapi.error_responses(400, *openapi.READ_ERRORS),
        },
    ),
    create=extend_schema(
        summary="Create events",
        description="Create an event (201 with its document), or several at once from a "
        "JSON list (all or none are stored; 201 with the list). Files come inline "
        "(text, or base64 with `encoding`), as references (`isReference`), or, in "
        "multipart form data, as uploaded parts. Needs the `trove.add_event` "
        "permission.",
        request={
            "application/json": _EVENT_CREATE_JSON,
            "multipart/form-data": openapi.EVENT_MULTIPART,
        },
        responses={
            201: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="EventOrBatch",
                    serializers=[EventDocumentSerializer, EventDocumentSerializer(many=True)],
                    resource_type_field_name=None,
                    many=False,
                ),
                description="The stored event, or the list of stored events of a batch.",
            ),
            **openapi.error_responses(*openapi.WRITE_ERRORS),
        },
    ),
    retrieve=extend_schema(
        summary="The latest version of an event",
        responses={
            200: EventDocumentSerializer,
            **openapi.error_responses(404, *openapi.READ_ERRORS),
        },
    ),
)
class EventViewSet(TroveAPIMixin, GenericViewSet):
    """Events: list, filter, create; each event's versions, links and backlinks."""

    write_permission = "trove.add_event"
    lookup_url_kwarg = "event_id"
    lookup_value_regex = "[^/]+"
    filter_backends = [EventFilterBackend]
    filterset_class = EventFilterSet
    pagination_class = EventPagination
    parser_classes = [TroveJSONParser, EventMultiPartParser]

    def get_queryset(self) -> EventSequence:
        return EventSequence()

    def get_serializer_class(self):
        if self.action == "append_version":
            return EventAppendSerializer
        return EventCreateSerializer

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(documents(page))

    def create(self, request: Request) -> Response:
        if isinstance(request.data, list):
            serializer = EventCreateSerializer(data=request.data, many=True, max_length=BATCH_LIMIT)
            serializer.is_valid(raise_exception=True)
            items = [self._creation(data, uploads=[]) for data in serializer.validated_data]
            with registering_inline_schemas(request, serializer.validated_data):
                events = trove.create_events(items)
            return Response(documents(events), status=status.HTTP_201_CREATED)
        serializer = EventCreateSerializer(data=document(request))
        serializer.is_valid(raise_exception=True)
        item = self._creation(serializer.validated_data, uploads=self._uploads(request))
        with registering_inline_schemas(request, [serializer.validated_data]):
            event = trove.create_event(**item)
        return self._created(event, "trove-event-detail", event_id=str(event.uuid))

    def retrieve(self, request: Request, event_id: str) -> Response:
        return Response(trove.get_event(event_uuid(event_id)).to_dict())

    @extend_schema(
        summary="Every version of an event, oldest first",
        responses={
            200: EventDocumentSerializer(many=True),
            **openapi.error_responses(404, *openapi.READ_ERRORS),
        },
    )
    @action(detail=True, methods=["get"], url_path="versions", url_name="versions")
    def versions(self, request: Request, event_id: str) -> Response:
        return Response(documents(trove.get_versions(event_uuid(event_id))))

    @extend_schema(
        summary="Append a version",
        description="Version N+1 of the event. What is left out is kept from version N "
        "(links included; new files are added to its files). With `expectedVersion`, the "
        "append is refused (409) unless N is that version. Needs `trove.add_event`.",
        request={
            "application/json": EventAppendSerializer,
            "multipart/form-data": openapi.VERSION_MULTIPART,
        },
        responses={
            201: EventDocumentSerializer,
            **openapi.error_responses(404, *openapi.WRITE_ERRORS),
        },
    )
    @versions.mapping.post
    def append_version(self, request: Request, event_id: str) -> Response:
        identifier = event_uuid(event_id)
        serializer = EventAppendSerializer(data=document(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        arguments = self._writing(data, uploads=self._uploads(request))
        arguments["expected_version"] = data.get("expectedVersion")
        if "links" not in data:
            arguments.pop("links")
        with registering_inline_schemas(request, [data]):
            event = trove.append_version(identifier, **arguments)
        return self._created(
            event, "trove-event-version", event_id=str(event.uuid), version=event.version
        )

    @extend_schema(
        summary="One version of an event",
        parameters=[OpenApiParameter("version", int, OpenApiParameter.PATH)],
        responses={
            200: EventDocumentSerializer,
            **openapi.error_responses(404, *openapi.READ_ERRORS),
        },
    )
    @action(
        detail=True, methods=["get"], url_path=r"versions/(?P<version>[^/]+)", url_name="version"
    )
    def version(self, request: Request, event_id: str, version: str) -> Response:
        identifier = event_uuid(event_id)
        if not (version.isascii() and version.isdigit() and 1 <= int(version) <= MAX_VERSION):
            raise NotFound(f"Event {identifier} has no version {version!r}.")
        return Response(trove.get_event(identifier, int(version)).to_dict())

    @extend_schema(
        summary="The outgoing links of an event",
        parameters=[_TYPE, _VERSION],
        responses={
            200: LinkDocumentSerializer(many=True),
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
        },
    )
    @action(detail=True, methods=["get"])
    def links(self, request: Request, event_id: str) -> Response:
        links = trove.get_links(
            event_uuid(event_id),
            type=text_parameter(request, "type"),
            version=version_parameter(request),
        )
        return Response([link.to_dict() for link in links])

    @extend_schema(
        summary="The events an event links to",
        description="The pinned version of each link's target, else its latest version.",
        parameters=[_TYPE, _VERSION],
        responses={
            200: EventDocumentSerializer(many=True),
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
        },
    )
    @action(detail=True, methods=["get"])
    def linked(self, request: Request, event_id: str) -> Response:
        events = trove.get_linked_events(
            event_uuid(event_id),
            type=text_parameter(request, "type"),
            version=version_parameter(request),
        )
        return Response(documents(events))

    @extend_schema(
        summary="The events that link to an event",
        description="Events whose latest version links to this event, oldest first.",
        parameters=[_TYPE],
        responses={
            200: EventDocumentSerializer(many=True),
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
        },
    )
    @action(detail=True, methods=["get"])
    def backlinks(self, request: Request, event_id: str) -> Response:
        events = trove.get_backlinks(event_uuid(event_id), type=text_parameter(request, "type"))
        return Response(documents(events))

    # Writing helpers -------------------------------------------------------------------

    def _producer(self, requested: str | None) -> str | None:
        """The producer to write: the user's name when ``bind_producer_to_user`` is on."""
        if not trove_settings.bind_producer_to_user:
            return requested
        username = self.request.user.get_username()
        if requested is not None and requested != username:
            raise ProducerMismatch(
                f"Events you write have producer {username!r}, not {requested!r} "
                "(bind_producer_to_user is on)."
            )
        return username

    def _writing(self, data: dict[str, Any], uploads: list[NewFile]) -> dict[str, Any]:
        """Keyword arguments shared by ``create_event`` and ``append_version``."""
        schema = data.get("schema")
        if isinstance(schema, InlineSchema):
            schema = SchemaRef(schema.id, schema.version)
        return {
            "schema": schema,
            "payload": data["payload"],
            "producer": self._producer(data.get("producer")),
            "metadata": data.get("metadata"),
            "links": data.get("links", ()),
            "files": [NewFile.from_document(item) for item in data.get("files", ())] + uploads,
        }

    def _creation(self, data: dict[str, Any], uploads: list[NewFile]) -> dict[str, Any]:
        arguments = self._writing(data, uploads)
        if arguments["producer"] is None:
            arguments.pop("producer")
        arguments["event_id"] = data.get("id")
        return arguments

    @staticmethod
    def _uploads(request: Request) -> list[NewFile]:
        """Each uploaded part as a file, streamed from where Django spooled it."""
        uploads = []
        for name, parts in request.FILES.lists():
            for part in parts:
                content_type = part.content_type or "application/octet-stream"
                for problem in content_type_problems(content_type, name):
                    raise_bad_parameter(name, problem["message"])
                uploads.append(NewFile(part, content_type, part.name))
        return uploads

    def _created(self, event: Event, url_name: str, **kwargs: Any) -> Response:
        location = self.request.build_absolute_uri(reverse(url_name, kwargs=kwargs))
        return Response(
            event.to_dict(), status=status.HTTP_201_CREATED, headers={"Location": location}
        )


@extend_schema_view(
    create=extend_schema(
        operation_id="events_create_compat",
        summary="Create an event (original Trove path)",
        description="`POST /api/events` without the trailing slash, for clients of the "
        "original Trove HTTP API: the same JSON and multipart bodies as `POST /api/events/`.",
    )
)
class CompatEventViewSet(EventViewSet):
    """``POST /api/events``: the original Trove client's path. A GET there is sent on to
    ``/api/events/``, as Django's ``APPEND_SLASH`` would if this path did not exist."""

    def get_permissions(self):
        return [AllowAny()] if self.action == "to_list" else super().get_permissions()

    @extend_schema(exclude=True)
    def to_list(self, request: Request) -> HttpResponseRedirect:
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(reverse("trove-event-list") + (f"?{query}" if query else ""))


class QueryView(TroveAPIMixin, GenericAPIView):
    """``POST /api/query/``: the EventQuery of SPEC §3 as a JSON body."""

    post_reads = True
    filter_backends = ()
    pagination_class = EventPagination
    serializer_class = EventQuerySerializer

    def get_queryset(self) -> EventSequence:
        """What the browsable API's filter form asks for; this view has no filters."""
        return EventSequence()

    @extend_schema(
        summary="Query events",
        description="The body is an EventQuery exactly as SPEC §3 writes it. The answer is "
        "a page of at most `limit` events (default 100, at most 1000); `next` and "
        "`previous` are the bodies to post for the adjacent pages. The same question "
        "asked with GET /api/events/ answers the same events in the same order.",
        request=EventQuerySerializer,
        responses={
            200: QueryPageSerializer,
            **openapi.error_responses(400, 411, 413, 415, *openapi.READ_ERRORS),
        },
    )
    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise_bad_parameter("query", "A query must be a JSON object.")
        query = EventQuery.parse(body)
        page = self.paginator.paginate_query(query, body, request)
        return self.paginator.get_query_page_response(documents(page))


class FileView(TroveAPIMixin, APIView):
    """``GET /api/files/{id}/``: a file's record."""

    @extend_schema(
        summary="A file's record",
        responses={
            200: FileDocumentSerializer,
            **openapi.error_responses(404, *openapi.READ_ERRORS),
        },
    )
    def get(self, request: Request, file_id: str) -> Response:
        return Response(trove.get_file(file_id).to_dict())


class IgnoreAcceptNegotiation(BaseContentNegotiation):
    """Bytes are served whatever the client accepts; errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class FileContentView(TroveAPIMixin, APIView):
    """``GET /api/files/{id}/content/``: the bytes, streamed, or a presigned redirect."""

    content_negotiation_class = IgnoreAcceptNegotiation

    @extend_schema(
        summary="A file's bytes",
        description="Streamed as an attachment with the file's content type. When "
        "TROVE['presigned_downloads'] is on and the file storage can sign URLs (S3), "
        "a 302 redirect to a short-lived URL instead. References have no bytes here (404).",
        responses={
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The bytes."),
            302: OpenApiResponse(description="Redirect to a presigned download URL."),
            **openapi.error_responses(404, *openapi.READ_ERRORS),
        },
    )
    def get(self, request: Request, file_id: str):
        record = trove.get_file(file_id)
        if record.is_reference:
            raise NotFound(
                f"File {record.id} is a reference to {record.uri}; Trove does not hold its bytes."
            )
        return file_response(record)


def schema_document(row) -> dict[str, Any]:
    return {
        "id": row.schema_id,
        "version": row.version,
        "schema": row.schema,
        "description": row.description,
        "createdAt": format_instant(row.created_at),
    }


class SchemaListView(TroveAPIMixin, GenericAPIView):
    """``GET|POST /api/schemas/``: registered JSON Schemas, and registering one."""

    write_permission = REGISTER_PERMISSION
    pagination_class = EventPagination
    serializer_class = SchemaRegistrationSerializer

    def get_queryset(self):
        return schemas.list_schemas()

    @extend_schema(
        summary="Registered schemas",
        responses={
            200: SchemaDocumentSerializer(many=True),
            **openapi.error_responses(400, 401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([schema_document(row) for row in page])

    @extend_schema(
        summary="Register a schema",
        description="Register a JSON Schema under (id, version): 201 when new, 200 when "
        "the same document is registered already, 409 when another one is. Needs the "
        "`trove.add_eventschema` permission.",
        request=SchemaRegistrationSerializer,
        responses={
            200: SchemaDocumentSerializer,
            201: SchemaDocumentSerializer,
            **openapi.error_responses(400, 401, 403, 409, 411, 413, 415),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = SchemaRegistrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        existed = schemas.get_schema(data["id"], data["version"]) is not None
        row = trove.register_schema(
            data["id"], data["version"], data["schema"], description=data.get("description", "")
        )
        location = request.build_absolute_uri(
            reverse(
                "trove-schema-detail", kwargs={"schema_id": row.schema_id, "version": row.version}
            )
        )
        return Response(
            schema_document(row),
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class SchemaDetailView(TroveAPIMixin, APIView):
    """``GET /api/schemas/{id}/{version}/``."""

    @extend_schema(
        summary="A registered schema",
        responses={200: SchemaDocumentSerializer, **openapi.error_responses(404, 401, 403)},
    )
    def get(self, request: Request, schema_id: str, version: str) -> Response:
        row = None
        if not json_problems([schema_id, version], ""):
            row = schemas.get_schema(schema_id, version)
        if row is None:
            raise NotFound(f"Schema {schema_id} version {version} is not registered.")
        return Response(schema_document(row))


class APIRootView(TroveAPIMixin, APIView):
    """Trove's REST API: events, queries, files and schemas. See ``docs/`` for the
    OpenAPI description."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return api_reverse(name, request=request)

        return Response(
            {
                "events": link("trove-event-list"),
                "query": link("trove-query"),
                "schemas": link("trove-schema-list"),
                "openapi": link("trove-openapi"),
                "docs": link("trove-docs"),
            }
        )
