"""Events in the admin: a list, an event page, file downloads and an overview.

Events may live in any storage backend, not only in the ORM's table, so this admin does
not use Django's queryset-based change list. Its views read through the Python API and
:mod:`trove.admin.browse`, and render templates that look like the rest of the admin.
Events are immutable, so nothing here adds, changes or deletes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import update_wrapper
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

import trove
from trove import schemas
from trove.admin.browse import browser_for
from trove.admin.diff import Change, json_changes
from trove.admin.files import text_preview
from trove.admin.listing import NEWEST_FIRST, OLDEST_FIRST, EventListing
from trove.admin.overview import daily_chart
from trove.documents import Event, FileRecord, Link
from trove.downloads import file_response, is_previewable_image
from trove.exceptions import NotFound, TroveError
from trove.query import EventQuery
from trove.storage.handler import storages

SUMMARY_LENGTH = 300
#: The payload text shown on hover in the list, at most (a payload may be megabytes).
PAYLOAD_TITLE_LENGTH = 2000
OVERVIEW_DAYS = 30
#: Changes from the previous version listed at most; the documents are on the page anyway.
MAX_CHANGES = 200


def pretty(value: Any) -> str:
    """JSON laid out for reading: indented, non-ASCII kept as written."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def summary(payload: dict[str, Any], length: int = SUMMARY_LENGTH) -> str:
    """The payload as one line of JSON, cut at ``length`` characters.

    The list shows it on one line, clipped with an ellipsis to the column's width; the
    cut only keeps pages small.
    """
    text = json.dumps(payload, ensure_ascii=False)
    return text if len(text) <= length else text[: length - 1] + "…"


@dataclass(frozen=True)
class LinkView:
    """An outgoing link or a backlink, with the event at its other end (``None``: missing)."""

    link: Link
    event: Event | None
    url: str
    metadata: str


@dataclass(frozen=True)
class FileView:
    record: FileRecord
    download_url: str | None
    image_url: str | None
    text: str | None
    text_truncated: bool
    error: str | None


class EventAdmin(admin.ModelAdmin):
    """Read-only browsing of events in whichever storage holds them (GET and HEAD only)."""

    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        def wrap(view):
            def wrapper(*args, **kwargs):
                return self.admin_site.admin_view(require_safe(view))(*args, **kwargs)

            wrapper.model_admin = self  # type: ignore[attr-defined]  # as Django does
            return update_wrapper(wrapper, view)

        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", wrap(self.changelist_view), name=f"{name}_changelist"),
            path("overview/", wrap(self.overview_view), name=f"{name}_overview"),
            path("files/<uuid:file_id>/", wrap(self.file_view), name=f"{name}_file"),
            path("<uuid:event_id>/", wrap(self.event_view), name=f"{name}_change"),
            path(
                "<uuid:event_id>/versions/<int:version>/",
                wrap(self.event_view),
                name=f"{name}_version",
            ),
        ]

    # Helpers -------------------------------------------------------------------------

    def _url(self, view: str, *args: Any) -> str:
        name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{view}"
        return reverse(name, args=args, current_app=self.admin_site.name)

    def event_url(self, event_id: uuid.UUID, version: int | None = None) -> str:
        if version is None:
            return self._url("change", event_id)
        return self._url("version", event_id, version)

    def _check_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name

    def _render(
        self, request: HttpRequest, template: str, context: dict[str, Any]
    ) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "opts": self.opts, **context}
        return TemplateResponse(request, f"admin/trove/event/{template}", context)

    # The list ------------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        self._check_view(request)
        listing = EventListing.from_query_dict(request.GET)
        browser = browser_for(storages.events)
        page = browser.page(
            listing.query(),
            search=listing.search,
            number=listing.page,
            per_page=self.list_per_page,
        )
        rows = [
            {
                "event": event,
                "url": self.event_url(event.uuid),
                "summary": summary(event.payload),
                "payload_title": summary(event.payload, PAYLOAD_TITLE_LENGTH),
            }
            for event in page.events
        ]
        filters = [
            (field, listing.filter_choices(field, browser.choices(field)))
            for field in ("schema", "producer")
        ]
        context = {
            "title": "Events",
            "listing": listing,
            "page": page,
            "rows": rows,
            "filters": filters,
            "date_hierarchy": listing.date_hierarchy(
                browser.bounds(listing.query(with_dates=False))
            ),
            "sort_link": listing.link(o=OLDEST_FIRST if listing.newest_first else NEWEST_FIRST),
            "previous_link": listing.link(p=page.number - 1) if page.has_previous else None,
            "next_link": listing.link(p=page.number + 1) if page.has_next else None,
            "first_link": listing.link(p=None),
            "clear_link": "?",
            "overview_url": self._url("overview"),
            **(extra_context or {}),
        }
        return self._render(request, "list.html", context)

    # One event -----------------------------------------------------------------------

    def event_view(
        self, request: HttpRequest, event_id: uuid.UUID, version: int | None = None
    ) -> TemplateResponse:
        self._check_view(request)
        try:
            event = trove.get_event(event_id, version)
            versions = trove.get_versions(event_id)
        except NotFound as error:
            raise Http404(str(error)) from error
        changes = self._changes(event, versions)
        context = {
            "title": f"{event.schema.id} event",
            "event": event,
            "latest": versions[-1],
            "versions": [(v, self.event_url(v.uuid, v.version)) for v in versions],
            "previous_url": (
                self.event_url(event.uuid, event.version - 1) if event.version > 1 else None
            ),
            "next_url": (
                self.event_url(event.uuid, event.version + 1)
                if event.version < versions[-1].version
                else None
            ),
            "changes": changes[:MAX_CHANGES] if changes is not None else None,
            "more_changes": max(0, len(changes or ()) - MAX_CHANGES),
            "change_count": len(changes or ()),
            "payload": pretty(event.payload),
            "metadata": pretty(event.metadata),
            "document": pretty(event.to_dict()),
            "schema_url": self._schema_url(request, event),
            "files": [self._file_view(record) for record in event.files],
            "links": [self._outgoing(link) for link in event.links],
            "backlinks": self._backlinks(event),
            "changelist_url": self._url("changelist"),
        }
        return self._render(request, "event.html", context)

    @staticmethod
    def _changes(event: Event, versions: list[Event]) -> list[tuple[str, Change]] | None:
        """What changed from the previous version: (``"payload"``, ``"metadata"`` or
        ``"event"``, change) pairs; ``None`` for a first version."""
        previous = next((v for v in versions if v.version == event.version - 1), None)
        if previous is None:
            return None
        facts = {"producer": previous.producer, "schema": previous.schema.to_dict()}
        now = {"producer": event.producer, "schema": event.schema.to_dict()}
        return [
            (where, change)
            for where, old, new in (
                ("event", facts, now),
                ("payload", previous.payload, event.payload),
                ("metadata", previous.metadata, event.metadata),
            )
            for change in json_changes(old, new)
        ]

    def _schema_url(self, request: HttpRequest, event: Event) -> str | None:
        from trove.models import EventSchema

        row = schemas.get_schema(event.schema.id, event.schema.version)
        if row is None or not self.admin_site.is_registered(EventSchema):
            return None
        if not self.admin_site.get_model_admin(EventSchema).has_view_permission(request, row):
            return None
        return reverse(
            f"{self.admin_site.name}:trove_eventschema_change",
            args=[row.pk],
            current_app=self.admin_site.name,
        )

    def _outgoing(self, link: Link) -> LinkView:
        try:
            target = trove.get_event(link.target.id, link.target.version)
        except NotFound:
            target = None
        return LinkView(
            link, target, self.event_url(link.target.id, link.target.version), pretty(link.metadata)
        )

    def _backlinks(self, event: Event) -> list[LinkView]:
        return [
            LinkView(link, source, self.event_url(source.uuid), pretty(link.metadata))
            for source in trove.get_backlinks(event.uuid)
            for link in source.links
            if link.target.id == event.uuid
        ]

    def _file_view(self, record: FileRecord) -> FileView:
        if record.is_reference:
            return FileView(record, None, None, None, False, None)
        download = self._url("file", record.id)
        preview, error = None, None
        try:
            preview = text_preview(record)
        except TroveError as problem:
            error = str(problem)
        return FileView(
            record,
            download,
            f"{download}?inline=1" if is_previewable_image(record) else None,
            preview.text if preview else None,
            preview.truncated if preview else False,
            error,
        )

    # Files ---------------------------------------------------------------------------

    def file_view(self, request: HttpRequest, file_id: uuid.UUID) -> HttpResponse:
        """The bytes of a stored file, as an attachment (or inline, for preview images)."""
        self._check_view(request)
        try:
            record = trove.get_file(file_id)
            if record.is_reference:
                raise NotFound(f"File {file_id} is a reference to {record.uri}, not stored bytes.")
            return file_response(record, inline=request.GET.get("inline") == "1")
        except NotFound as error:
            raise Http404(str(error)) from error

    # Overview ------------------------------------------------------------------------

    def overview_view(self, request: HttpRequest) -> TemplateResponse:
        """Events per day over the last :data:`OVERVIEW_DAYS` days, per schema, per producer."""
        self._check_view(request)
        browser = browser_for(storages.events)
        today = timezone.localdate()
        days = [today - timedelta(days=n) for n in range(OVERVIEW_DAYS - 1, -1, -1)]
        changelist = self._url("changelist")
        tallies = []
        for field, title in (("schema", "Events per schema"), ("producer", "Events per producer")):
            tally = browser.tally(field)
            top = max((n for _, n in tally.counts), default=1)
            rows = [
                {
                    "value": value,
                    "count": n,
                    "share": round(100 * n / top, 1),
                    "url": f"{changelist}?{urlencode({field: value})}",
                }
                for value, n in tally.counts
            ]
            tallies.append({"field": field, "title": title, "tally": tally, "rows": rows})
        context = {
            "title": "Trove overview",
            "chart": daily_chart(days, browser.daily_counts(days)),
            "days": OVERVIEW_DAYS,
            "total": storages.events.count_events(EventQuery()),
            "tallies": tallies,
            "schema_count": schemas.list_schemas().count(),
            "changelist_url": changelist,
        }
        return self._render(request, "overview.html", context)
