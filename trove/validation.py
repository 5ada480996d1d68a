"""JSON Schema validation without Django: which schemas Trove accepts, and how it validates.

A schema is data a client sends, so it is treated as hostile input:

- a ``$ref`` resolves only inside the schema (``#…``) or to a registered schema (by its
  ``$id`` or ``urn:trove:schema:<id>:<version>``). Nothing is ever fetched: the registry
  of references is built from documents already in memory before validation starts, and
  every other URI is refused;
- a schema must compile when it is registered: every malformed keyword is reported at
  once, then (in a schema its meta-schema accepts) every bad regular expression,
  unresolvable reference and loop of references, rather than failing each event;
- patterns (``pattern``, ``patternProperties``, ``format: regex``) are matched by RE2,
  in time linear in the text; a pattern RE2 cannot run (backreferences, lookaround) is
  refused. ``uniqueItems``, ``enum``, ``additionalProperties`` and ``unevaluated*`` work
  through hashes and sets, not pairwise; and the Python validator, which lists the
  violations, stops after :data:`~trove.jsonschema_keywords.TIME_LIMIT` whatever the
  schema and payload (those keywords are in :mod:`trove.jsonschema_keywords`).

:func:`check_schema` applies these rules; :class:`PayloadValidator` validates payloads.
The registry (``trove.schemas``) supplies the registered documents and caches validators.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema import validators
from jsonschema_specifications import REGISTRY as META_SCHEMAS

from trove import jsonschema_keywords as keywords
from trove.exceptions import InvalidSchema
from trove.jsonschema_keywords import REFERENCE_KEYWORDS, quote
from trove.jsonvalues import json_depth

#: How a registered schema is named in a ``$ref`` when it has no ``$id`` of its own.
URN_PREFIX = "urn:trove:schema:"

#: A registered schema document by URI (``$id`` or URN), or ``None`` when none is.
Lookup = Callable[[str], Any]

# Keywords whose value is a schema, a list of schemas, or an object of schemas (all drafts).
_SCHEMA_KEYWORDS = frozenset(
    "additionalItems additionalProperties contains contentSchema else if items not "
    "propertyNames then unevaluatedItems unevaluatedProperties".split()
)
_SCHEMA_LIST_KEYWORDS = frozenset("allOf anyOf oneOf prefixItems items".split())
_SCHEMA_MAP_KEYWORDS = frozenset(
    "$defs definitions dependencies dependentSchemas patternProperties properties".split()
)
# Dialects jsonschema-rs ships the meta-schema of (without the trailing "#").
_FAST_DIALECTS = frozenset(
    (cls.META_SCHEMA.get("$id") or cls.META_SCHEMA["id"]).rstrip("#")
    for cls in (
        jsonschema.Draft4Validator,
        jsonschema.Draft6Validator,
        jsonschema.Draft7Validator,
        jsonschema.Draft201909Validator,
        jsonschema.Draft202012Validator,
    )
)
# Keywords that apply their schemas to the very value their own schema applies to.
_IN_PLACE_KEYWORDS = frozenset(
    "allOf anyOf oneOf not if then else dependencies dependentSchemas".split()
)
_REFERENCE_RULE = (
    "a $ref may point inside the schema ('#…') or to a registered schema, by its $id "
    "or as urn:trove:schema:<id>:<version>"
)
_LOOP = (
    "This leads back to a schema it is part of without reaching into the value (a loop of "
    "references), so validation would never end."
)
# jsonschema-rs takes time proportional to values × allowed values for an enum holding
# objects or arrays, and to keys × patterns for patternProperties (some 15 ns a match):
# past these many allowed values or patterns, the Python validator (hashing, and on the
# clock) checks the schema instead.
_RS_ENUM_LIMIT = 16
_RS_PATTERNS_LIMIT = 64


def schema_urn(schema_id: str, version: str) -> str:
    """The URI by which a ``$ref`` names the registered schema (``schema_id``, ``version``)."""
    return f"{URN_PREFIX}{schema_id}:{version}"


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _pointer(path: Iterator[Any] | list[Any]) -> str:
    """A dotted suffix naming where in a document a problem is: ``.author.name``."""
    return "".join(f".{part}" for part in path)


# Checking a schema document -----------------------------------------------------------


@dataclass(frozen=True)
class CheckedSchema:
    """A schema that passed :func:`check_schema`, with the documents its ``$ref`` use.

    ``resources`` maps each URI the schema reaches (directly or through another
    registered schema) to that registered document, so that validation never looks
    anything up. ``costly_for_rs`` says that ``jsonschema-rs`` would compare each value
    with many others one by one (an ``enum`` of many objects, many ``patternProperties``):
    minutes for a large payload, so validation must not use it.
    """

    document: Any
    uri: str
    resources: dict[str, Any] = field(default_factory=dict)
    costly_for_rs: bool = False


def check_schema(schema: Any, *, uri: str, lookup: Lookup, max_depth: int) -> CheckedSchema:
    """Check ``schema`` (to be known as ``uri``); raise :class:`InvalidSchema` listing every
    problem: not a JSON Schema, nested deeper than ``max_depth``, a keyword the meta-schema
    refuses, a pattern RE2 cannot run, a ``$ref`` to anything but the schema itself or a
    registered schema (``lookup``), one that resolves to nothing, a loop of references."""
    if not isinstance(schema, dict | bool):
        _raise([_problem("schema", "A JSON Schema must be an object.")])
    if json_depth(schema) > max_depth:
        _raise([_problem("schema", f"The schema nests deeper than {max_depth} levels.")])
    problems = _meta_problems(schema)
    if problems:
        _raise(problems)  # references and patterns are read in a well-formed schema only
    walk = _ReferenceWalk(lookup)
    walk.document(schema, uri, "schema")
    if walk.problems:
        _raise(walk.problems)
    return CheckedSchema(schema, uri, walk.resources, walk.costly_for_rs)


def _raise(problems: list[dict[str, str]]) -> None:
    raise InvalidSchema(
        "Invalid JSON Schema: " + "; ".join(p["message"] for p in problems), problems=problems
    )


def _dialect_class(schema: Any) -> type | None:
    """The jsonschema class of the dialect ``schema`` names, or ``None`` if it names one
    jsonschema does not know (or something that is no URI at all)."""
    dialect = schema.get("$schema")
    if not isinstance(dialect, str):
        return None
    try:
        return validators.validator_for(schema, default=None)
    except ValueError:
        return None


def _validator_class(schema: Any) -> Any:
    if isinstance(schema, dict) and "$schema" in schema:
        return _dialect_class(schema) or jsonschema.Draft202012Validator
    return jsonschema.Draft202012Validator


def _meta_problems(schema: Any) -> list[dict[str, str]]:
    """What the meta-schema of ``schema``'s dialect refuses in it.

    ``jsonschema-rs`` answers "valid?" first, in milliseconds where the Python
    ``jsonschema`` takes seconds for a large schema; only for a dialect it ships with, and
    with no ``$schema`` inside, as it would otherwise fetch the meta-schema. The Python
    ``jsonschema`` lists the problems, within :data:`~trove.jsonschema_keywords.TIME_LIMIT`.
    """
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    if dialect is not None and _dialect_class(schema) is None:
        return [
            _problem(
                "schema.$schema",
                f"{quote(dialect)} is not a JSON Schema dialect Trove knows (drafts 3 to "
                "2020-12, e.g. https://json-schema.org/draft/2020-12/schema).",
            )
        ]
    if _fast_meta_valid(schema, dialect):
        return []
    cls = _validator_class(schema)
    meta = keywords.budgeted(cls, {})(
        _without_dialects(cls.META_SCHEMA), registry=_meta_schemas_without_dialects()
    )
    errors = keywords.errors_within(meta, schema, keywords.TIME_LIMIT, "Checking the schema")
    return [_problem("schema" + _pointer(e.absolute_path), e.message) for e in errors]


def _fast_meta_valid(schema: Any, dialect: str | None) -> bool:
    if dialect is not None and dialect.rstrip("#") not in _FAST_DIALECTS:
        return False
    if _has_nested_dialect(schema):
        return False
    try:
        import jsonschema_rs
    except ImportError:
        return False
    try:
        return jsonschema_rs.meta.is_valid(schema)
    except (ValueError, TypeError, jsonschema_rs.ReferencingError):
        return False


def _has_nested_dialect(schema: Any) -> bool:
    """Whether a subschema of ``schema`` names its own ``$schema``."""
    if not isinstance(schema, dict):
        return False
    stack = [child for _, child in _subschemas(schema)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$schema" in node:
                return True
            stack.extend(child for _, child in _subschemas(node))
    return False


def _subschemas(schema: dict[str, Any]) -> Iterator[tuple[list[Any], Any]]:
    """(relative path, subschema) of every keyword of ``schema`` that holds schemas."""
    for keyword, value in schema.items():
        if keyword in _SCHEMA_KEYWORDS and isinstance(value, dict | bool):
            yield [keyword], value
        elif keyword in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            for index, item in enumerate(value):
                yield [keyword, index], item
        elif keyword in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, dict | bool):
                    yield [keyword, name], item


class _ReferenceWalk:
    """Visits every subschema: checks its patterns and resolves its references.

    References resolve in a ``referencing`` registry holding the document and what
    ``lookup`` returns; any other URI raises, so nothing is fetched.
    Registered documents reached are walked in turn, so that :attr:`resources` holds
    everything validation will need.
    """

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.problems: list[dict[str, str]] = []
        self.resources: dict[str, Any] = {}
        self.pending: list[str] = []
        self.costly_for_rs = False
        # Subschema → (subschema applied to the same value, where that is said), by id().
        self.in_place: dict[int, list[tuple[int, str]]] = {}

    def retrieve(self, uri: str) -> referencing.Resource:
        if uri not in self.resources:
            document = self.lookup(uri) if uri else None
            if document is None:
                raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]
            self.resources[uri] = document
            self.pending.append(uri)
        return _resource(self.resources[uri])

    def document(self, schema: Any, uri: str, where: str) -> None:
        registry = referencing.Registry(retrieve=self.retrieve).with_resources(  # type: ignore[call-arg]
            [(uri, _resource(schema))]
        )
        self.visit(schema, registry.resolver(uri), where)
        while self.pending:
            other = self.pending.pop()
            known = len(self.problems)
            self.visit(self.resources[other], registry.resolver(other), "schema")
            self.problems[known:] = [
                _problem(
                    "schema", f"In the registered schema {other}, {p['field']}: {p['message']}"
                )
                for p in self.problems[known:]
            ]
        self.check_loops()

    def visit(self, schema: Any, resolver: Any, where: str) -> None:
        stack = [(schema, resolver, where)]
        while stack:
            node, resolver, where = stack.pop()
            if not isinstance(node, dict):
                continue
            if isinstance(node.get("$id"), str):
                try:
                    resolver = resolver.in_subresource(_resource(node))
                except ValueError:
                    message = f"{quote(node['$id'])} is not a URI."
                    self.problems.append(_problem(f"{where}.$id", message))
            self.check_patterns(node, where)
            if "$schema" in node and where != "schema":
                dialect = node["$schema"]
                if _dialect_class(node) is None:
                    message = f"{quote(dialect)} is not a JSON Schema dialect Trove knows."
                    self.problems.append(_problem(f"{where}.$schema", message))
            self.costly_for_rs |= _is_costly_for_rs(node)
            edges = self.in_place.setdefault(id(node), [])
            for keyword in REFERENCE_KEYWORDS:
                if isinstance(node.get(keyword), str):
                    place = f"{where}.{keyword}"
                    target = self.check_reference(node[keyword], resolver, place)
                    if isinstance(target, dict):
                        edges.append((id(target), place))
            children = []
            for path, child in _subschemas(node):
                children.append((child, resolver, where + _pointer(path)))
                if path[0] in _IN_PLACE_KEYWORDS and isinstance(child, dict):
                    edges.append((id(child), where + _pointer(path)))
            stack.extend(reversed(children))  # visited in document order

    def check_loops(self) -> None:
        """Report each loop of references that comes back to a schema without reaching
        into the value: validation would go round it until Python's recursion limit."""
        state: dict[int, str] = {}
        for start in self.in_place:
            if start in state:
                continue
            state[start] = "open"
            stack = [(start, iter(self.in_place[start]))]
            while stack:
                node, edges = stack[-1]
                for target, place in edges:
                    if state.get(target) == "open":
                        self.problems.append(_problem(place, _LOOP))
                    elif target not in state:
                        state[target] = "open"
                        stack.append((target, iter(self.in_place.get(target, ()))))
                        break
                else:
                    state[node] = "done"
                    stack.pop()

    def check_patterns(self, node: dict[str, Any], where: str) -> None:
        if isinstance(node.get("pattern"), str):
            message = keywords.pattern_problem(node["pattern"])
            if message:
                self.problems.append(_problem(f"{where}.pattern", message))
        if isinstance(node.get("patternProperties"), dict):
            for key in node["patternProperties"]:
                message = keywords.pattern_problem(key)
                if message:
                    self.problems.append(_problem(f"{where}.patternProperties", message))

    def check_reference(self, ref: str, resolver: Any, where: str) -> Any:
        """The schema ``ref`` points to; ``None`` (and a problem noted) if there is none."""
        try:
            return resolver.lookup(ref).contents
        except referencing.exceptions.PointerToNowhere:
            message = f"{quote(ref)} points to nothing in the schema it names."
        except referencing.exceptions.NoSuchAnchor:
            message = f"{quote(ref)} names an anchor the schema does not define."
        except (referencing.exceptions.Unresolvable, ValueError):
            message = f"{quote(ref)} is not a schema Trove knows: {_REFERENCE_RULE}."
        self.problems.append(_problem(where, message))
        return None


def _is_costly_for_rs(node: dict[str, Any]) -> bool:
    enum, patterns = node.get("enum"), node.get("patternProperties")
    return (
        isinstance(enum, list)
        and len(enum) > _RS_ENUM_LIMIT
        and any(isinstance(each, dict | list) for each in enum)
    ) or (isinstance(patterns, dict) and len(patterns) > _RS_PATTERNS_LIMIT)


def _specification(document: Any) -> referencing.Specification:
    """The dialect ``document`` names, by the rules of which its ids and anchors are read
    (2020-12 if it names none, or none ``referencing`` knows)."""
    dialect = document.get("$schema") if isinstance(document, dict) else None
    if not isinstance(dialect, str):
        return referencing.jsonschema.DRAFT202012
    return referencing.jsonschema.specification_with(
        dialect, default=referencing.jsonschema.DRAFT202012
    )


def _resource(document: Any) -> referencing.Resource:
    return _specification(document).create_resource(document)


def _without_dialects(schema: Any) -> Any:
    """A copy of ``schema`` with no ``$schema`` in it, for the Python validator.

    At each subschema holding ``$schema``, jsonschema swaps the validator class for its
    stock one, which would drop Trove's keywords (RE2, hashing) and its time limit.
    """
    if not isinstance(schema, dict):
        return schema
    copy = {}
    for keyword, value in schema.items():
        if keyword == "$schema":
            continue
        if keyword in _SCHEMA_KEYWORDS and isinstance(value, dict):
            value = _without_dialects(value)
        elif keyword in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            value = [_without_dialects(item) for item in value]
        elif keyword in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            value = {name: _without_dialects(item) for name, item in value.items()}
        copy[keyword] = value
    return copy


def _resource_without_dialects(document: Any) -> referencing.Resource:
    """``document`` without ``$schema``, read by the rules of the dialect it names."""
    return _specification(document).create_resource(_without_dialects(document))


@functools.cache
def _meta_schemas_without_dialects() -> referencing.Registry:
    """The meta-schemas jsonschema ships, each without ``$schema`` (as
    :func:`_without_dialects`), so that checking a schema keeps to the time limit."""
    return (
        referencing.Registry()
        .with_resources(
            (uri, _resource_without_dialects(resource.contents))
            for uri, resource in META_SCHEMAS.items()
        )
        .crawl()
    )


# Validating payloads ------------------------------------------------------------------


def _fast_validator(checked: CheckedSchema) -> Any:
    """A ``jsonschema-rs`` validator for the schema, or ``None`` where it cannot serve.

    It is optional (the Python ``jsonschema`` answers alone without it) and used only to
    answer "valid?" about a thousand times faster. It gets the same documents as the
    Python validator, retrieval switched off (``offline``) and the ``regex`` crate's
    engine, which never backtracks.
    """
    if checked.costly_for_rs:
        return None
    try:
        import jsonschema_rs
    except ImportError:
        return None

    def refuse(uri: str) -> Any:
        raise ValueError(f"{uri} is not a registered schema")

    try:
        registry = None
        if checked.resources:
            registry = jsonschema_rs.Registry(
                resources=list(checked.resources.items()), retriever=refuse
            )
        return jsonschema_rs.validator_for(
            checked.document,
            validate_formats=True,
            offline=True,
            registry=registry,
            pattern_options=jsonschema_rs.RegexOptions(),
        )
    except (ValueError, TypeError, jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError):
        return None


class PayloadValidator:
    """Validates payloads against a checked schema, listing every violation.

    A payload that ``jsonschema-rs`` accepts is valid. Any other payload goes to the Python
    ``jsonschema``, which lists every violation; where it finds none (the two disagree on
    a regular expression or format edge) the payload is accepted, as it always was.
    """

    def __init__(self, checked: CheckedSchema, time_limit: float | None = None) -> None:
        base = _validator_class(checked.document)
        cls = keywords.budgeted(base, keywords.linear_keywords())
        self.time_limit = keywords.TIME_LIMIT if time_limit is None else time_limit
        documents = {checked.uri: checked.document, **checked.resources}
        registry = referencing.Registry().with_resources(
            (uri, _resource_without_dialects(doc)) for uri, doc in documents.items()
        )
        self.validator = cls(
            _without_dialects(checked.document),
            registry=registry.crawl(),
            format_checker=keywords.format_checker(base),
        )
        self.fast = _fast_validator(checked)

    def problems(self, payload: Any) -> list[dict[str, Any]]:
        """Every violation of ``payload``, as ``{field, message, validator}``; empty if valid."""
        if self.fast is not None:
            try:
                if self.fast.is_valid(payload):
                    return []
            except (ValueError, TypeError, OverflowError):
                pass  # a value jsonschema-rs cannot read: the Python validator decides
        errors = keywords.errors_within(self.validator, payload, self.time_limit, "Validation")
        return [
            {
                "field": "payload" + _pointer(error.absolute_path),
                "message": error.message,
                "validator": str(error.validator),
            }
            for error in errors
        ]
