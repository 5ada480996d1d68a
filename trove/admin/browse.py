"""The admin's read side: page, search and count events in whichever storage holds them.

Listing, counting and searching go through the storage interface (``query_events``,
``count_events``; a search is the query's ``text``, or an event id), so every backend is
browsed the same way. The aggregate questions the interface has no method for — the
distinct schemas and producers, counts per schema, producer or day, an estimated total —
a storage that is an :class:`~trove.storage.base.EventStatistics` answers from its
indexes; for any other, :class:`EventBrowser` falls back on bounded scans.

A page never needs a full count: it fetches one event more than it shows to know whether
a next page exists, and a total is only computed when there is one. A storage may give an
estimate instead (PostgreSQL's planner), so paging a million events costs milliseconds.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from trove.documents import Event
from trove.query import EventQuery, SortKey, text_words
from trove.storage.base import EventStatistics, EventStorage

#: Events a bounded scan looks at, at most (tallies on storages without statistics).
SCAN_LIMIT = 20_000
#: Recent events whose schemas and producers are offered as filter choices (ditto).
CHOICE_SCAN = 1_000
#: Filter choices listed at most per field.
MAX_CHOICES = 100


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
    """One page of a listing."""

    events: list[Event]
    number: int
    per_page: int
    has_next: bool
    total: Total

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
    """An event's value of a facet field: ``schema``, ``producer`` or ``schemaVersion``."""
    if field == "schemaVersion":
        return event.schema.version or ""
    return event.schema.id if field == "schema" else event.producer


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


class EventBrowser:
    """Browses any :class:`EventStorage` through its public interface.

    Queries given to it use only ``schema``, ``producer``, ``timeRange`` and a sort on
    ``createdAt``: the filters the admin offers.
    """

    def __init__(self, storage: EventStorage) -> None:
        self.storage = storage

    # Listing -------------------------------------------------------------------------

    @property
    def statistics(self) -> EventStatistics | None:
        """The storage's :class:`EventStatistics` capability, when it has it."""
        return self.storage if isinstance(self.storage, EventStatistics) else None

    def page(
        self, query: EventQuery, *, search: str = "", number: int = 1, per_page: int = 50
    ) -> EventPage:
        """Page ``number`` (from 1) of the events matching ``query`` and ``search``.

        A search is the event id when it is a UUID, and otherwise the query's ``text``:
        every word of it in some string of the payload, ignoring case.
        """
        offset = (number - 1) * per_page
        if search:
            identifier = search_uuid(search)
            if identifier is not None:
                event = self.storage.get_event(identifier)
                found = [event] if event is not None and query.matches(event) else []
                shown = found[offset : offset + per_page]
                return EventPage(shown, number, per_page, False, Total(len(found)))
            words = tuple(dict.fromkeys(text_words(search)))
            if not words:
                return EventPage([], number, per_page, False, Total(0))
            query = replace(query, words=words)
        events = self.storage.query_events(replace(query, limit=per_page + 1, offset=offset))
        has_next = len(events) > per_page
        if has_next or (not events and number > 1):
            total = self.count(query)
        else:
            total = Total(offset + len(events))
        return EventPage(events[:per_page], number, per_page, has_next, total)

    def count(self, query: EventQuery) -> Total:
        """Exact, or the storage's estimate when it has one (a count would be slow)."""
        statistics = self.statistics
        if statistics is not None:
            estimate = statistics.estimate_count(query)
            if estimate is not None:
                return Total(estimate, "about")
        return Total(self.storage.count_events(query))

    def bounds(self, query: EventQuery) -> tuple[datetime, datetime] | None:
        """When the first and the last matching event were created; ``None`` if none match."""
        first = self.storage.query_events(by_time(query, descending=False, limit=1, offset=0))
        if not first:
            return None
        last = self.storage.query_events(by_time(query, descending=True, limit=1, offset=0))
        return first[0].created_at, last[0].created_at

    # Facets --------------------------------------------------------------------------

    def choices(self, field: str) -> list[str]:
        """Values of ``field`` to offer as filters: those of stored events (of recent ones
        without statistics), and for schemas every registered one."""
        statistics = self.statistics
        if statistics is not None:
            values = set(statistics.distinct_values(field, MAX_CHOICES))
        else:
            recent = self.storage.query_events(
                by_time(EventQuery(), descending=True, limit=CHOICE_SCAN)
            )
            values = {field_value(event, field) for event in recent}
        if field == "schema":
            from trove.models import EventSchema

            values.update(EventSchema.objects.values_list("schema_id", flat=True))
        return sorted(values)[:MAX_CHOICES]

    def tally(self, field: str) -> Tally:
        """Events per schema or producer."""
        return self._tally(field, EventQuery())

    def _tally(self, field: str, query: EventQuery) -> Tally:
        """Events per value of ``field`` among those matching ``query``: from the
        storage's statistics, else over the latest :data:`SCAN_LIMIT` of them."""
        if self.statistics is not None:
            counts = self.statistics.count_by_field(field, query)
            total = sum(n for _, n in counts)
            return Tally(counts, total, total)
        scan = self.storage.query_events(by_time(query, descending=True, limit=SCAN_LIMIT))
        found = Counter(field_value(event, field) for event in scan)
        total = len(scan) if len(scan) < SCAN_LIMIT else self.storage.count_events(query)
        return Tally(sorted(found.items(), key=lambda item: (-item[1], item[0])), len(scan), total)

    def daily_counts(self, days: list[date]) -> list[int]:
        """How many events were created on each day (current time zone)."""
        if self.statistics is not None and days:
            start, end = day_bounds(min(days))[0], day_bounds(max(days))[1]
            per_day = self.statistics.count_per_day(start, end, timezone.get_current_timezone())
            return [per_day.get(day, 0) for day in days]
        counts = []
        for day in days:
            start, end = day_bounds(day)
            counts.append(self.storage.count_events(EventQuery(start=start, end=end)))
        return counts

    def schema_versions(self, schema_id: str) -> Tally:
        """Events per schema version of ``schema_id`` (latest event versions only)."""
        return self._tally("schemaVersion", EventQuery(schemas=(schema_id,)))

    def schema_version_in_use(self, schema_id: str, version: str) -> bool:
        """Whether events use schema ``schema_id`` at ``version``, so that it must stay as
        it is. Here the latest version of each event counts, over the latest
        :data:`SCAN_LIMIT` events with that schema id; a version that scan cannot show to
        be unused is taken as used. A storage with statistics answers for itself."""
        if self.statistics is not None:
            return self.statistics.schema_version_in_use(schema_id, version)
        tally = self.schema_versions(schema_id)
        return dict(tally.counts).get(version, 0) > 0 or not tally.complete


def browser_for(storage: EventStorage) -> EventBrowser:
    """The browser of ``storage`` (it uses the storage's statistics when it has them)."""
    return EventBrowser(storage)
