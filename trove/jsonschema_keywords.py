"""JSON Schema keywords that run in time linear in the payload, and on a clock.

jsonschema, the Python validator that lists every violation, matches patterns with
Python's backtracking ``re`` and compares ``uniqueItems``, ``enum`` and the
``unevaluated*`` keywords pairwise. These replacements match with RE2 (linear in the text;
a pattern it cannot run is refused) and compare through hashes and sets. Each keyword also
checks a clock first, so that no schema and payload together, however nested, keep a
worker past :data:`TIME_LIMIT`. No Django here: :mod:`trove.validation` uses these.
"""

from __future__ import annotations

import contextvars
import functools
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import re2
from jsonschema import validators
from jsonschema._utils import find_evaluated_item_indexes_by_schema
from jsonschema.exceptions import ValidationError
from re2 import _re2

REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Messages quote values; past this many characters they say what the value is instead.
_QUOTE_LIMIT = 200


def quote(value: Any) -> str:
    """``repr(value)`` for a message, cut short with its type and size when long."""
    text = repr(value)
    if len(text) <= _QUOTE_LIMIT:
        return text
    return f"{text[: _QUOTE_LIMIT - 20]}… ({type(value).__name__}, {len(text):,} characters)"


def _re2_syntax(pattern: str) -> str:
    """``pattern`` (ECMA-262) with its ``\\uXXXX`` and ``\\u{…}`` escapes in RE2's ``\\x{…}``."""
    if "\\u" not in pattern:
        return pattern
    out, index, size = [], 0, len(pattern)
    while index < size:
        char = pattern[index]
        if char == "\\" and index + 1 < size:
            following = pattern[index + 1]
            digits = pattern[index + 2 : index + 6]
            if following == "u" and len(digits) == 4 and _is_hex(digits):
                out.append("\\x{" + digits + "}")
                index += 6
                continue
            if following == "u" and pattern.startswith("{", index + 2):
                end = pattern.find("}", index + 3)
                if end > 0 and _is_hex(pattern[index + 3 : end]):
                    out.append("\\x" + pattern[index + 2 : end + 1])
                    index = end + 1
                    continue
            out.append(pattern[index : index + 2])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


#: The longest pattern Trove compiles (RE2 takes about a second per few megabytes).
PATTERN_LIMIT = 10_000

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Any:
    """A schema's pattern compiled by RE2 (linear-time matching); ``re2.error`` if it cannot
    be. Cached, as schemas are few and their patterns are matched again and again."""
    return re2.compile(_re2_syntax(pattern), _RE2_OPTIONS)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be matched in linear time, or ``None`` if it can (not cached:
    ``format: regex`` asks this about payload strings).

    It compiles with google-re2's own extension class: its ``re2.compile`` spends some
    50 µs per call on options, seconds for the patterns of a large schema.
    """
    if len(pattern) > PATTERN_LIMIT:
        return f"A pattern may be at most {PATTERN_LIMIT:,} characters long."
    try:
        compiled = _re2.RE2(_re2_syntax(pattern).encode("utf-8"), _RE2_OPTIONS)
    except UnicodeEncodeError:
        return f"{quote(pattern)} is not valid Unicode (it holds a lone surrogate)."
    if compiled.ok():
        return None
    reason = compiled.error().decode("utf-8", "replace")
    return (
        f"{quote(pattern)} is not a regular expression Trove can match in linear "
        f"time ({reason}); patterns follow RE2 syntax, without backreferences or "
        "lookaround."
    )


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, as JSON Schema's ``pattern``.

    Keywords call it once per key or string, so it also keeps to the time limit."""
    _on_time()
    return compile_pattern(pattern).search(text.encode("utf-8", "surrogatepass")) is not None


#: Seconds the Python validator may spend on one payload (jsonschema-rs answers in far less).
TIME_LIMIT = 1.0

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("trove_validation_deadline")


class _OutOfTime(Exception):
    """The Python validator went past :data:`TIME_LIMIT` on one payload."""


def _on_time() -> None:
    if time.monotonic() > _deadline.get(math.inf):
        raise _OutOfTime


def _within_budget(keyword: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """``keyword`` checking the clock first, so that no schema and payload together (a
    schema applied again and again at each level, say) hold a worker past the limit."""

    def bounded(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        _on_time()
        result = keyword(validator, value, instance, schema)
        if result is not None:
            yield from result

    return bounded


def budgeted(base: Any, replaced: dict[str, Callable[..., Any]]) -> Any:
    """``base`` with ``replaced`` keywords (those ``base`` has), every keyword on the clock."""
    keywords = {**base.VALIDATORS, **{k: v for k, v in replaced.items() if k in base.VALIDATORS}}
    return validators.extend(base, {k: _within_budget(v) for k, v in keywords.items()})


def errors_within(validator: Any, instance: Any, limit: float, doing: str) -> list[Any]:
    """Every error of ``instance``, sorted by place; past ``limit`` seconds those found so
    far and one ``timeLimit`` error saying so."""
    errors: list[Any] = []
    token = _deadline.set(time.monotonic() + limit)
    try:
        errors.extend(validator.iter_errors(instance))
    except _OutOfTime:
        stopped = ValidationError(
            f"{doing} stopped after {limit:g} s: it is too costly; the problems found so "
            "far are listed.",
            validator="timeLimit",
        )
        errors.append(stopped)
    finally:
        _deadline.reset(token)
    return sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])


_TRUE, _FALSE = object(), object()  # keys of true and false, which must not equal 1 and 0


def _json_key(value: Any) -> Any:
    """A hashable stand-in equal for equal JSON values, as JSON Schema compares them:
    ``1 == 1.0``, ``true != 1``, objects regardless of key order, arrays in order."""
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if isinstance(value, dict):
        return frozenset([(key, _json_key(item)) for key, item in value.items()])
    if isinstance(value, list | tuple):
        return tuple(map(_json_key, value))
    return value  # a number, string or null: Python already compares these as JSON does


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """``uniqueItems`` in linear time (jsonschema compares unsortable items pairwise)."""
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: dict[Any, int] = {}
    for index, item in enumerate(instance):
        first = seen.setdefault(_json_key(item), index)
        if first != index:
            yield ValidationError(f"has non-unique elements: items {first} and {index} are equal")
            return


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield ValidationError(f"{quote(instance)} does not match {quote(pattern)}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator:
    """``additionalProperties`` with RE2 (jsonschema matches ``patternProperties`` with
    Python's backtracking ``re`` here)."""
    if not validator.is_type(instance, "object"):
        return
    named = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    patterns = list(schema.get("patternProperties") or ())
    extras = [
        key
        for key in instance
        if key not in named and not any(search(pattern, key) for pattern in patterns)
    ]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        yield ValidationError(
            f"Additional properties are not allowed ({quote(sorted(extras))} unexpected)"
        )


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    """The keys of ``instance`` that ``schema``, or the subschemas it applies to the same
    object and that hold, evaluate: those ``unevaluatedProperties`` leaves alone."""
    if not isinstance(schema, dict):
        return set()
    keys: set[str] = set()
    for keyword in REFERENCE_KEYWORDS:
        if isinstance(schema.get(keyword), str):
            # jsonschema offers no public way to follow a reference from a keyword.
            resolved = validator._resolver.lookup(schema[keyword])
            target = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys |= _evaluated_keys(target, instance, resolved.contents)
    if isinstance(schema.get("properties"), dict):
        keys |= schema["properties"].keys() & instance.keys()
    for pattern in schema.get("patternProperties") or ():
        keys.update(key for key in instance if search(pattern, key))
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if schema.get(keyword, False) is True:
            keys.update(instance)
        elif isinstance(schema.get(keyword), dict):
            check = validator.evolve(schema=schema[keyword])
            keys.update(key for key, value in instance.items() if check.is_valid(value))
    for name, subschema in (schema.get("dependentSchemas") or {}).items():
        if name in instance:
            keys |= _evaluated_keys(validator, instance, subschema)
    applying = [*schema.get("allOf", ()), *schema.get("anyOf", ()), *schema.get("oneOf", ())]
    if "if" in schema:
        holds = validator.evolve(schema=schema["if"]).is_valid(instance)
        applying += [schema["if"], schema.get("then", {})] if holds else [schema.get("else", {})]
    for subschema in applying:
        if validator.evolve(schema=subschema).is_valid(instance):
            keys |= _evaluated_keys(validator, instance, subschema)
    return keys


def _unevaluated_properties(validator: Any, rest: Any, instance: Any, schema: Any) -> Iterator:
    """``unevaluatedProperties`` over a set of keys, with RE2 (jsonschema keeps a list,
    quadratic in the number of keys, and matches patterns with ``re``)."""
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    failing = [
        key
        for key in instance
        if key not in evaluated and any(validator.descend(instance[key], rest, path=key))
    ]
    if failing:
        yield ValidationError(
            f"Unevaluated properties are not allowed ({quote(failing)} unexpected)"
        )


def _unevaluated_items(validator: Any, rest: Any, instance: Any, schema: Any) -> Iterator:
    """``unevaluatedItems`` over a set of indexes (jsonschema looks each up in a list)."""
    if not validator.is_type(instance, "array"):
        return
    evaluated = set(find_evaluated_item_indexes_by_schema(validator, instance, schema))
    failing = [
        item
        for index, item in enumerate(instance)
        if index not in evaluated and any(validator.descend(item, rest, path=index))
    ]
    if failing:
        yield ValidationError(f"Unevaluated items are not allowed ({quote(failing)} unexpected)")


def _const(validator: Any, const: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if _json_key(const) != _json_key(instance):
        yield ValidationError(f"{quote(const)} was expected")


def _enum_keyword() -> Callable[..., Iterator[Any]]:
    """``enum`` by hash: each list of allowed values is hashed once per validator."""
    allowed: dict[int, tuple[list[Any], frozenset[Any]]] = {}

    def enum(validator: Any, enums: Any, instance: Any, schema: Any) -> Iterator[Any]:
        cached = allowed.get(id(enums))
        if cached is None or cached[0] is not enums:
            cached = allowed[id(enums)] = (enums, frozenset(_json_key(each) for each in enums))
        if _json_key(instance) not in cached[1]:
            yield ValidationError(f"{quote(instance)} is not one of {quote(enums)}")

    return enum


def format_checker(cls: Any) -> jsonschema.FormatChecker:
    """The draft's format checks, with ``regex`` meaning "RE2 can match it"."""
    checker = jsonschema.FormatChecker()
    if cls.FORMAT_CHECKER is not None:
        checker.checkers = dict(cls.FORMAT_CHECKER.checkers)
    checker.checkers["regex"] = (_is_linear_regex, ())
    return checker


def _is_linear_regex(instance: Any) -> bool:
    return not isinstance(instance, str) or pattern_problem(instance) is None


def linear_keywords() -> dict[str, Callable[..., Any]]:
    """The keywords that replace jsonschema's own (a fresh ``enum`` cache each time)."""
    return {
        "additionalProperties": _additional_properties,
        "const": _const,
        "enum": _enum_keyword(),
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "unevaluatedItems": _unevaluated_items,
        "unevaluatedProperties": _unevaluated_properties,
        "uniqueItems": _unique_items,
    }
