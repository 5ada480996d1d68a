"""The REST API of SPEC §5, over the Python API so that it serves every storage backend.

Events are created and versioned, never updated or deleted. Every view answers errors
with the one shape of :mod:`trove.api.exceptions` and checks access with
:class:`~trove.api.permissions.TroveAccess`; neither needs a project setting.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

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
from rest_framework.request import Request, is_form_media_type
from rest_framework.response import Response
from rest_framework.reverse import reverse as api_reverse
from rest_framework.utils.formatting import markup_description
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

import trove
from trove import schemas
from trove.conf import trove_settings
from trove.documents import Event, SchemaRef, format_instant
from trove.downloads import file_response
from trove.exceptions import NotFound, VersionConflict
from trove.jsonvalues import json_problems
from trove.limits import MAX_VERSION, content_type_problems
from trove.query import OPERATORS, EventQuery
from trove.service import NewFile, is_registered

from . import hyperlinks, openapi
from .exceptions import ProducerMismatch, exception_handler
from .filters import EventFilterBackend, EventFilterSet, EventSequence
from .pagination import EventPagination
from .parsers import (
    FORM_ONLY_FIELDS,
    EventMultiPartParser,
    TroveJSONParser,
    refuse_unsized_body,
)
from .permissions import TroveAccess, holds
from .renderers import with_trove_browsable_api
from .repeats import stored_repeat
from .serializers import (
    EventAppendFormSerializer,
    EventAppendSerializer,
    EventCreateFormSerializer,
    EventCreateSerializer,
    EventDocumentSerializer,
    EventQuerySerializer,
    FileDocumentSerializer,
    InlineSchema,
    LinkDocumentSerializer,
    QueryPageSerializer,
    SchemaDocumentSerializer,
    SchemaRegistrationSerializer,
    validated_creations,
)

#: Events created by one batch request, at most.
BATCH_LIMIT = 1000


class TroveAPIMixin(APIView):
    """What every Trove view shares: access rules and the error shape."""

    permission_classes = [TroveAccess]
    parser_classes = [TroveJSONParser]
    #: What the browsable API shows above the page, in Markdown: for users, unlike the
    #: docstring, which DRF would show otherwise.
    view_description: ClassVar[str] = ""
    schema = openapi.TroveAutoSchema()

    def get_view_description(self, html: bool = False) -> str:
        return markup_description(self.view_description) if html else self.view_description

    def get_renderers(self) -> list:
        return with_trove_browsable_api(super().get_renderers())

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


def refuse_unknown_parameters(request: Request, known: Collection[str]) -> None:
    """A 400 for query parameters the view does not read, as the list view answers: a
    misspelt parameter is an error, not a no-op. ``format`` is DRF's renderer choice."""
    unknown = sorted(set(request.query_params) - {*known, "format"})
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise_bad_parameter(
            unknown[0], f"Unknown query parameter(s) {', '.join(unknown)}; known: {listed}."
        )


def document(request: Request) -> Any:
    """The body without the uploaded parts, which DRF merges into ``request.data``, and
    without what a browser's form adds (its CSRF token)."""
    if not is_form_media_type(request.content_type or ""):
        return request.data
    skipped = FORM_ONLY_FIELDS.union(request.FILES)
    return {key: value for key, value in request.data.items() if key not in skipped}


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
    if new and not holds(request.user, REGISTER_PERMISSION):
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


_TYPE = OpenApiParameter("type", str, description="Only links of this type.")
_VERSION = OpenApiParameter(
    "version", int, description="Of this version of the event (default: the latest)."
)
_CREATE_DESCRIPTION = (
    "Files come inline (text, or base64 with `encoding`), as references (`isReference`), "
    "or, in multipart form data, as uploaded parts. Needs the `trove.add_event` permission."
)


@extend_schema_view(
    list=extend_schema(
        summary="List and filter events",
        description="The latest version of each event, filtered and ordered by the query "
        "string, in pages. `payload.<path>=<value>` keeps events whose payload at the "
        "dotted path equals the value, read as JSON when it parses as JSON "
        '(`payload.n=1` is the number 1, `payload.n="1"` the string) and as text '
        "otherwise; `payload.<path>__<op>=<value>` holds a `where` predicate, "
        f"`op` one of {', '.join(OPERATORS)}, its value read the same way (`in`: repeat "
        "the parameter for each value; `exists`: true or false); `text=<words>` keeps "
        "events with every word in some string of the payload. The same question posted "
        "to `/api/query/` answers the same events in the same order. An unknown parameter "
        "is a 400.",
        responses={
            200: EventDocumentSerializer(many=True),
            **openapi.error_responses(400, *openapi.READ_ERRORS),
        },
    ),
    create=extend_schema(
        summary="Create an event",
        description="Create one event: 201 with its document. A request repeated with the "
        "same client-chosen `id` and the same content answers 200 with the stored event "
        "(so a retry is harmless); other content under a used `id` is a 409. "
        + _CREATE_DESCRIPTION
        + " Several events at once: `POST /api/events/batch/`.",
        request={
            "application/json": EventCreateSerializer,
            "multipart/form-data": openapi.EVENT_MULTIPART,
        },
        responses={
            200: OpenApiResponse(
                EventDocumentSerializer,
                description="The event stored before by the same request (a repeat).",
            ),
            201: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="EventOrBatch",
                    serializers=[EventDocumentSerializer, EventDocumentSerializer(many=True)],
                    resource_type_field_name=None,
                    many=False,
                ),
                description="The stored event. (A JSON list is still taken as a batch, for "
                "older clients, and answered with the list of stored events.)",
            ),
            **openapi.error_responses(*openapi.WRITE_ERRORS),
        },
    ),
    retrieve=extend_schema(
        summary="The latest version of an event",
        responses={
            200: EventDocumentSerializer,
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
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
    #: The query parameters each action other than ``list`` reads; any other is a 400.
    query_parameters: ClassVar[dict[str, frozenset[str]]] = {
        "retrieve": frozenset(),
        "versions": frozenset(),
        "version": frozenset(),
        "links": frozenset({"type", "version"}),
        "linked": frozenset({"type", "version"}),
        "backlinks": frozenset({"type"}),
    }
    #: What the browsable API shows above each page, in Markdown.
    descriptions: ClassVar[dict[str, str]] = {
        "list": "The latest version of each event. Filter with the form, or with query "
        "parameters such as `?schema=note.created&payload.author.name=Jane`; "
        "`ordering` sorts (`-createdAt`, `payload.<path>`). Create an event with the "
        "form below.",
        "retrieve": "The latest version of this event. Its `url` is the address of this "
        "version; `/versions/` lists every version and takes a new one.",
        "versions": "Every version of this event, oldest first. Append a version with the "
        "form below: what you leave out is kept from the latest version.",
        "version": "One version of this event.",
        "links": "The outgoing links of this event (`?type=` for one type).",
        "linked": "The events this event links to (`?type=` for one type).",
        "backlinks": "The events whose latest version links to this event.",
        "batch": "Create several events at once from a JSON list: all or none are stored.",
    }

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "GET" and self.action in self.query_parameters:
            refuse_unknown_parameters(request, self.query_parameters[self.action])

    def get_view_name(self) -> str:
        """Events, or Event for one (DRF would say Event List, and Compat Event List where
        the original path is matched); an extra action keeps its own name (Versions)."""
        if getattr(self, "name", None):
            return self.name
        return "Event" if getattr(self, "detail", False) else "Events"

    def get_view_description(self, html: bool = False) -> str:
        text = self.descriptions.get(getattr(self, "action", None) or "list", "")
        return markup_description(text) if html else text

    def get_queryset(self) -> EventSequence:
        return EventSequence()

    def get_serializer_class(self):
        browsing = getattr(self.request, "accepted_renderer", None) is not None and (
            self.request.accepted_renderer.format == "api"
        )
        if self.action in ("append_version", "versions"):
            return EventAppendFormSerializer if browsing else EventAppendSerializer
        return EventCreateFormSerializer if browsing else EventCreateSerializer

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.documents(page))

    def create(self, request: Request) -> Response:
        if isinstance(request.data, list):
            return self._create_batch(request.data)
        data = validated_creations(document(request))
        item = self._creation(data, uploads=self._uploads(request))
        try:
            with registering_inline_schemas(request, [data]):
                event = trove.create_event(**item)
        except VersionConflict:
            stored = stored_repeat(item)
            if stored is None:
                raise
            return Response(self.document(stored), status=status.HTTP_200_OK)
        return self._created(event, "trove-event-detail", event_id=str(event.uuid))

    @extend_schema(
        summary="Create events in one batch",
        description="Create every event of a JSON list (at most "
        f"{BATCH_LIMIT}): all are stored, or none. 201 with the list of stored events. "
        "Files come inline (text, or base64 with `encoding`) or as references "
        "(`isReference`). Needs the `trove.add_event` permission.",
        request={"application/json": EventCreateSerializer(many=True)},
        responses={
            201: OpenApiResponse(
                EventDocumentSerializer(many=True), description="The stored events, in order."
            ),
            **openapi.error_responses(*openapi.WRITE_ERRORS),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="batch",
        url_name="batch",
        parser_classes=[TroveJSONParser],
        pagination_class=None,
        filter_backends=[],
    )
    def batch(self, request: Request) -> Response:
        if not isinstance(request.data, list):
            raise_bad_parameter("", "A batch is a JSON list of events.")
        return self._create_batch(request.data)

    def _create_batch(self, data: list[Any]) -> Response:
        validated = validated_creations(data, many=True, max_length=BATCH_LIMIT)
        items = [self._creation(item, uploads=[]) for item in validated]
        with registering_inline_schemas(self.request, validated):
            events = trove.create_events(items)
        return Response(self.documents(events), status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, event_id: str) -> Response:
        return Response(self.document(trove.get_event(event_uuid(event_id))))

    @extend_schema(
        summary="Every version of an event, oldest first",
        description="A list (not paged): events have few versions.",
        responses={
            200: EventDocumentSerializer(many=True),
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="versions",
        url_name="versions",
        pagination_class=None,
        filter_backends=[],
    )
    def versions(self, request: Request, event_id: str) -> Response:
        return Response(self.documents(trove.get_versions(event_uuid(event_id))))

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
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
        },
    )
    @action(
        detail=True, methods=["get"], url_path=r"versions/(?P<version>[^/]+)", url_name="version"
    )
    def version(self, request: Request, event_id: str, version: str) -> Response:
        identifier = event_uuid(event_id)
        if not (version.isascii() and version.isdigit() and 1 <= int(version) <= MAX_VERSION):
            raise NotFound(f"Event {identifier} has no version {version!r}.")
        return Response(self.document(trove.get_event(identifier, int(version))))

    @extend_schema(
        summary="The outgoing links of an event",
        description="A list (not paged) of the links of the event's latest version, or of "
        "`version`.",
        parameters=[_TYPE, _VERSION],
        responses={
            200: LinkDocumentSerializer(many=True),
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def links(self, request: Request, event_id: str) -> Response:
        links = trove.get_links(
            event_uuid(event_id),
            type=text_parameter(request, "type"),
            version=version_parameter(request),
        )
        return Response([hyperlinks.link_document(link, request) for link in links])

    @extend_schema(
        summary="The events an event links to",
        description="A list (not paged): the pinned version of each link's target, else its "
        "latest version.",
        parameters=[_TYPE, _VERSION],
        responses={
            200: EventDocumentSerializer(many=True),
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def linked(self, request: Request, event_id: str) -> Response:
        events = trove.get_linked_events(
            event_uuid(event_id),
            type=text_parameter(request, "type"),
            version=version_parameter(request),
        )
        return Response(self.documents(events))

    @extend_schema(
        summary="The events that link to an event",
        description="A list (not paged): events whose latest version links to this event, "
        "oldest first.",
        parameters=[_TYPE],
        responses={
            200: EventDocumentSerializer(many=True),
            **openapi.error_responses(400, 404, *openapi.READ_ERRORS),
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def backlinks(self, request: Request, event_id: str) -> Response:
        events = trove.get_backlinks(event_uuid(event_id), type=text_parameter(request, "type"))
        return Response(self.documents(events))

    def document(self, event: Event) -> dict[str, Any]:
        return hyperlinks.event_document(event, self.request)

    def documents(self, events: Iterable[Event]) -> Any:
        return [hyperlinks.event_document(event, self.request) for event in events]

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
        location = self.request.build_absolute_uri(hyperlinks.path(url_name, **kwargs))
        return Response(
            self.document(event), status=status.HTTP_201_CREATED, headers={"Location": location}
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

    def get_view_name(self) -> str:
        return "Events"

    @extend_schema(exclude=True)
    def to_list(self, request: Request) -> HttpResponseRedirect:
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(reverse("trove-event-list") + (f"?{query}" if query else ""))


class QueryView(TroveAPIMixin, GenericAPIView):
    """``POST /api/query/``: the EventQuery of SPEC §3 as a JSON body."""

    post_reads = True
    view_description = (
        "Post an EventQuery as JSON, e.g. "
        '`{"schema": "note.created", "payload": {"author.name": "Jane"}, "limit": 10}`; '
        "`next` and `previous` are the queries to post for the adjacent pages."
    )
    filter_backends = ()
    pagination_class = EventPagination
    serializer_class = EventQuerySerializer

    def get_queryset(self) -> EventSequence:
        """What the browsable API's filter form asks for; this view has no filters."""
        return EventSequence()

    @extend_schema(
        summary="Query events",
        description="The body is an EventQuery (see the query language in the documentation). "
        "The answer is "
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
        return self.paginator.get_query_page_response(
            [hyperlinks.event_document(event, request) for event in page]
        )


class FileView(TroveAPIMixin, APIView):
    """``GET /api/files/{id}/``: a file's record."""

    view_description = "A file's record; `contentUrl` is the address of its bytes."

    @extend_schema(
        summary="A file's record",
        responses={
            200: FileDocumentSerializer,
            **openapi.error_responses(404, *openapi.READ_ERRORS),
        },
    )
    def get(self, request: Request, file_id: str) -> Response:
        return Response(hyperlinks.file_document(trove.get_file(file_id), request))


class IgnoreAcceptNegotiation(BaseContentNegotiation):
    """Bytes are served whatever the client accepts; errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class FileContentView(TroveAPIMixin, APIView):
    """``GET /api/files/{id}/content/``: the bytes, streamed, or a presigned redirect."""

    content_negotiation_class = IgnoreAcceptNegotiation
    view_description = "A file's bytes, as an attachment."

    @extend_schema(
        summary="A file's bytes",
        description="Streamed as an attachment with the file's content type. When "
        "TROVE['presigned_downloads'] is on and the file storage can sign URLs (S3), "
        "a 302 redirect to a short-lived URL instead. References have no bytes here (404).",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The bytes, with the file's own content type."
            ),
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY),
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
    view_description = (
        "Registered JSON Schemas. Register one by posting `{id, version, schema}`; "
        "it needs the `trove.add_eventschema` permission."
    )
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

    view_description = "One registered version of a schema."

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
    """The entry points of the REST API."""

    view_description = (
        "Trove's REST API: events, queries, the feed, files and schemas. `openapi` is the "
        "OpenAPI description, `docs` the same in Swagger UI."
    )

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
                "health": link("trove-health"),
                "openapi": link("trove-openapi"),
                "docs": link("trove-docs"),
            }
        )
