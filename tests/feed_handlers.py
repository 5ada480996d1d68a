"""Processor handlers used by the tests (``TROVE["processors"]`` names them by path).

``derive`` has two effects to count after a crash: a row in the default database (the
processor's position is there too, so it must happen exactly once on every event backend)
and a derived event in the event store (once too, through ``create_derived_event``, even
when that store is a JSON directory outside the database's transaction).
"""

import os
import time

from django.db import connection

import trove
from trove import processors

calls: list = []

#: A table of the handler's own, without a unique key: a doubled effect is a second row.
EFFECTS = "trove_test_handler_effect"


def record(event) -> None:
    calls.append(event)


def _effects_table(cursor) -> None:
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {EFFECTS} (source varchar(36) NOT NULL)")


def effect_counts() -> dict[str, int]:
    """How many rows ``derive`` wrote for each source event id."""
    with connection.cursor() as cursor:
        _effects_table(cursor)
        cursor.execute(f"SELECT source, COUNT(*) FROM {EFFECTS} GROUP BY source")
        return {source: count for source, count in cursor.fetchall()}


def derive(event) -> None:
    """Write a row, then a derived event linked to its source: the effects to count."""
    time.sleep(float(os.environ.get("TROVE_TEST_HANDLER_DELAY", "0")))
    with connection.cursor() as cursor:
        _effects_table(cursor)
        cursor.execute(f"INSERT INTO {EFFECTS} (source) VALUES (%s)", [str(event.uuid)])
    processors.create_derived_event(
        "work.done",
        {"source": str(event.uuid)},
        links=[{"type": "source", "targetEvent": {"id": str(event.uuid), "version": 1}}],
    )


def derive_plainly(event) -> None:
    """A derived event with a fresh id each attempt (``trove.create_event``)."""
    trove.create_event("work.done", {"source": str(event.uuid)})


def derive_then_fail_on_odd(event) -> None:
    """Writes first, then fails for odd payloads: the writes must be undone with it."""
    derive(event)
    if event.payload.get("n", 0) % 2:
        raise ValueError(f"odd n {event.payload['n']}")
