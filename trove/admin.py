"""The Django admin over Trove: events read-only (they are immutable), schemas editable."""

from django.contrib import admin

from trove.models import Event, EventSchema


@admin.register(EventSchema)
class EventSchemaAdmin(admin.ModelAdmin):
    list_display = ["schema_id", "version", "created_at", "updated_at"]
    search_fields = ["schema_id"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "version", "schema_id", "producer", "created_at"]
    list_filter = ["schema_id", "producer"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
