"""What JSON values every backend can keep, and compare, alike.

PostgreSQL refuses NUL characters and SQLite cannot encode a lone surrogate; no backend
has a JSON form for an infinite number; and a query value past 64-bit integers cannot be
bound as an SQL parameter. Such values are refused up front, on every backend and through
every entry point (Python API, EventQuery, REST API), rather than failing on some.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: The range of integers an SQL parameter (and so a query value, limit or offset) can hold.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def json_problems(value: Any, field: str, *, query: bool = False) -> list[dict[str, str]]:
    """Values no storage can keep or compare alike, each as ``{field, message}``.

    PostgreSQL refuses NUL characters and SQLite cannot encode a lone surrogate; neither
    has a JSON form for an infinite number; and a query value past 64-bit integers cannot
    be bound as an SQL parameter. They are refused up front on every backend (``query``
    adds the integer limit) rather than failing, or answering differently, on some.
    """
    if type(value) is str and value.isascii() and "\x00" not in value:
        return []  # a name, checked on every write: nothing below could object to it
    problems: list[dict[str, str]] = []

    def visit(item: Any, where: str) -> None:
        message = None
        if isinstance(item, str):
            if "\x00" in item:
                message = "Text may not contain NUL (\\u0000)."
            elif not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    message = "Text is not valid Unicode (a lone surrogate)."
        elif isinstance(item, float) and not math.isfinite(item):
            message = "Numbers must be finite."
        elif query and isinstance(item, int) and not isinstance(item, bool):
            if not -(2**63) <= item < 2**63:
                message = "Integers in a query must fit in 64 bits."
        elif isinstance(item, Mapping):
            for key, child in item.items():
                visit(key, where)
                visit(child, f"{where}.{key}" if where else str(key))
        elif isinstance(item, list | tuple):
            for index, child in enumerate(item):
                visit(child, f"{where}[{index}]")
        if message:
            problems.append({"field": where, "message": message})

    visit(value, field)
    return problems


#: The types JSON decodes to, told apart before the slower abstract-class check.
_CONTAINERS = frozenset({dict, list, tuple})
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _is_container(value: Any) -> bool:
    """Whether ``value`` is an object or an array (a ``Mapping``, list or tuple)."""
    kind = type(value)
    if kind in _CONTAINERS:
        return True
    return kind not in _SCALARS and isinstance(value, Mapping | list | tuple)


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests: 0 for a scalar, 1 for a flat object or list, and so on.

    Iterative, so that a document nested far past Python's recursion limit is measured
    rather than crashing the measurement; compared with ``TROVE["max_json_depth"]``.
    """
    if not _is_container(value):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # only containers are pushed: a scalar is never deeper than its parent
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, Mapping) else item
        for child in children:
            if _is_container(child):
                stack.append((child, depth + 1))
    return deepest


def plain_json_depth(value: Any) -> int | None:
    """:func:`json_depth` of a value made only of ``dict`` (with text keys), ``list``,
    ``str``, ``int``, ``float``, ``bool`` and ``None`` in which :func:`json_problems` finds
    nothing; ``None`` for anything else, which the two functions then look at in full.

    One walk instead of two, with no path spelt out: the shape check every write makes.
    """
    if type(value) is not dict and type(value) is not list:
        return None
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        children = item.values() if type(item) is dict else item
        if type(item) is dict:
            for key in item:
                if type(key) is not str or "\x00" in key or not (key.isascii() or _encodable(key)):
                    return None
        for child in children:
            kind = type(child)
            if kind is str:
                if "\x00" in child or not (child.isascii() or _encodable(child)):
                    return None
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is float:
                if not math.isfinite(child):
                    return None
            elif kind is not int and kind is not bool and child is not None:
                return None
    return deepest


def _encodable(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
