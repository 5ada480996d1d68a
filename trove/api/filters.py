"""The query-string filters of ``GET /api/events/``, declared as a django-filter FilterSet.

Events need not live in the ORM, so the FilterSet filters no queryset: its validated form
becomes an :class:`~trove.query.EventQuery`, the one query language every backend answers,
built through ``EventQuery.parse`` exactly as ``POST /api/query/`` builds its own. The view
hands it an :class:`EventSequence`, which stands in for the queryset that django-filter
narrows and DRF's pagination counts and slices. django-filter still does what it does
best: validation errors become a 400 naming each parameter, and the browsable API shows
the filter form.

Parameters: ``schema`` and ``producer`` (repeat for any of several), ``start``/``end``
(ISO-8601, inclusive), ``link_type``/``link_target``, ``payload.<path>=<value>`` (the value
is read as JSON when it parses as JSON, else taken as a string),
``payload.<path>__<op>=<value>`` for each ``where`` operator (``in`` by repeating it,
``exists`` with ``true``/``false``), the same as one predicate of the generic fields
``where_path``/``where_op``/``where_value`` (what the browsable form, whose fields are
fixed, can offer), ``text`` (words), ``ordering`` (a comma
list of sort fields, ``-`` for descending); ``limit``/``offset`` belong to the pagination.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import django_filters
from django import forms
from django.utils.safestring import mark_safe
from django_filters.rest_framework import DjangoFilterBackend

import trove
from trove.documents import Event, parse_instant
from trove.exceptions import QueryError
from trove.jsonvalues import json_problems
from trove.limits import depth_problems
from trove.query import OPERATORS, EventQuery

#: Query parameters of the list view that are not filters.
PAGING_PARAMETERS = frozenset({"limit", "offset", "format"})
PAYLOAD_PREFIX = "payload."


class EventSequence:
    """The latest events an (unpaged) EventQuery selects, fetched only when sliced.

    It offers what django-filter and DRF's ``LimitOffsetPagination`` use of a queryset:
    ``all()``, ``count()`` and slicing, each answered through the Python API.
    """

    model = None

    def __init__(self, query: EventQuery | None = None) -> None:
        self.query = query or EventQuery()

    def all(self) -> EventSequence:
        return self

    def narrowed(self, query: EventQuery) -> EventSequence:
        return EventSequence(query.without_paging())

    def count(self) -> int:
        return trove.count_events(self.query)

    def __getitem__(self, window: slice) -> list[Event]:
        if not isinstance(window, slice) or window.step not in (None, 1):
            raise TypeError("An EventSequence is read in slices: events[offset:stop].")
        start = window.start or 0
        limit = None if window.stop is None else max(window.stop - start, 0)
        return trove.query_events(replace(self.query, offset=start, limit=limit))


# Form fields ---------------------------------------------------------------------------


def invalid(*messages: str) -> forms.ValidationError:
    """A form error whose text may hold user input: django-filter %-formats messages, so
    the text travels as a parameter, never as the format."""
    return forms.ValidationError(
        [forms.ValidationError("%(message)s", params={"message": m}) for m in messages]
    )


def _check_text(values: list[Any], label: str) -> None:
    problems = json_problems(values, label, query=True)
    if problems:
        raise invalid(*(p["message"] for p in problems))


class RepeatableTextInput(forms.TextInput):
    """A text box per value given, plus an empty one, all under one name: submitting the
    form repeats the parameter (``?schema=a&schema=b``), as a client would. Empty boxes
    ask for nothing."""

    spare_box = True

    def value_from_datadict(self, data, files, name: str) -> list[str]:
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        return [value for value in values if value is not None and (value or not self.spare_box)]

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return name not in data

    def render(self, name, value, attrs=None, renderer=None) -> str:
        values = list(value or []) + ([""] if self.spare_box else [])
        boxes = []
        for index, item in enumerate(values):
            box_attrs = attrs if index == 0 else {**(attrs or {}), "id": None}
            boxes.append(super().render(name, item, box_attrs, renderer))
        return mark_safe("".join(boxes))  # each box is rendered, and escaped, by Django


class PayloadValueInput(RepeatableTextInput):
    """Every value of a ``payload.<path>`` parameter, the empty string included."""

    spare_box = False


class RepeatableTextField(forms.Field):
    """Every value of a repeated parameter, as a list of strings."""

    widget = RepeatableTextInput

    def to_python(self, value: Any) -> list[str]:
        return list(value or [])

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        _check_text(value, self.label or "")


class InstantField(forms.CharField):
    """An ISO-8601 instant, read exactly as ``EventQuery`` reads ``timeRange``."""

    def to_python(self, value: Any) -> str | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_instant(text).isoformat()
        except (ValueError, OverflowError):
            raise forms.ValidationError(
                "Enter an ISO-8601 instant such as 2026-11-25T10:30:00Z.", code="invalid"
            ) from None


class SortField(forms.CharField):
    """``ordering``: comma-separated sort fields, each optionally ``-`` for descending."""

    def to_python(self, value: Any) -> list[dict[str, str]]:
        text = super().to_python(value)
        if not text:
            return []
        keys = []
        for item in text.split(","):
            name = item.strip()
            descending = name.startswith("-")
            name = name.removeprefix("-")
            if not name:
                raise invalid(f"{text!r} has an empty sort field.")
            keys.append({"field": name, "direction": "desc" if descending else "asc"})
        _check_text(keys, "ordering")
        try:
            EventQuery.parse({"sort": keys})
        except QueryError as error:
            raise invalid(*(p["message"] for p in error.problems)) from None
        return keys


def payload_value(text: str, label: str) -> Any:
    """A ``payload.<path>`` value: JSON when it parses as JSON, else the text itself."""
    try:
        parsed = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise invalid("The value is nested too deeply.") from None
    except ValueError:
        parsed = text
    problems = depth_problems(parsed, label)
    if problems:
        raise invalid(*(p["message"] for p in problems))
    _check_text([parsed], label)
    return parsed


class PayloadValueField(forms.Field):
    """One ``payload.<path>`` value (see :func:`payload_value`)."""

    widget = PayloadValueInput

    def to_python(self, value: Any) -> Any:
        if len(value) != 1:
            raise forms.ValidationError("Give each payload path once.")
        return payload_value(value[0], self.label or "")

    def validate(self, value: Any) -> None:
        """Any JSON value is a valid filter value, ``null`` and ``""`` included."""


class PredicateValueField(forms.Field):
    """The value of a ``payload.<path>__<op>`` parameter, read for its operator.

    ``in`` takes every repetition of the parameter as one of its values; ``exists``
    takes ``true`` or ``false``; the others one value, read as for ``payload.<path>``.
    """

    widget = PayloadValueInput

    def __init__(self, *args: Any, op: str = "eq", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.op = op

    def to_python(self, value: Any) -> Any:
        label = self.label or ""
        if self.op == "in":
            return [payload_value(text, label) for text in value]
        if len(value) != 1:
            raise forms.ValidationError(f"Give {label} once (only __in repeats).")
        if self.op == "exists":
            if value[0] not in ("true", "false"):
                raise forms.ValidationError(f"{label} takes true or false.")
            return value[0] == "true"
        return payload_value(value[0], label)

    def validate(self, value: Any) -> None:
        """EventQuery.parse checks the value against its operator."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class WhereValueField(forms.CharField):
    """The generic form's predicate value, read as ``payload.<path>`` values are;
    ``None`` when the box is empty."""

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        return None if text == "" else payload_value(text, self.label or "")

    def validate(self, value: Any) -> None:
        """Any JSON value; EventQuery.parse checks it against the operator."""


class WhereValueFilter(django_filters.CharFilter):
    field_class = WhereValueField


class RepeatableFilter(django_filters.Filter):
    field_class = RepeatableTextField


class InstantFilter(django_filters.Filter):
    field_class = InstantField


class SortFilter(django_filters.Filter):
    field_class = SortField


class PayloadFilter(django_filters.Filter):
    field_class = PayloadValueField


class PredicateFilter(django_filters.Filter):
    field_class = PredicateValueField


def predicate_parameter(name: str) -> tuple[str, str] | None:
    """``(path, op)`` of a ``payload.<path>__<op>`` parameter name, else ``None``."""
    if not name.startswith(PAYLOAD_PREFIX) or "__" not in name:
        return None
    path, op = name.removeprefix(PAYLOAD_PREFIX).rsplit("__", 1)
    return (path, op) if op in OPERATORS else None


# The FilterSet ---------------------------------------------------------------------------


class EventFilterForm(forms.Form):
    """Refuses parameters nobody reads, so a misspelt filter is an error, not a no-op."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        unknown = sorted(set(self.data) - set(self.fields) - PAGING_PARAMETERS)
        if unknown:
            known = ", ".join([*self.fields, "payload.<path>", *sorted(PAGING_PARAMETERS)])
            raise invalid(f"Unknown query parameter(s) {', '.join(unknown)}; known: {known}.")
        return cleaned


class EventFilterSet(django_filters.FilterSet):
    """The list view's filters; :meth:`event_query` is what they ask, as an EventQuery."""

    schema = RepeatableFilter(
        label="Schema", help_text="The event's schema id; repeat the parameter for any of several."
    )
    producer = RepeatableFilter(
        label="Producer", help_text="The producer; repeat the parameter for any of several."
    )
    start = InstantFilter(label="Created from", help_text="ISO-8601 instant, inclusive.")
    end = InstantFilter(label="Created until", help_text="ISO-8601 instant, inclusive.")
    link_type = django_filters.CharFilter(
        label="Link type", strip=False, help_text="Has an outgoing link of this type."
    )
    link_target = django_filters.UUIDFilter(
        label="Link target", help_text="Has an outgoing link to this event id."
    )
    text = django_filters.CharFilter(
        label="Text",
        strip=False,
        help_text="Words; each must occur as a whole word in some string of the payload, "
        "in any case.",
    )
    where_path = django_filters.CharFilter(
        label="Payload path",
        strip=False,
        help_text="With an operator and a value: one where predicate on this dotted payload "
        "path, as payload.&lt;path&gt;__&lt;op&gt;=&lt;value&gt; asks.",
    )
    where_op = django_filters.CharFilter(
        label="Operator",
        widget=forms.Select(choices=[("", "---------"), *((op, op) for op in OPERATORS)]),
        help_text=f"One of {', '.join(OPERATORS)}.",
    )
    where_value = WhereValueFilter(
        label="Value",
        strip=False,
        help_text="JSON value, or text; a JSON list for in, true or false for exists.",
    )
    ordering = SortFilter(
        label="Ordering",
        help_text="Comma-separated: createdAt, producer, schema, id, version or "
        "payload.&lt;path&gt;; prefix '-' for descending. Ties end on createdAt, then id.",
    )

    class Meta:
        form = EventFilterForm

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None) -> None:
        if queryset is None:
            queryset = EventSequence()
        super().__init__(data, queryset, request=request, prefix=prefix)
        for name in self.data:
            predicate = predicate_parameter(name)
            if predicate is not None:
                payload_filter: django_filters.Filter = PredicateFilter(
                    label=name, help_text=f"{predicate[1]}: JSON value, or text.", op=predicate[1]
                )
            elif name.startswith(PAYLOAD_PREFIX):
                payload_filter = PayloadFilter(label=name, help_text="JSON value, or text.")
            else:
                continue
            payload_filter.parent = self
            self.filters[name] = payload_filter

    def _form_predicate(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The predicate of the form's generic fields (path, operator, value): how the
        browsable form, whose fields are fixed, adds a ``where`` predicate."""
        given = [data.get(name) not in (None, "") for name in ("where_path", "where_op")]
        value = data.get("where_value")
        if not any(given) and value is None:
            return []
        if not all(given) or value is None:
            message = "Give a payload path, an operator and a value together."
            raise QueryError(message, problems=[{"field": "where_path", "message": message}])
        return [{"path": data["where_path"], "op": data["where_op"], "value": value}]

    def filter_queryset(self, queryset: EventSequence) -> EventSequence:
        return queryset.narrowed(self.event_query())

    def event_query(self) -> EventQuery:
        """The EventQuery these (valid) parameters stand for, in the dict form of SPEC §3."""
        data = self.form.cleaned_data
        query: dict[str, Any] = {}
        if data.get("schema"):
            query["schema"] = data["schema"]
        if data.get("producer"):
            query["producer"] = data["producer"]
        time_range = {key: data[key] for key in ("start", "end") if data.get(key)}
        if time_range:
            query["timeRange"] = time_range
        link = {}
        if data.get("link_type"):
            link["type"] = data["link_type"]
        if data.get("link_target") is not None:
            link["targetEvent"] = {"id": str(data["link_target"])}
        if link:
            query["links"] = [link]
        payload, where = {}, []
        for name, value in data.items():
            predicate = predicate_parameter(name)
            if predicate is not None:
                where.append({"path": predicate[0], "op": predicate[1], "value": value})
            elif name.startswith(PAYLOAD_PREFIX):
                payload[name.removeprefix(PAYLOAD_PREFIX)] = value
        if payload:
            query["payload"] = payload
        where.extend(self._form_predicate(data))
        if where:
            query["where"] = where
        if data.get("text") is not None and "text" in self.data:
            query["text"] = data["text"]
        if data.get("ordering"):
            query["sort"] = data["ordering"]
        return EventQuery.parse(query)


class EventFilterBackend(DjangoFilterBackend):
    """django-filter's DRF backend, named for the OpenAPI extension that describes it.

    Nothing else differs: :class:`EventFilterSet` makes ``filterset.qs`` an
    :class:`EventSequence`, and ``to_html`` renders its form in the browsable API.
    """
