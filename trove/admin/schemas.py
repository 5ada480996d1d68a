"""Schemas in the admin: editable, checked against the JSON Schema meta-schema on save.

The check itself is ``EventSchema.clean()`` (which the admin form runs), so a bad schema is
refused with the validator's own words whether it comes through the admin or another
form. The page also says how many events use the schema, per version, from whichever
storage holds them.

A schema version that events use is frozen: changing it would change what their payloads
were validated against, and deleting it would leave them pointing at nothing. Its page is
read-only and offers no delete, with a note to register a new version instead.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from trove.admin.browse import browser_for
from trove.exceptions import TroveError
from trove.models import Event, EventSchema
from trove.storage.handler import storages

IN_USE_MESSAGE = (
    "Events use this schema version, so it can be neither changed nor deleted: "
    "register a new version instead."
)


class IndentedJSONField(forms.JSONField):
    """A JSON text area that shows the document indented, as people write schemas."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class EventSchemaAdmin(admin.ModelAdmin):
    list_display = ["schema_id", "version", "description", "updated_at", "browse_events"]
    search_fields = ["schema_id", "description"]
    fields = ["schema_id", "version", "description", "schema", "events_using_schema"]
    readonly_fields = ["events_using_schema", "schema_document"]
    formfield_overrides = {
        models.JSONField: {
            "form_class": IndentedJSONField,
            "widget": forms.Textarea(attrs={"rows": 24, "class": "vLargeTextField trove-code"}),
        }
    }

    class Media:
        css = {"all": ["trove/admin.css"]}

    def in_use(self, obj: EventSchema | None) -> bool:
        """Whether stored events use ``obj``'s version (remembered on the object for the
        request; a storage that cannot answer counts as in use)."""
        if obj is None or obj.pk is None:
            return False
        if not hasattr(obj, "_trove_in_use"):
            try:
                used = browser_for(storages.events).schema_version_in_use(
                    obj.schema_id, obj.version
                )
            except TroveError:
                used = True
            obj._trove_in_use = used
        return obj._trove_in_use

    def get_fields(self, request: HttpRequest, obj: EventSchema | None = None) -> list[str]:
        """On a read-only page, the schema is shown indented rather than on one line."""
        fields = list(super().get_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            fields = ["schema_document" if name == "schema" else name for name in fields]
        return fields

    @admin.display(description="schema")
    def schema_document(self, obj: EventSchema) -> str:
        return format_html(
            '<pre class="trove-json">{}</pre>', json.dumps(obj.schema, indent=2, ensure_ascii=False)
        )

    def has_change_permission(self, request: HttpRequest, obj: EventSchema | None = None) -> bool:
        return super().has_change_permission(request, obj) and not self.in_use(obj)

    def has_delete_permission(self, request: HttpRequest, obj: EventSchema | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not self.in_use(obj)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if request.method in ("GET", "HEAD") and self.in_use(obj):
            message = IN_USE_MESSAGE
            if self.has_add_permission(request):
                add = reverse(
                    f"{self.admin_site.name}:trove_eventschema_add",
                    current_app=self.admin_site.name,
                )
                message = format_html(
                    '{} <a href="{}?{}" id="register-new-version">Register a new version</a>',
                    IN_USE_MESSAGE,
                    add,
                    urlencode({"copy_from": obj.pk}),
                )
            self.message_user(request, message, messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """``?copy_from=<pk>`` starts a new version as a copy of that one (its id,
        description and schema), to be given a new version number."""
        initial = super().get_changeform_initial_data(request)
        source = initial.pop("copy_from", None)
        if source is not None and str(source).isdigit():
            row = EventSchema.objects.filter(pk=source).first()
            if row is not None and self.has_view_permission(request, row):
                initial.update(
                    schema_id=row.schema_id, description=row.description, schema=row.schema
                )
        return initial

    def get_deleted_objects(
        self, objs: QuerySet[EventSchema] | list[EventSchema], request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """Name, among the selected schemas, those events use (the bulk delete action)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        in_use = [
            f"{obj.schema_id} {obj.version}: used by events; register a new version instead"
            for obj in objs
            if self.in_use(obj)
        ]
        if in_use and super().has_delete_permission(request):
            # Refused as protected, with the reason, rather than as a missing permission.
            name = str(self.opts.verbose_name)
            perms_needed = {needed for needed in perms_needed if str(needed) != name}
        return deleted, counts, perms_needed, [*protected, *in_use]

    def events_url(self, obj: EventSchema) -> str:
        changelist = reverse(
            f"{self.admin_site.name}:trove_event_changelist", current_app=self.admin_site.name
        )
        return f"{changelist}?{urlencode({'schema': obj.schema_id})}"

    @admin.display(description="events")
    def browse_events(self, obj: EventSchema) -> str:
        if not self.admin_site.is_registered(Event):
            return ""
        return format_html('<a href="{}">browse</a>', self.events_url(obj))

    @admin.display(description="events using it (latest versions)")
    def events_using_schema(self, obj: EventSchema) -> str:
        """Latest event versions per version of this schema id, this version first."""
        if obj.pk is None:
            return "—"
        try:
            tally = browser_for(storages.events).schema_versions(obj.schema_id)
        except TroveError as error:
            return f"Could not count events: {error}"
        counts = dict(tally.counts)
        mine = counts.pop(obj.version, 0)
        others = ", ".join(f"version {v or '(none)'}: {n:,}" for v, n in counts.items())
        caveat = "" if tally.complete else f", counted over the latest {tally.covered:,}"
        browse = (
            format_html(' <a href="{}">Browse them</a>', self.events_url(obj))
            if self.admin_site.is_registered(Event)
            else ""
        )
        return format_html(
            '<span id="events-using-schema"><strong>{}</strong> with this version</span>;'
            " {} with schema {} in all{}{}.{}",
            f"{mine:,}",
            f"{tally.total:,}",
            obj.schema_id,
            f" ({others})" if others else "",
            caveat,
            browse,
        )
