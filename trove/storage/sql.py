"""EventQuery → SQL for the ORM backends, one dialect per database vendor.

Payload paths and values always travel as query parameters, never as SQL text. Each
dialect renders the rules of ``trove.query`` (type-exact equality, type rank then value
ordering, missing values last) so that SQLite and PostgreSQL agree with the reference
evaluator. On PostgreSQL scalar equality is a ``@>`` containment, which a GIN index on
``payload`` can answer; the added ``jsonb_typeof`` test keeps it type-exact (containment
alone would let an array match one of its elements).

Equality on an object or array compares it whole: PostgreSQL's ``jsonb`` equality does,
and on SQLite the stored value and the wanted one are compared as
:func:`~trove.query.json_canonical` text, computed on the stored side by a function
registered on each connection (:func:`register_functions`). SQLite's JSON paths cannot
name a key holding a double quote, so comparing leaf by leaf would miss such keys.

Conditions are joined as a balanced tree (:func:`all_of`), so that SQLite's limit on
expression depth (1000) is reached by no query within ``TROVE["max_query_terms"]``; an
error that says a query outgrew a database's limits anyway is told apart from an outage
by :func:`exceeds_database_limits`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from django.db.models import BooleanField, Expression, Func
from django.db.models.expressions import RawSQL

from trove.query import json_canonical, json_type

Path = tuple[str, ...]
#: A payload key that may be written into SQL text: nothing but an identifier.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The SQLite function giving the :func:`~trove.query.json_canonical` text of JSON text.
CANONICAL = "trove_json_canonical"
#: Words of the errors by which SQLite and PostgreSQL refuse a statement too large or too
#: deep to plan: the query's fault, not the database's.
LIMIT_MESSAGES = (
    "too many sql variables",
    "expression tree is too large",
    "parser stack overflow",
    "too many terms",
    "too many arguments",
    "too many columns",
    "string or blob too big",
    "number of parameters must be between",
)
#: PostgreSQL's class 54, "program limit exceeded" (statement too complex, too many columns).
LIMIT_SQLSTATE_CLASS = "54"
#: What a client is told of a query past the limits of the database (a bad query, 400).
QUERY_TOO_LARGE = (
    "The query is too large or too deep for the event database; use fewer terms "
    "or shallower values."
)


def all_of(conditions: Sequence[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """``(a AND b) AND (c AND d)``: every condition, nested as a balanced tree so that its
    depth grows with the logarithm of their number (``1 = 1`` for none)."""
    if not conditions:
        return "1 = 1", []
    if len(conditions) == 1:
        return conditions[0]
    middle = len(conditions) // 2
    left, left_params = all_of(conditions[:middle])
    right, right_params = all_of(conditions[middle:])
    return f"({left} AND {right})", [*left_params, *right_params]


class AllOf(Func):
    """:func:`all_of` for ORM expressions (``Exists``, lookups, ``RawSQL``)."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        return all_of([compiler.compile(e) for e in self.get_source_expressions()])


def exceeds_database_limits(error: BaseException) -> bool:
    """Whether ``error`` (or the driver error behind it) says a statement outgrew the
    database's limits on its size or depth, rather than the database failing."""
    for cause in (error, error.__cause__):
        if cause is None:
            continue
        if str(getattr(cause, "sqlstate", None) or "").startswith(LIMIT_SQLSTATE_CLASS):
            return True
        text = str(cause).lower()
        if any(words in text for words in LIMIT_MESSAGES):
            return True
    return False


def _canonical(text: Any) -> str | None:
    """:func:`~trove.query.json_canonical` of JSON text, ``None`` for anything else.

    A value nested past Python's recursion limit cannot equal a query value (a query is
    at most ``max_json_depth`` deep), so it compares as ``NULL`` rather than failing.
    """
    if not isinstance(text, str):
        return None
    try:
        return json_canonical(json.loads(text))
    except (ValueError, RecursionError):
        return None


def register_functions(connection: sqlite3.Connection) -> None:
    """Register the functions :class:`SQLiteDialect`'s SQL calls on a SQLite connection."""
    connection.create_function(CANONICAL, 1, _canonical, deterministic=True)


class Dialect:
    """Renders payload conditions and sort keys against the ``payload`` column."""

    def __init__(self, column: str) -> None:
        self.column = column

    def payload_equals(self, payload: Sequence[tuple[Path, Any]]) -> Expression:
        """Every ``(path, value)`` equality of a query's ``payload``, as one condition."""
        sql, params = all_of([self.equals(path, value) for path, value in payload])
        return RawSQL(sql, params, output_field=BooleanField())

    def equals(self, path: Path, value: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def sort_keys(self, path: tuple[str, ...]) -> tuple[RawSQL, list[RawSQL]]:
        """(missing flag, [rank, value columns…]) for ordering by a payload path."""
        raise NotImplementedError


class SQLiteDialect(Dialect):
    """SQLite's JSON1 functions, addressed with ``$.key`` paths.

    SQLite uses an expression index such as ``json_extract(payload, '$.order')`` only when
    the query holds that very expression, path included, so a path whose keys are plain
    identifiers (letters, digits, underscores) is written into the SQL as that literal;
    nothing else can appear in it. Any other path travels as a parameter.

    ``ascii_keys`` says how the column's JSON text writes keys beyond ASCII: escaped, as
    Django's ``JSONField`` stores them (``"\\u00e9"`` for ``é``), or as they are.
    """

    def __init__(self, column: str, *, ascii_keys: bool = True) -> None:
        super().__init__(column)
        self.ascii_keys = ascii_keys

    def json_path(self, path: Path) -> str:
        """``$."key"``, each key JSON-encoded as the column's text writes it: SQLite
        before 3.45 matches a quoted key against the stored text as it is, escapes
        included (as Django's own ``compile_json_path`` assumes), later versions decode
        both sides; either way the stored spelling matches."""
        return "$" + "".join(f".{json.dumps(key, ensure_ascii=self.ascii_keys)}" for key in path)

    def path_sql(self, path: Path) -> tuple[str, list[Any]]:
        """The path as SQL: an inline literal for identifier keys, else a parameter."""
        if all(IDENTIFIER.fullmatch(key) for key in path):
            return "'$" + "".join(f".{key}" for key in path) + "'", []
        return "%s", [self.json_path(path)]

    def equals(self, path: Path, value: Any) -> tuple[str, list[Any]]:
        (p, pp), col = self.path_sql(path), self.column
        kind = json_type(value)
        if kind == "null":
            return f"json_type({col}, {p}) = 'null'", pp
        # The value test comes first: on a scan it rejects most rows before json_type runs,
        # and it is the term an expression index on json_extract answers.
        if kind == "boolean":
            # json_extract gives 1 or 0 for true or false, json_type tells them from numbers.
            return (
                f"(json_extract({col}, {p}) = %s AND json_type({col}, {p}) = %s)",
                [*pp, 1 if value else 0, *pp, "true" if value else "false"],
            )
        if kind == "number":
            return (
                f"(json_extract({col}, {p}) = %s AND json_type({col}, {p}) IN ('integer', 'real'))",
                [*pp, value, *pp],
            )
        if kind == "string":
            return (
                f"(json_extract({col}, {p}) = %s AND json_type({col}, {p}) = 'text')",
                [*pp, value, *pp],
            )
        return (
            f"(json_type({col}, {p}) = %s AND {CANONICAL}(json_extract({col}, {p})) = %s)",
            [*pp, kind, *pp, json_canonical(value)],
        )

    def sort_keys(self, path: tuple[str, ...]) -> tuple[RawSQL, list[RawSQL]]:
        p, col = self.json_path(path), self.column
        kind = f"json_type({col}, %s)"
        missing = RawSQL(f"{kind} IS NULL", [p])
        rank = RawSQL(
            f"CASE {kind} WHEN 'integer' THEN 0 WHEN 'real' THEN 0 WHEN 'text' THEN 1 "
            "WHEN 'true' THEN 2 WHEN 'false' THEN 2 WHEN 'null' THEN 3 ELSE 4 END",
            [p],
        )
        scalar = RawSQL(
            f"CASE WHEN {kind} IN ('integer', 'real', 'text') THEN json_extract({col}, %s) "
            f"WHEN {kind} = 'true' THEN 1 WHEN {kind} = 'false' THEN 0 END",
            [p, p, p, p],
        )
        return missing, [rank, scalar]


class PostgreSQLDialect(Dialect):
    """PostgreSQL ``jsonb`` operators; keys are passed as ``text`` so digits never index arrays."""

    def value(self, path: tuple[str, ...]) -> tuple[str, list[Any]]:
        return "(" + self.column + "".join(" -> %s::text" for _ in path) + ")", list(path)

    def equals(self, path: Path, value: Any) -> tuple[str, list[Any]]:
        target, params = self.value(path)
        kind = json_type(value)
        if kind in ("object", "array"):
            return f"{target} = %s::jsonb", [*params, json.dumps(value)]
        nested: Any = value
        for key in reversed(path):
            nested = {key: nested}
        return (
            f"({self.column} @> %s::jsonb AND jsonb_typeof({target}) = %s)",
            [json.dumps(nested), *params, kind],
        )

    def sort_keys(self, path: tuple[str, ...]) -> tuple[RawSQL, list[RawSQL]]:
        target, params = self.value(path)
        kind = f"jsonb_typeof({target})"
        missing = RawSQL(f"{target} IS NULL", params)
        rank = RawSQL(
            f"CASE {kind} WHEN 'number' THEN 0 WHEN 'string' THEN 1 WHEN 'boolean' THEN 2 "
            "WHEN 'null' THEN 3 ELSE 4 END",
            params,
        )
        number = RawSQL(f"CASE WHEN {kind} = 'number' THEN ({target})::numeric END", params * 2)
        text = RawSQL(
            f"(CASE WHEN {kind} = 'string' THEN ({target} #>> '{{}}') END) COLLATE \"C\"",
            params * 2,
        )
        boolean = RawSQL(f"CASE WHEN {kind} = 'boolean' THEN ({target})::boolean END", params * 2)
        return missing, [rank, number, text, boolean]


DIALECTS = {"sqlite": SQLiteDialect, "postgresql": PostgreSQLDialect}
