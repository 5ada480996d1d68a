"""Lifecycle signals, fired in the order of SPEC §4.

Creating an event sends ``event_validating``, ``event_validated``, ``event_received``,
``event_storing`` and ``event_stored`` (keyword ``event``: a :class:`trove.documents.Event`);
registering a schema sends ``schema_registering`` and ``schema_registered``. Signals are sent
with ``send`` (not ``send_robust``): an exception raised by a receiver of any signal before
``event_stored`` aborts the write and nothing is stored. A receiver of ``event_stored`` may
create derived events, e.g. a ``note.processed`` event linked to its ``note.created`` parent.

``event_committed`` is different: it is sent once per event after the write is durable
(after the outermost transaction commits; never for one rolled back), robustly, so that a
receiver that raises is logged and never undoes the write (see ``trove.committed``).
"""

from django.dispatch import Signal

event_validating = Signal()
event_validated = Signal()
event_received = Signal()
event_storing = Signal()
event_stored = Signal()
event_committed = Signal()
schema_registering = Signal()
schema_registered = Signal()

HOOKS = {
    "event:validating": event_validating,
    "event:validated": event_validated,
    "event:received": event_received,
    "event:storing": event_storing,
    "event:stored": event_stored,
    "event:committed": event_committed,
    "schema:registering": schema_registering,
    "schema:registered": schema_registered,
}
