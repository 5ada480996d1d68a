"""The admin's read side: page, search and count events in whichever storage holds them.

Listing and counting go through the storage interface (``query_events``,
``count_events``), so every backend is browsed the same way. The questions the interface
has no method for — free-text search, the distinct schemas and producers, counts per
schema, producer or day — :class:`EventBrowser` answers with bounded scans through that
interface, and :class:`ORMEventBrowser` with indexed SQL on the ORM backends' table.

A page never needs a full count: it fetches one event more than it shows to know whether
a next page exists, and a total is only computed when there is one. On PostgreSQL a large
total is the planner's estimate, so paging a million events costs milliseconds.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from trove.documents import Event
from trove.query import EventQuery, SortKey
from trove.storage.base import EventStorage
from trove.storage.orm import ORMEventStorage

#: Events a bounded scan looks at, at most (search, tallies on non-SQL backends).
SCAN_LIMIT = 20_000
#: Recent events whose schemas and producers are offered as filter choices (non-SQL).
CHOICE_SCAN = 1_000
#: Filter choices listed at most per field.
MAX_CHOICES = 100
#: Above this planner estimate, PostgreSQL totals are shown as estimates, not counted.
EXACT_COUNT_BELOW = 10_000


@dataclass(frozen=True)
class Total:
    """How many events match: exactly, ``"about"`` (an estimate) or ``"at least"``."""

    value: int
    qualifier: str = ""

    @property
    def exact(self) -> bool:
        return not self.qualifier


@dataclass(frozen=True)
class EventPage:
    """One page of a listing. ``scanned`` is set when a search stopped at :data:`SCAN_LIMIT`."""

    events: list[Event]
    number: int
    per_page: int
    has_next: bool
    total: Total
    scanned: int | None = None

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def pages(self) -> int | None:
        """The number of pages when the total is exact."""
        if not self.total.exact:
            return None
        return max(1, -(-self.total.value // self.per_page))


@dataclass(frozen=True)
class Tally:
    """Events per value of a field, most first. ``covered`` of ``total`` events were seen."""

    counts: list[tuple[str, int]]
    covered: int
    total: int

    @property
    def complete(self) -> bool:
        return self.covered >= self.total


def field_value(event: Event, field: str) -> str:
    """An event's value of a facet field, ``"schema"`` or ``"producer"``."""
    return event.schema.id if field == "schema" else event.producer


def payload_text(event: Event) -> str:
    """The payload as JSON text, the text a search looks through."""
    return json.dumps(event.payload, ensure_ascii=False)


def search_uuid(search: str) -> uuid.UUID | None:
    """The event id a search names, when the search text is a UUID."""
    try:
        return uuid.UUID(search.strip())
    except ValueError:
        return None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first and last instant of a day in the current time zone (both inclusive)."""
    start = timezone.make_aware(datetime.combine(day, time.min))
    end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    return start, end - timedelta(microseconds=1)


def by_time(query: EventQuery, *, descending: bool, **changes: Any) -> EventQuery:
    """``query``'s filters sorted by creation time (the one order the admin offers)."""
    return replace(query, sort=(SortKey("createdAt", descending),), **changes)


def is_descending(query: EventQuery) -> bool:
    return bool(query.sort) and query.sort[0].descending


class EventBrowser:
    """Browses any :class:`EventStorage` through its public interface.

    Queries given to it use only ``schema``, ``producer``, ``timeRange`` and a sort on
    ``createdAt``: the filters the admin offers.
    """

    def __init__(self, storage: EventStorage) -> None:
        self.storage = storage

    # Listing -------------------------------------------------------------------------

    def page(
        self, query: EventQuery, *, search: str = "", number: int = 1, per_page: int = 50
    ) -> EventPage:
        """Page ``number`` (from 1) of the events matching ``query`` and ``search``.

        A search matches the event id when it is a UUID, and otherwise any event whose
        payload JSON text contains it, ignoring case.
        """
        offset = (number - 1) * per_page
        if search:
            return self._search_page(query, search, number, per_page)
        events = self.storage.query_events(replace(query, limit=per_page + 1, offset=offset))
        has_next = len(events) > per_page
        if has_next or (not events and number > 1):
            total = self.count(query)
        else:
            total = Total(offset + len(events))
        return EventPage(events[:per_page], number, per_page, has_next, total)

    def count(self, query: EventQuery) -> Total:
        return Total(self.storage.count_events(query))

    def _search_page(self, query: EventQuery, search: str, number: int, per_page: int) -> EventPage:
        """Scan up to :data:`SCAN_LIMIT` events in order and keep those the search matches."""
        scan = self.storage.query_events(replace(query, limit=SCAN_LIMIT + 1, offset=0))
        truncated = len(scan) > SCAN_LIMIT
        scan = scan[:SCAN_LIMIT]
        identifier = search_uuid(search)
        needle = search.casefold()
        matches = [
            event
            for event in scan
            if event.uuid == identifier or needle in payload_text(event).casefold()
        ]
        offset = (number - 1) * per_page
        return EventPage(
            matches[offset : offset + per_page],
            number,
            per_page,
            len(matches) > offset + per_page,
            Total(len(matches), "at least" if truncated else ""),
            scanned=SCAN_LIMIT if truncated else None,
        )

    def bounds(self, query: EventQuery) -> tuple[datetime, datetime] | None:
        """When the first and the last matching event were created; ``None`` if none match."""
        first = self.storage.query_events(by_time(query, descending=False, limit=1, offset=0))
        if not first:
            return None
        last = self.storage.query_events(by_time(query, descending=True, limit=1, offset=0))
        return first[0].created_at, last[0].created_at

    # Facets --------------------------------------------------------------------------

    def choices(self, field: str) -> list[str]:
        """Values of ``field`` to offer as filters: those of recent events, and for schemas
        every registered one."""
        recent = self.storage.query_events(
            by_time(EventQuery(), descending=True, limit=CHOICE_SCAN)
        )
        values = {field_value(event, field) for event in recent}
        if field == "schema":
            from trove.models import EventSchema

            values.update(EventSchema.objects.values_list("schema_id", flat=True))
        return sorted(values)[:MAX_CHOICES]

    def tally(self, field: str) -> Tally:
        """Events per schema or producer, over the latest :data:`SCAN_LIMIT` events."""
        scan = self.storage.query_events(by_time(EventQuery(), descending=True, limit=SCAN_LIMIT))
        counts = Counter(field_value(event, field) for event in scan)
        total = len(scan) if len(scan) < SCAN_LIMIT else self.storage.count_events(EventQuery())
        return Tally(sorted(counts.items(), key=lambda item: (-item[1], item[0])), len(scan), total)

    def daily_counts(self, days: list[date]) -> list[int]:
        """How many events were created on each day (current time zone)."""
        counts = []
        for day in days:
            start, end = day_bounds(day)
            counts.append(self.storage.count_events(EventQuery(start=start, end=end)))
        return counts

    def schema_versions(self, schema_id: str) -> Tally:
        """Events per schema version of ``schema_id`` (latest event versions only)."""
        query = EventQuery(schemas=(schema_id,))
        scan = self.storage.query_events(by_time(query, descending=True, limit=SCAN_LIMIT))
        counts = Counter(event.schema.version or "" for event in scan)
        total = len(scan) if len(scan) < SCAN_LIMIT else self.storage.count_events(query)
        return Tally(sorted(counts.items(), key=lambda item: (-item[1], item[0])), len(scan), total)

    def schema_version_in_use(self, schema_id: str, version: str) -> bool:
        """Whether events use schema ``schema_id`` at ``version``, so that it must stay as
        it is. Here the latest version of each event counts, over the latest
        :data:`SCAN_LIMIT` events with that schema id; a version that scan cannot show to
        be unused is taken as used."""
        tally = self.schema_versions(schema_id)
        return dict(tally.counts).get(version, 0) > 0 or not tally.complete


class ORMEventBrowser(EventBrowser):
    """The ORM backends: search, facets and tallies in SQL on the latest-version rows."""

    storage: ORMEventStorage

    COLUMNS = {"schema": "schema_id", "producer": "producer"}

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.storage.alias]

    def rows(self, query: EventQuery | None = None) -> QuerySet:
        """Latest-version rows matching ``query``, unordered, as the storage selects them."""
        return self.storage.matching_rows(query or EventQuery()).order_by()

    def count(self, query: EventQuery) -> Total:
        """Exact, except on PostgreSQL past :data:`EXACT_COUNT_BELOW`: the planner's estimate."""
        if self.connection.vendor == "postgresql":
            plan = self.rows(query).explain(format="json")
            estimate = int(json.loads(plan)[0]["Plan"]["Plan Rows"])
            if estimate >= EXACT_COUNT_BELOW:
                return Total(estimate, "about")
        return super().count(query)

    def _search(self, search: str) -> Q:
        """Payload text contains ``search`` (any case), or the event id is it.

        SQLite keeps JSON with non-ASCII characters escaped, so the escaped spelling of the
        search is looked for too.
        """
        condition = Q(payload__icontains=search)
        escaped = json.dumps(search)[1:-1]
        if escaped != search and self.connection.vendor == "sqlite":
            condition |= Q(payload__icontains=escaped)
        identifier = search_uuid(search)
        if identifier is not None:
            condition |= Q(event_id=identifier)
        return condition

    def _search_page(self, query: EventQuery, search: str, number: int, per_page: int) -> EventPage:
        rows = self.rows(query).filter(self._search(search))
        rows = rows.order_by("-created_at" if is_descending(query) else "created_at", "event_id")
        offset = (number - 1) * per_page
        events = [self.storage.to_event(row) for row in rows[offset : offset + per_page + 1]]
        has_next = len(events) > per_page
        if not has_next and (events or number == 1):
            total = Total(offset + len(events))
        elif self.connection.vendor == "postgresql":
            # The planner cannot estimate a substring match, and counting scans every row.
            total = Total(offset + len(events), "at least")
        else:
            total = Total(rows.count())
        return EventPage(events[:per_page], number, per_page, has_next, total)

    def choices(self, field: str) -> list[str]:
        """Distinct values by a loose index scan: one index probe per value, not a table scan."""
        rows = self.rows()
        table = self.connection.ops.quote_name(rows.model._meta.db_table)
        column = self.connection.ops.quote_name(self.COLUMNS[field])
        latest = self.connection.ops.quote_name("is_latest")
        sql = (
            f"WITH RECURSIVE distinct_values(value, n) AS ("
            f" SELECT * FROM (SELECT {column}, 1 FROM {table} WHERE {latest}"
            f" ORDER BY {column} LIMIT 1) AS first_value"
            f" UNION ALL SELECT (SELECT {column} FROM {table} WHERE {latest}"
            f" AND {column} > distinct_values.value ORDER BY {column} LIMIT 1), n + 1"
            f" FROM distinct_values WHERE distinct_values.value IS NOT NULL AND n < %s)"
            f" SELECT value FROM distinct_values WHERE value IS NOT NULL"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [MAX_CHOICES])
            return sorted(value for (value,) in cursor.fetchall())

    def tally(self, field: str) -> Tally:
        column = self.COLUMNS[field]
        counts = list(
            self.rows().values_list(column).annotate(n=Count("pk")).order_by("-n", column)
        )
        total = sum(n for _, n in counts)
        return Tally(counts, total, total)

    def daily_counts(self, days: list[date]) -> list[int]:
        if not days:
            return []
        start, _ = day_bounds(min(days))
        _, end = day_bounds(max(days))
        per_day = dict(
            self.rows()
            .filter(created_at__range=(start, end))
            .annotate(day=TruncDate("created_at"))
            .values_list("day")
            .annotate(n=Count("pk"))
        )
        return [per_day.get(day, 0) for day in days]

    def schema_versions(self, schema_id: str) -> Tally:
        counts = [
            (version or "", n)
            for version, n in self.rows()
            .filter(schema_id=schema_id)
            .values_list("schema_version")
            .annotate(n=Count("pk"))
            .order_by("-n", "schema_version")
        ]
        total = sum(n for _, n in counts)
        return Tally(counts, total, total)

    def schema_version_in_use(self, schema_id: str, version: str) -> bool:
        """Every stored version counts, not only the latest. The latest versions are asked
        first (indexed); only a version none of them uses costs a look at older rows."""
        from trove.models import Event as EventRow

        used = {"schema_id": schema_id, "schema_version": version}
        if self.rows().filter(**used).exists():
            return True
        return EventRow.objects.using(self.storage.alias).filter(**used).exists()


def browser_for(storage: EventStorage) -> EventBrowser:
    """The browser that answers fastest for ``storage``."""
    if isinstance(storage, ORMEventStorage):
        return ORMEventBrowser(storage)
    return EventBrowser(storage)
