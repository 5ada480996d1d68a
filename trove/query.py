"""EventQuery: parsing, validation, and the pure-Python reference evaluator.

Every event-storage backend must return the same events in the same order for the same
query. The rules are written once here, in Python, and the in-memory backend uses them
directly; SQL backends translate them and the conformance suite holds them to this
evaluator. The rules:

- Filters on the payload are :class:`Predicate` objects (path, operator, value): each
  ``payload`` entry is an ``eq``, each ``where`` entry is what it says. Equality is
  JSON-type-exact: ``1``, ``"1"``, ``true`` and ``null`` are four different values,
  ``null`` is not a missing key, and ``1 == 1.0``. A dotted key reaches into nested
  objects (never into arrays). :data:`OPERATORS` holds each operator's rule.
- ``ne`` is the negation of ``eq``, so it holds on a missing path (SPEC §3: "a missing
  path is not equal"); ranges and ``startsWith`` hold only on a value of the same JSON
  type as theirs (numbers never compare with strings); ``exists`` tells a missing path
  from ``null``.
- Equality on an object or array compares it whole, whatever characters its keys hold;
  :func:`json_canonical` gives the text on which SQL backends compare such values.
- ``text`` holds when every word of it (:func:`text_words`: runs of Unicode letters and
  digits, casefolded) is a word of some string value of the payload
  (:func:`payload_words`); keys don't count, and a text without a word is a bad query.
- Sorting orders values of one JSON type naturally (numbers numerically, strings by code
  point); across types numbers < strings < booleans < null < objects/arrays. A missing
  value sorts last in either direction. Ties end on ``createdAt`` then ``id`` ascending so
  that pages never overlap.

Limits (SPEC §11) keep every query within what each database can plan, so that a query
is either answered or refused as a bad query (:class:`QueryError`), never a failure of
the storage: the query may nest no deeper than ``TROVE["max_json_depth"]`` (a dotted path
no longer either), and hold at most ``TROVE["max_query_terms"]`` terms, counted by
:meth:`EventQuery.terms`; ``sort`` takes at most :data:`MAX_SORT_KEYS` keys.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from trove.conf import trove_settings
from trove.documents import Event, EventId, parse_instant
from trove.exceptions import InvalidEvent, QueryError
from trove.jsonvalues import INT64_MAX, INT64_MIN, json_depth, json_problems

__all__ = [
    "EventQuery",
    "Predicate",
    "OPERATORS",
    "LinkFilter",
    "SortKey",
    "MISSING",
    "MAX_SORT_KEYS",
    "LINK_FILTER_TERMS",
    "payload_lookup",
    "payload_words",
    "text_words",
    "json_type",
    "json_equal",
    "json_canonical",
]

QUERY_KEYS = {
    "schema",
    "producer",
    "timeRange",
    "links",
    "payload",
    "where",
    "text",
    "limit",
    "offset",
    "sort",
}
SORT_FIELDS = ("createdAt", "producer", "schema", "id", "version")
#: Sort keys beyond the first few only break ties; SQL databases cap the terms of an
#: ``ORDER BY`` (a payload key takes three on SQLite, five on PostgreSQL).
MAX_SORT_KEYS = 100
#: What one ``links`` entry counts towards ``max_query_terms``: each is a subquery, and
#: PostgreSQL's planning time grows faster than their number (0.2 s for 64, minutes for
#: 1000), so the default limit allows 100.
LINK_FILTER_TERMS = 10
TYPE_RANK = {"number": 0, "string": 1, "boolean": 2, "null": 3, "object": 4, "array": 4}


class _Missing:
    """Marker for a payload path that does not exist (distinct from JSON ``null``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(frozen=True)
class LinkFilter:
    """One entry of ``links``: the event has an outgoing link matching every given part."""

    type: str | None = None
    target: EventId | None = None


@dataclass(frozen=True)
class Operator:
    """The rule of one ``where`` operator: :attr:`problem` says what is wrong with a value
    (``None`` for a good one), :attr:`holds` whether the value found at the path (perhaps
    :data:`MISSING`) satisfies it."""

    problem: Callable[[Any], str | None]
    holds: Callable[[Any, Any], bool]


def _any_value(value: Any) -> None:
    return None


def _orderable(value: Any) -> str | None:
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return None
    return "a number or a string"


def _range(compare: Callable[[Any, Any], bool]) -> Operator:
    """A range operator: the same JSON type as the value (number or string), then compare."""

    def holds(found: Any, value: Any) -> bool:
        return (
            found is not MISSING and json_type(found) == json_type(value) and compare(found, value)
        )

    return Operator(_orderable, holds)


def _kind(check: Callable[[Any], bool], message: str) -> Callable[[Any], str | None]:
    return lambda value: None if check(value) else message


#: Every ``where`` operator by name. A new operator is an entry here and a branch of
#: :meth:`trove.storage.sql.Dialect.predicate` (with its SQL in each dialect).
OPERATORS: dict[str, Operator] = {
    "eq": Operator(_any_value, lambda found, value: json_equal(found, value)),
    "ne": Operator(_any_value, lambda found, value: not json_equal(found, value)),
    "gt": _range(operator.gt),
    "gte": _range(operator.ge),
    "lt": _range(operator.lt),
    "lte": _range(operator.le),
    "in": Operator(
        _kind(lambda value: isinstance(value, list) and bool(value), "a non-empty list"),
        lambda found, value: any(json_equal(found, item) for item in value),
    ),
    "exists": Operator(
        _kind(lambda value: isinstance(value, bool), "true or false"),
        lambda found, value: (found is not MISSING) == value,
    ),
    "contains": Operator(
        _any_value,
        lambda found, value: (
            isinstance(found, list) and any(json_equal(item, value) for item in found)
        ),
    ),
    "startsWith": Operator(
        _kind(lambda value: isinstance(value, str), "a string"),
        lambda found, value: isinstance(found, str) and found.startswith(value),
    ),
}


@dataclass(frozen=True)
class Predicate:
    """One typed condition on the payload: the value at ``path`` satisfies ``op`` ``value``."""

    path: tuple[str, ...]
    op: str
    value: Any
    #: The query key it came from, ``payload`` or ``where``: what its terms count under.
    origin: str = field(default="where", compare=False)

    def holds(self, payload: Any) -> bool:
        """The reference rule of :data:`OPERATORS` for this predicate."""
        return OPERATORS[self.op].holds(payload_lookup(payload, self.path), self.value)

    def terms(self) -> int:
        """One per key of the path plus one per scalar of the value (each ``in`` value's)."""
        if self.op == "in":
            return len(self.path) + sum(_scalars(item) for item in self.value)
        if type(self.value) in _SCALAR_TYPES:
            return len(self.path) + 1
        return len(self.path) + _scalars(self.value)


@dataclass(frozen=True)
class SortKey:
    """``field`` is a top-level sort field or ``payload.<dotted path>``."""

    field: str
    descending: bool = False

    @property
    def payload_path(self) -> tuple[str, ...] | None:
        if self.field.startswith("payload."):
            return tuple(self.field[len("payload.") :].split("."))
        return None


@dataclass(frozen=True)
class EventQuery:
    """A validated query. Build it with :meth:`parse` from the seed's dict form."""

    schemas: tuple[str, ...] = ()
    producers: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    links: tuple[LinkFilter, ...] = ()
    where: tuple[Predicate, ...] = ()
    #: The casefolded words of ``text``, each of which some payload string must hold.
    words: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0
    sort: tuple[SortKey, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, data: EventQuery | dict[str, Any] | None) -> EventQuery:
        """Validate the dict form of SPEC §3; raise :class:`QueryError` listing every problem."""
        if isinstance(data, EventQuery):
            return data
        if data is None:
            return cls()
        if not isinstance(data, dict):
            message = "A query must be a JSON object."
            raise QueryError(message, problems=[{"field": "", "message": message}])
        problems: list[dict[str, Any]] = []
        deepest = trove_settings.max_json_depth
        if not _plain_query(data, deepest):
            problems = _too_deep(data)
            if problems:  # measured first: the other checks walk the query recursively
                raise QueryError(problems[0]["message"], problems=problems)
            problems.extend(json_problems(data, "", query=True))

        def problem(key: str, message: str) -> None:
            problems.append({"field": key, "message": message})

        for key in _unknown(data, QUERY_KEYS):
            problem(key, f"Unknown query key {key!r}; known keys: {', '.join(sorted(QUERY_KEYS))}.")

        schemas = _string_list(data.get("schema"), "schema", problem)
        producers = _string_list(data.get("producer"), "producer", problem)

        start = end = None
        time_range = data.get("timeRange")
        if time_range is not None:
            if not isinstance(time_range, dict):
                problem("timeRange", "timeRange must be an object with 'start' and/or 'end'.")
            else:
                for key in _unknown(time_range, _TIME_RANGE_KEYS):
                    problem(f"timeRange.{key}", f"Unknown timeRange key {key!r}.")
                start = _instant(time_range.get("start"), "timeRange.start", problem)
                end = _instant(time_range.get("end"), "timeRange.end", problem)

        links: list[LinkFilter] = []
        raw_links = data.get("links")
        if raw_links is not None:
            if not isinstance(raw_links, list):
                problem("links", "links must be a list of {type?, targetEvent?} objects.")
            else:
                for index, entry in enumerate(raw_links):
                    link = _link_filter(entry, f"links[{index}]", problem)
                    if link is not None:
                        links.append(link)

        where: list[Predicate] = []
        raw_payload = data.get("payload")
        if raw_payload is not None:
            if not isinstance(raw_payload, dict):
                problem("payload", "payload must be an object of key → JSON value.")
            else:
                for key, value in raw_payload.items():
                    path = _path(key, f"payload.{key}", problem, deepest)
                    if path is not None:
                        where.append(Predicate(path, "eq", value, "payload"))
        raw_where = data.get("where")
        if raw_where is not None:
            if not isinstance(raw_where, list):
                problem("where", "where must be a list of {path, op, value} objects.")
            else:
                for index, entry in enumerate(raw_where):
                    predicate = _predicate(entry, f"where[{index}]", problem, deepest)
                    if predicate is not None:
                        where.append(predicate)

        words: tuple[str, ...] = ()
        text = data.get("text")
        if text is not None:
            if not isinstance(text, str):
                problem("text", "text must be a string of words.")
            else:
                words = tuple(dict.fromkeys(text_words(text)))
                if not words:
                    problem("text", "text must hold at least one word (letters or digits).")
        limit = _non_negative(data.get("limit"), "limit", problem)
        offset = _non_negative(data.get("offset"), "offset", problem) or 0
        sort = _sort(data.get("sort"), problem)

        if not problems:
            fields: dict[str, Any] = {
                "schemas": schemas,
                "producers": producers,
                "start": start,
                "end": end,
                "links": tuple(links),
                "where": tuple(where),
                "words": words,
                "limit": limit,
                "offset": offset,
                "sort": sort,
            }
            query = _new_query(fields) if cls is EventQuery else cls(**fields)
            terms, most = query.terms(), trove_settings.max_query_terms
            if sum(terms.values()) <= most:
                return query
            largest = max(terms, key=terms.__getitem__)
            problem(
                largest,
                f"The query has {sum(terms.values())} terms ({terms[largest]} in {largest}); "
                f"at most {most} are allowed (TROVE['max_query_terms']).",
            )
        raise QueryError(
            "Invalid query: " + "; ".join(p["message"] for p in problems), problems=problems
        )

    def terms(self) -> dict[str, int]:
        """How many terms each part of the query holds, as ``max_query_terms`` counts them.

        One per schema, producer and sort key (a payload sort key one per key of its
        path); a ``payload`` or ``where`` entry one per key of its dotted path plus one per
        scalar in its value (an empty object or array is one; for ``in``, in each of its
        values); a word of ``text`` one; a link filter
        :data:`LINK_FILTER_TERMS`, for it is a subquery of its own. Each term then costs
        the SQL backends about one condition and a few parameters.
        """
        counted = {"payload": 0, "where": 0}
        for predicate in self.where:
            if predicate.origin in counted:
                counted[predicate.origin] += predicate.terms()
        return {
            "schema": len(self.schemas),
            "producer": len(self.producers),
            "links": LINK_FILTER_TERMS * len(self.links),
            "payload": counted["payload"],
            "where": counted["where"],
            "text": len(self.words),
            "sort": sum(len(key.payload_path or ("",)) for key in self.sort),
        }

    def without_paging(self) -> EventQuery:
        """The same question without limit/offset, for counting all matches."""
        return replace(self, limit=None, offset=0)

    # The reference evaluator -------------------------------------------------------

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes every filter of this query (paging and order aside)."""
        if self.schemas and event.schema.id not in self.schemas:
            return False
        if self.producers and event.producer not in self.producers:
            return False
        if self.start is not None and event.created_at < self.start:
            return False
        if self.end is not None and event.created_at > self.end:
            return False
        for wanted in self.links:
            if not any(_link_matches(wanted, link) for link in event.links):
                return False
        if not all(predicate.holds(event.payload) for predicate in self.where):
            return False
        return not self.words or set(self.words) <= set(payload_words(event.payload))

    def apply(self, events: Iterable[Event]) -> list[Event]:
        """Filter, order and page ``events`` (latest versions only) as every backend must."""
        selected = sorted((e for e in events if self.matches(e)), key=self.sort_key())
        stop = None if self.limit is None else self.offset + self.limit
        return selected[self.offset : stop]

    def sort_key(self):
        """A ``key=`` function ordering events by this query's sort and the tie-breakers."""
        keys = self.sort

        def compare(a: Event, b: Event) -> int:
            for key in keys:
                result = _compare_values(_sort_value(a, key), _sort_value(b, key), key.descending)
                if result:
                    return result
            return _cmp((a.created_at, str(a.uuid)), (b.created_at, str(b.uuid)))

        return functools.cmp_to_key(compare)


#: Lowered ASCII text with every character but ``a-z`` and ``0-9`` made a space: its words
#: are then what ``str.split`` finds, faster than a regular expression's ``[a-z0-9]+``.
_ASCII_SEPARATORS = str.maketrans(
    {chr(c): " " for c in range(128) if not (chr(c).isdigit() or "a" <= chr(c) <= "z")}
)
#: A run of characters ``str.isalnum`` accepts: every word lies inside one, but such a run
#: may also hold numerals that are not decimal digits (``²``, ``Ⅻ``), which split words.
_ALPHANUMERIC_RUN = re.compile(r"[^\W_]+")


def text_words(text: str) -> list[str]:
    """The words of ``text``, casefolded: maximal runs of Unicode letters (categories L*)
    and decimal digits (Nd), split before casefolding so both sides split alike.

    Every write computes the words of its payload, so the common cases skip the
    character-by-character walk: ASCII text by one translation and split, and a run of
    letters only (or digits only) as it stands. ``str.isalpha`` is exactly the L*
    categories and ``str.isdecimal`` exactly Nd.
    """
    if text.isascii():
        return text.lower().translate(_ASCII_SEPARATORS).split()
    found: list[str] = []
    for run in _ALPHANUMERIC_RUN.findall(text):
        if run.isalpha() or run.isdecimal():
            found.append(run.casefold())
        else:
            found.extend(_split_words(run))
    return found


def _split_words(text: str) -> list[str]:
    """:func:`text_words` character by character, by Unicode category."""
    found, word = [], []
    for character in text:
        category = unicodedata.category(character)
        if category[0] == "L" or category == "Nd":
            word.append(character)
        elif word:
            found.append("".join(word).casefold())
            word = []
    if word:
        found.append("".join(word).casefold())
    return found


def payload_words(payload: Any) -> list[str]:
    """Every distinct word of the payload's string values (keys don't count), sorted.

    SQL backends store this list beside the payload, computed by this function at write
    time, so that ``text`` means the same on every backend whatever a database's own
    tokenizer would make of the strings.
    """
    texts: list[str] = []
    stack = [payload]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            texts.append(value)
        elif kind is dict:
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        elif isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    # One pass over all the strings: a space is no letter, so no word spans two of them.
    return sorted(set(text_words(" ".join(texts))))


def payload_lookup(payload: Any, path: Sequence[str]) -> Any:
    """Follow a dotted path through nested objects; :data:`MISSING` when it leads nowhere."""
    value = payload
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value; ``bool`` is boolean, never a number."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    raise QueryError(f"{value!r} is not a JSON value.")


def json_equal(a: Any, b: Any) -> bool:
    """Type-exact JSON equality: ``1 == 1.0`` but ``1 != "1" != true``; MISSING equals nothing."""
    if a is MISSING or b is MISSING:
        return False
    kind = json_type(a)
    if kind != json_type(b):
        return False
    if kind == "object":
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if kind == "array":
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def json_canonical(value: Any) -> str:
    """The text two JSON values share exactly when :func:`json_equal` holds between them.

    Keys are sorted and whole numbers written as integers (``1.0`` as ``1``); the rest is
    what ``json.dumps`` writes, ASCII only. SQL backends compare object and array values
    by this text, so that they follow :func:`json_equal` whatever the keys contain.
    """
    return json.dumps(_whole_numbers(value), sort_keys=True, separators=(",", ":"))


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_whole_numbers(item) for item in value]
    return value


def _scalars(value: Any) -> int:
    """How many scalars ``value`` holds (an empty object or array counts as one)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list | tuple) and children:
            stack.extend(children)
        else:
            count += 1
    return count


def _new_query(fields: dict[str, Any]) -> EventQuery:
    """``EventQuery(**fields)`` with every field given: the frozen ``__init__`` sets each by
    ``object.__setattr__`` (it has no ``__post_init__``); this fills the new instance's
    ``__dict__`` at once, at a third of the cost, for the query every read parses."""
    query = object.__new__(EventQuery)
    query.__dict__.update(fields)
    return query


#: The types of the JSON scalars a decoded query holds.
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _plain_query(data: dict[str, Any], deepest: int) -> bool:
    """Whether neither :func:`_too_deep` nor ``json_problems(data, "", query=True)`` can
    find a problem in ``data``: it holds only ``dict`` (text keys), ``list`` and JSON
    scalars, nests no deeper than ``deepest`` in all, its text has no NUL or lone
    surrogate, its floats are finite and its integers fit in 64 bits. One walk for
    the two; anything else (another type included) is left to them."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            return False
        if type(item) is dict:
            for key in item:
                if type(key) is not str or not _plain_text(key):
                    return False
            children = item.values()
        else:
            children = item
        for child in children:
            kind = type(child)
            if kind is str:
                if not _plain_text(child):
                    return False
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is int:
                if not INT64_MIN <= child <= INT64_MAX:
                    return False
            elif kind is float:
                if not math.isfinite(child):
                    return False
            elif kind is not bool and child is not None:
                return False
    return True


def _plain_text(text: str) -> bool:
    """Text ``json_problems`` finds nothing in: no NUL, no lone surrogate."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A problem for each top-level key whose value nests the query past ``max_json_depth``."""
    deepest = trove_settings.max_json_depth
    return [
        {
            "field": str(key),
            "message": f"{key} nests deeper than {deepest} levels (TROVE['max_json_depth']).",
        }
        for key, value in data.items()
        if json_depth(value) >= deepest
    ]


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _sort_value(event: Event, key: SortKey) -> Any:
    path = key.payload_path
    if path is not None:
        return payload_lookup(event.payload, path)
    return {
        "createdAt": event.created_at,
        "producer": event.producer,
        "schema": event.schema.id,
        "id": str(event.uuid),
        "version": event.version,
    }[key.field]


def _compare_values(a: Any, b: Any, descending: bool) -> int:
    """Missing last whatever the direction; otherwise type rank, then value."""
    if a is MISSING or b is MISSING:
        return (a is MISSING) - (b is MISSING)
    if isinstance(a, datetime) or not isinstance(a, dict | list | str | int | float | None):
        result = _cmp(a, b)
    else:
        rank_a, rank_b = TYPE_RANK[json_type(a)], TYPE_RANK[json_type(b)]
        if rank_a != rank_b or rank_a == TYPE_RANK["object"] or a is None:
            result = _cmp(rank_a, rank_b)
        else:
            result = _cmp(a, b)
    return -result if descending else result


def _link_matches(wanted: LinkFilter, link) -> bool:
    if wanted.type is not None and link.type != wanted.type:
        return False
    if wanted.target is not None:
        if link.target.id != wanted.target.id:
            return False
        if wanted.target.version is not None and link.target.version != wanted.target.version:
            return False
    return True


#: The keys of each object inside a query.
_TIME_RANGE_KEYS = frozenset({"start", "end"})
_LINK_FILTER_KEYS = frozenset({"type", "targetEvent"})
_PREDICATE_KEYS = frozenset({"path", "op", "value"})
_SORT_KEY_KEYS = frozenset({"field", "direction"})


def _unknown(data: dict[str, Any], known: frozenset[str] | set[str]) -> list[str]:
    """The keys of ``data`` not in ``known``, sorted (sorting nothing when all are known)."""
    unknown = data.keys() - known
    return sorted(unknown) if unknown else []


def _string_list(value: Any, key: str, problem) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        problem(key, f"{key} must be a string or a list of strings.")
        return ()
    return tuple(values)


def _instant(value: Any, key: str, problem) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except (ValueError, OverflowError):  # OverflowError: valid locally, not in UTC (year 1)
        problem(key, f"{key} must be an ISO-8601 instant within years 1-9999 UTC, got {value!r}.")
        return None


def _non_negative(value: Any, key: str, problem) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        problem(key, f"{key} must be a non-negative 64-bit integer, got {value!r}.")
        return None
    return value


def _path(key: Any, label: str, problem, deepest: int | None = None) -> tuple[str, ...] | None:
    """The keys of a dotted path; ``deepest`` is ``TROVE["max_json_depth"]`` if the caller
    has read it already."""
    if not isinstance(key, str) or not key or "" in (keys := key.split(".")):
        problem(label, f"{label!r} is not a valid dotted payload path.")
        return None
    if '"' in key:
        problem(label, f"{label!r}: payload keys with a double quote cannot be queried.")
        return None
    parts = tuple(keys)
    most = trove_settings.max_json_depth if deepest is None else deepest
    if len(parts) > most:
        problem(
            label,
            f"{label!r} has {len(parts)} keys; a payload is at most "
            f"{most} levels deep (TROVE['max_json_depth']).",
        )
        return None
    return parts


def _link_filter(entry: Any, label: str, problem) -> LinkFilter | None:
    if not isinstance(entry, dict):
        problem(label, f"{label} must be an object with 'type' and/or 'targetEvent'.")
        return None
    for key in _unknown(entry, _LINK_FILTER_KEYS):
        problem(f"{label}.{key}", f"Unknown link filter key {key!r}.")
    link_type = entry.get("type")
    if link_type is not None and not isinstance(link_type, str):
        problem(f"{label}.type", f"{label}.type must be a string.")
        return None
    target = None
    if entry.get("targetEvent") is not None:
        try:
            target = EventId.coerce(entry["targetEvent"])
        except InvalidEvent as error:
            problem(f"{label}.targetEvent", f"{label}.targetEvent: {error.message}")
            return None
    return LinkFilter(link_type, target)


def _predicate(entry: Any, label: str, problem, deepest: int) -> Predicate | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        problem(label, f"{label} must be an object with a string 'path', an 'op' and a 'value'.")
        return None
    for key in _unknown(entry, _PREDICATE_KEYS):
        problem(f"{label}.{key}", f"Unknown predicate key {key!r}.")
    op = entry.get("op")
    if not isinstance(op, str) or op not in OPERATORS:
        problem(f"{label}.op", f"{label}.op must be one of {', '.join(OPERATORS)}, got {op!r}.")
        return None
    if "value" not in entry:
        problem(f"{label}.value", f"{label} needs a 'value'.")
        return None
    path = _path(entry["path"], f"{label}.path", problem, deepest)
    wrong = OPERATORS[op].problem(entry["value"])
    if wrong is not None:
        problem(f"{label}.value", f"{label}.value: {op} takes {wrong}.")
        return None
    return None if path is None else Predicate(path, op, entry["value"])


def _sort(value: Any, problem) -> tuple[SortKey, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problem("sort", "sort must be a list of {field, direction} objects.")
        return ()
    if len(value) > MAX_SORT_KEYS:
        problem("sort", f"sort takes at most {MAX_SORT_KEYS} keys, got {len(value)}.")
        return ()
    keys = []
    for index, entry in enumerate(value):
        label = f"sort[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
            problem(label, f"{label} must be an object with a string 'field'.")
            continue
        for key in _unknown(entry, _SORT_KEY_KEYS):
            problem(f"{label}.{key}", f"Unknown sort key {key!r}.")
        name, direction = entry["field"], entry.get("direction", "asc")
        if direction not in ("asc", "desc"):
            problem(f"{label}.direction", f"{label}.direction must be 'asc' or 'desc'.")
            continue
        if name not in SORT_FIELDS and not (
            name.startswith("payload.") and _path(name[len("payload.") :], label, problem)
        ):
            if not name.startswith("payload."):
                problem(
                    f"{label}.field",
                    f"Unknown sort field {name!r}; use one of {', '.join(SORT_FIELDS)} "
                    "or payload.<path>.",
                )
            continue
        keys.append(SortKey(name, direction == "desc"))
    return tuple(keys)
