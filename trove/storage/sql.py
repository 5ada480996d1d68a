"""EventQuery → SQL for the ORM backends, one dialect per database vendor.

Payload paths and values always travel as query parameters, never as SQL text. Each
dialect renders the rules of ``trove.query`` (type-exact equality, type rank then value
ordering, missing values last) so that SQLite and PostgreSQL agree with the reference
evaluator. On PostgreSQL scalar equality is a ``@>`` containment, which a GIN index on
``payload`` can answer; the added ``jsonb_typeof`` test keeps it type-exact (containment
alone would let an array match one of its elements).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db.models import BooleanField, Expression
from django.db.models.expressions import RawSQL

from trove.query import json_type

Path = tuple[str | int, ...]
#: A payload key that may be written into SQL text: nothing but an identifier.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Dialect:
    """Renders payload conditions and sort keys against the ``payload`` column."""

    def __init__(self, column: str) -> None:
        self.column = column

    def payload_equals(self, path: tuple[str, ...], value: Any) -> Expression:
        sql, params = self.equals(tuple(path), value)
        return RawSQL(sql, params, output_field=BooleanField())

    def equals(self, path: Path, value: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def sort_keys(self, path: tuple[str, ...]) -> tuple[RawSQL, list[RawSQL]]:
        """(missing flag, [rank, value columns…]) for ordering by a payload path."""
        raise NotImplementedError


class SQLiteDialect(Dialect):
    """SQLite's JSON1 functions, addressed with ``$.key[index]`` paths.

    SQLite uses an expression index such as ``json_extract(payload, '$.order')`` only when
    the query holds that very expression, path included, so a path whose keys are plain
    identifiers (letters, digits, underscores) is written into the SQL as that literal;
    nothing else can appear in it. Any other path travels as a parameter.
    """

    @staticmethod
    def json_path(path: Path) -> str:
        """``$."key"[index]``, each key JSON-encoded as Django stores it (``"\\u00e9"`` for
        ``é``): SQLite matches a quoted key against the stored text as it is, escapes
        included, as Django's own ``compile_json_path`` does."""
        return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{json.dumps(p)}" for p in path)

    @staticmethod
    def path_sql(path: Path) -> tuple[str, list[Any]]:
        """The path as SQL: an inline literal for identifier keys, else a parameter."""
        if all(isinstance(p, int) or IDENTIFIER.fullmatch(p) for p in path):
            literal = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            return f"'{literal}'", []
        return "%s", [SQLiteDialect.json_path(path)]

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
        parts: list[str]
        params: list[Any]
        if kind == "object":
            parts = [
                f"json_type({col}, {p}) = 'object'",
                f"(SELECT count(*) FROM json_each({col}, {p})) = %s",
            ]
            params = [*pp, *pp, len(value)]
            children = [(path + (key,), item) for key, item in value.items()]
        else:
            parts = [f"json_type({col}, {p}) = 'array'", f"json_array_length({col}, {p}) = %s"]
            params = [*pp, *pp, len(value)]
            children = [(path + (index,), item) for index, item in enumerate(value)]
        for child_path, item in children:
            sql, child_params = self.equals(child_path, item)
            parts.append(sql)
            params.extend(child_params)
        return "(" + " AND ".join(parts) + ")", params

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
        target, params = self.value(path)  # type: ignore[arg-type]
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
