"""Schemas in the admin: editable, checked against the JSON Schema meta-schema on save.

The check itself is ``EventSchema.clean()`` (which the admin form runs), so a bad schema is
refused with the validator's own words whether it comes through the admin or another
form. The page also says how many events use the schema, per version, from whichever
storage holds them.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from trove.admin.browse import browser_for
from trove.exceptions import TroveError
from trove.models import Event, EventSchema
from trove.storage.handler import storages


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
    readonly_fields = ["events_using_schema"]
    formfield_overrides = {
        models.JSONField: {
            "form_class": IndentedJSONField,
            "widget": forms.Textarea(attrs={"rows": 24, "class": "vLargeTextField trove-code"}),
        }
    }

    class Media:
        css = {"all": ["trove/admin.css"]}

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
