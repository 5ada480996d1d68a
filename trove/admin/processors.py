"""Processors in the admin: where each one is in the feed, how far behind, its last error.

Read-only: a position only moves by processing (``manage.py trove_process``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet, Value
from django.http import HttpRequest

from trove.exceptions import TroveError
from trove.storage.handler import storages


class ProcessorPositionAdmin(admin.ModelAdmin):
    list_display = ["name", "position", "lag", "failures", "short_error", "updated_at"]
    fields = ["name", "position", "lag", "failures", "last_error", "updated_at"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        try:
            last = storages.events.last_position()
        except TroveError:
            last = None  # the event storage is down: the page still shows positions
        return super().get_queryset(request).annotate(store_position=Value(last))

    @admin.display(description="lag")
    def lag(self, obj: Any) -> str:
        """Versions in the store after the processor's position (including ones its
        filters skip until it next runs)."""
        last = getattr(obj, "store_position", None)
        return "unknown" if last is None else f"{max(last - obj.position, 0):,}"

    @admin.display(description="last error")
    def short_error(self, obj: Any) -> str:
        return obj.last_error if len(obj.last_error) <= 120 else obj.last_error[:119] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
