"""The event list's query string: filters, search, order and page, read and written back.

The parameters keep Django's admin names (``q`` to search, ``o`` to order, ``p`` for the
page, ``created_at__year`` … for the date hierarchy) so that links look familiar. They are
read with a form: a value that makes no sense is dropped with a message naming it, never
a server error, and the list is shown without it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.formats import date_format

from trove.admin.browse import day_bounds
from trove.query import EventQuery, SortKey

NEWEST_FIRST = "-created"
OLDEST_FIRST = "created"
#: The date hierarchy lists at most this many years back from the latest event.
MAX_YEARS = 30


class EventListForm(forms.Form):
    schema = forms.CharField(required=False, max_length=200)
    producer = forms.CharField(required=False, max_length=200)
    q = forms.CharField(required=False, max_length=500)
    created_at__year = forms.IntegerField(required=False, min_value=1, max_value=9998)
    created_at__month = forms.IntegerField(required=False, min_value=1, max_value=12)
    created_at__day = forms.IntegerField(required=False, min_value=1, max_value=31)
    o = forms.ChoiceField(
        required=False, choices=[(NEWEST_FIRST, "newest first"), (OLDEST_FIRST, "oldest first")]
    )
    p = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        year = data.get("created_at__year")
        month = data.get("created_at__month")
        day = data.get("created_at__day")
        if month is not None and year is None:
            self.add_error("created_at__month", "A month needs a year.")
        elif day is not None and month is None:
            self.add_error("created_at__day", "A day needs a month.")
        elif day is not None and year is not None and month is not None:
            if day > calendar.monthrange(year, month)[1]:
                self.add_error("created_at__day", f"{year}-{month:02} has no day {day}.")
        return data


@dataclass(frozen=True)
class Choice:
    """A link in a filter or the date hierarchy."""

    title: str
    link: str
    selected: bool = False


@dataclass(frozen=True)
class EventListing:
    """The valid parameters of one request to the event list."""

    params: dict[str, Any]
    errors: list[str]

    @classmethod
    def from_query_dict(cls, data: QueryDict) -> EventListing:
        form = EventListForm(data)
        form.is_valid()
        params = {key: value for key, value in form.cleaned_data.items() if value not in (None, "")}
        errors = [
            f"{name}={data.get(name)}: {' '.join(messages)}"
            for name, messages in form.errors.items()
        ]
        return cls(params, errors)

    # Reading -------------------------------------------------------------------------

    @property
    def search(self) -> str:
        return self.params.get("q", "").strip()

    @property
    def page(self) -> int:
        return self.params.get("p", 1)

    @property
    def newest_first(self) -> bool:
        return self.params.get("o", NEWEST_FIRST) == NEWEST_FIRST

    @property
    def year(self) -> int | None:
        return self.params.get("created_at__year")

    @property
    def month(self) -> int | None:
        return self.params.get("created_at__month")

    @property
    def day(self) -> int | None:
        return self.params.get("created_at__day")

    def query(self, *, with_dates: bool = True) -> EventQuery:
        """The EventQuery of the filters (not the search, which storages cannot express)."""
        start = end = None
        if with_dates and self.year is not None:
            first, last = self._period()
            start, end = day_bounds(first)[0], day_bounds(last)[1]
        return EventQuery(
            schemas=(self.params["schema"],) if "schema" in self.params else (),
            producers=(self.params["producer"],) if "producer" in self.params else (),
            start=start,
            end=end,
            sort=(SortKey("createdAt", self.newest_first),),
        )

    def _period(self) -> tuple[date, date]:
        year = self.year
        assert year is not None
        if self.month is None:
            return date(year, 1, 1), date(year, 12, 31)
        if self.day is None:
            return date(year, self.month, 1), date(
                year, self.month, calendar.monthrange(year, self.month)[1]
            )
        return date(year, self.month, self.day), date(year, self.month, self.day)

    @property
    def has_filters(self) -> bool:
        return any(key in self.params for key in ("schema", "producer", "q", "created_at__year"))

    # Writing -------------------------------------------------------------------------

    def link(self, **changes: Any) -> str:
        """This listing's query string with ``changes`` (``None`` removes a parameter).

        Changing anything but the page goes back to the first page.
        """
        params = dict(self.params)
        if set(changes) - {"p"}:
            params.pop("p", None)
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        query = QueryDict(mutable=True)
        for key, value in params.items():
            query[key] = str(value)
        return "?" + query.urlencode() if query else "?"

    def filter_choices(self, field: str, values: list[str]) -> list[Choice]:
        """'All' and one link per value, the selected one marked (kept even if not offered)."""
        current = self.params.get(field)
        if current is not None and current not in values:
            values = sorted([*values, current])
        choices = [Choice("All", self.link(**{field: None}), current is None)]
        choices.extend(
            Choice(value, self.link(**{field: value}), value == current) for value in values
        )
        return choices

    def date_hierarchy(self, bounds: tuple[datetime, datetime] | None) -> dict[str, Any]:
        """The drill-down links (years, months of a year, days of a month) and a way back.

        ``bounds`` are the first and last events matching the other filters, two cheap
        queries on any backend; the periods between them are offered.
        """
        clear = {"created_at__year": None, "created_at__month": None, "created_at__day": None}
        first = last = None
        if bounds is not None:
            first, last = (timezone.localtime(instant).date() for instant in bounds)

        def within(start: date, end: date) -> bool:
            return first is not None and last is not None and start <= last and end >= first

        year, month, day = self.year, self.month, self.day
        if year is None:
            back = None
            years = range(max(1, last.year - MAX_YEARS + 1), last.year + 1) if last else range(0)
            choices = [
                Choice(str(y), self.link(**{**clear, "created_at__year": y}))
                for y in years
                if within(date(y, 1, 1), date(y, 12, 31))
            ]
        elif month is None:
            back = Choice("All dates", self.link(**clear))
            choices = [
                Choice(
                    date_format(date(year, m, 1), "F Y"),
                    self.link(created_at__month=m, created_at__day=None),
                )
                for m in range(1, 13)
                if within(date(year, m, 1), date(year, m, calendar.monthrange(year, m)[1]))
            ]
        elif day is None:
            back = Choice(str(year), self.link(created_at__month=None, created_at__day=None))
            choices = [
                Choice(date_format(date(year, month, d), "M j"), self.link(created_at__day=d))
                for d in range(1, calendar.monthrange(year, month)[1] + 1)
                if within(date(year, month, d), date(year, month, d))
            ]
        else:
            when = date(year, month, day)
            back = Choice(date_format(when, "F Y"), self.link(created_at__day=None))
            choices = [Choice(date_format(when, "M j, Y"), "", True)]
        return {"back": back, "choices": choices}
