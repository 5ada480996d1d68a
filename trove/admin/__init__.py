"""The Django admin over Trove: events browsed read-only, schemas edited and checked.

Registering here puts both on the default admin site. The site's index gains a link to
the events overview, through an index template that only adds that link; a project that
set its own ``admin.site.index_template`` keeps it (and may link
``admin:trove_event_overview`` itself).
"""

from django.contrib import admin

from trove.admin.events import EventAdmin
from trove.admin.processors import ProcessorPositionAdmin
from trove.admin.schemas import EventSchemaAdmin
from trove.models import Event, EventSchema, ProcessorPosition

__all__ = ["EventAdmin", "EventSchemaAdmin", "ProcessorPositionAdmin"]

admin.site.register(Event, EventAdmin)
admin.site.register(EventSchema, EventSchemaAdmin)
admin.site.register(ProcessorPosition, ProcessorPositionAdmin)

if admin.site.index_template is None:
    admin.site.index_template = "admin/trove/index.html"
