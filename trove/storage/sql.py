"""EventQuery → SQL: the one compiler of every SQL backend, one dialect per database vendor.

:class:`Compiler` builds the WHERE and ORDER BY of a whole query against a
:class:`Table` (the ORM's models or the JSON directory's index); each :class:`Dialect`
renders one :class:`~trove.query.Predicate` or payload sort key. A new ``where`` operator
is a rule in :data:`trove.query.OPERATORS` and a branch of each dialect's
:meth:`Dialect.predicate`.

Payload paths and values always travel as query parameters, never as SQL text. Each
dialect renders the rules of ``trove.query`` (type-exact equality, type rank then value
ordering, missing values last) so that SQLite and PostgreSQL agree with the reference
evaluator. On PostgreSQL scalar equality is a ``@>`` containment, which a GIN index on
``payload`` can answer, and type-exact as it stands: containment lets an array hold a
scalar only where both sides are the top level, and the contained side is an object
(``{"k": ["x"]} @> {"k": "x"}`` is false).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from trove.query import EventQuery, Predicate, json_canonical, json_type

Path = tuple[str, ...]
#: A payload key that may be written into SQL text: nothing but an identifier.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Payload paths whose SQL a dialect keeps, to answer the next query naming them.
PATHS_KEPT = 1024
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


def any_of(conditions: Sequence[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """``(a OR b) OR (c OR d)``, balanced as :func:`all_of` is."""
    if len(conditions) == 1:
        return conditions[0]
    middle = len(conditions) // 2
    left, left_params = any_of(conditions[:middle])
    right, right_params = any_of(conditions[middle:])
    return f"({left} OR {right})", [*left_params, *right_params]


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


SQL = tuple[str, list[Any]]


class Dialect:
    """Renders predicates and sort keys against a ``payload`` column."""

    def __init__(self, column: str) -> None:
        self.column = column

    def predicate(self, predicate: Predicate) -> SQL:
        """The condition that holds exactly where the reference's rule does."""
        path, op, value = predicate.path, predicate.op, predicate.value
        if op == "eq":
            return self.equals(path, value)
        if op == "ne":
            sql, params = self.equals(path, value)
            return f"({sql}) IS NOT TRUE", params
        if op == "in":
            return any_of([self.equals(path, item) for item in value])
        if op in RANGES:
            return self.compare(path, RANGES[op], value)
        if op == "exists":
            return self.exists(path, value)
        if op == "contains":
            return self.contains(path, value)
        if op == "startsWith":
            return self.starts_with(path, value)
        raise ValueError(f"No SQL for operator {op!r}.")

    def equals(self, path: Path, value: Any) -> SQL:
        raise NotImplementedError

    def compare(self, path: Path, operator: str, value: Any) -> SQL:
        raise NotImplementedError

    def exists(self, path: Path, present: bool) -> SQL:
        raise NotImplementedError

    def contains(self, path: Path, value: Any) -> SQL:
        raise NotImplementedError

    def starts_with(self, path: Path, prefix: str) -> SQL:
        raise NotImplementedError

    def sort_keys(self, path: Path) -> tuple[SQL, list[SQL]]:
        """(missing flag, [rank, value columns…]) for ordering by a payload path."""
        raise NotImplementedError

    def text_order(self, column: str) -> str:
        """``column`` ordered by code point."""
        return column

    def has_words(self, column: str, words: Sequence[str]) -> SQL:
        """Every one of ``words`` is in ``column``, the space-separated words of a payload
        (:func:`trove.query.payload_words`)."""
        return all_of([(f"instr(' ' || {column} || ' ', %s) > 0", [f" {w} "]) for w in words])

    def word_candidates(self, index: WordIndex, row_id: str, words: Sequence[str]) -> SQL:
        """Rows (their ``row_id``) that may hold every one of ``words``, found by a
        full-text index."""
        raise NotImplementedError


#: SQL comparison of each range operator.
RANGES = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class SQLiteDialect(Dialect):
    """SQLite's JSON1 functions, addressed with ``$.key`` paths.

    SQLite uses an expression index such as ``json_extract(payload, '$.order')`` only when
    the query holds that very expression, path included, so a path whose keys are plain
    identifiers (letters, digits, underscores) is written into the SQL as that literal;
    nothing else can appear in it. Any other path travels as a parameter. Equality and
    ranges put the ``json_extract`` comparison first, the term such an index answers.

    ``ascii_keys`` says how the column's JSON text writes keys beyond ASCII: escaped, as
    Django's ``JSONField`` stores them (``"\\u00e9"`` for ``é``), or as they are.
    """

    def __init__(self, column: str, *, ascii_keys: bool = True) -> None:
        super().__init__(column)
        self.ascii_keys = ascii_keys
        #: The inline literal of each path of identifier keys met so far (``None`` for a
        #: path that travels as a parameter): every query asks again.
        self.literals: dict[Path, str | None] = {}

    def json_path(self, path: Path) -> str:
        """``$."key"``, each key JSON-encoded as the column's text writes it: SQLite
        before 3.45 matches a quoted key against the stored text as it is, escapes
        included (as Django's own ``compile_json_path`` assumes), later versions decode
        both sides; either way the stored spelling matches."""
        return "$" + "".join(f".{json.dumps(key, ensure_ascii=self.ascii_keys)}" for key in path)

    def path_sql(self, path: Path) -> SQL:
        """The path as SQL: an inline literal for identifier keys, else a parameter."""
        try:
            literal = self.literals[path]
        except KeyError:
            if len(self.literals) >= PATHS_KEPT:
                self.literals.clear()
            literal = self.literals[path] = (
                "'$" + "".join(f".{key}" for key in path) + "'"
                if all(IDENTIFIER.fullmatch(key) for key in path)
                else None
            )
        if literal is not None:
            return literal, []
        return "%s", [self.json_path(path)]

    #: ``json_type`` names of each JSON type.
    TYPES = {
        "number": "('integer', 'real')",
        "string": "('text')",
        "null": "('null')",
        "object": "('object')",
        "array": "('array')",
    }

    def equals(self, path: Path, value: Any) -> SQL:
        (p, pp), col = self.path_sql(path), self.column
        kind = json_type(value)
        if kind == "null":
            return f"json_type({col}, {p}) = 'null'", pp
        if kind == "boolean":
            # json_extract gives 1 or 0 for true or false, json_type tells them from numbers.
            return (
                f"(json_extract({col}, {p}) = %s AND json_type({col}, {p}) = %s)",
                [*pp, 1 if value else 0, *pp, "true" if value else "false"],
            )
        if kind in ("number", "string"):
            return self.compare(path, "=", value)
        return (
            f"(json_type({col}, {p}) = %s AND {CANONICAL}(json_extract({col}, {p})) = %s)",
            [*pp, kind, *pp, json_canonical(value)],
        )

    def compare(self, path: Path, operator: str, value: Any) -> SQL:
        (p, pp), col = self.path_sql(path), self.column
        types = self.TYPES[json_type(value)]
        return (
            f"(json_extract({col}, {p}) {operator} %s AND json_type({col}, {p}) IN {types})",
            [*pp, value, *pp],
        )

    def exists(self, path: Path, present: bool) -> SQL:
        p, pp = self.path_sql(path)
        return f"json_type({self.column}, {p}) IS {'NOT ' if present else ''}NULL", pp

    def contains(self, path: Path, value: Any) -> SQL:
        (p, pp), col = self.path_sql(path), self.column
        kind = json_type(value)
        if kind == "null":
            element, params = "x.type = 'null'", []
        elif kind == "boolean":
            element, params = "x.type = %s", ["true" if value else "false"]
        elif kind in ("number", "string"):
            element, params = f"x.value = %s AND x.type IN {self.TYPES[kind]}", [value]
        else:
            element, params = (
                f"x.type = %s AND {CANONICAL}(x.value) = %s",
                [
                    kind,
                    json_canonical(value),
                ],
            )
        return (
            f"(json_type({col}, {p}) = 'array' AND EXISTS "
            f"(SELECT 1 FROM json_each({col}, {p}) AS x WHERE {element}))",
            [*pp, *pp, *params],
        )

    def starts_with(self, path: Path, prefix: str) -> SQL:
        # substr counts characters, as len() does; no LIKE, so no wildcard to escape.
        (p, pp), col = self.path_sql(path), self.column
        return (
            f"(substr(json_extract({col}, {p}), 1, %s) = %s AND json_type({col}, {p}) = 'text')",
            [*pp, len(prefix), prefix, *pp],
        )

    def word_candidates(self, index: WordIndex, row_id: str, words: Sequence[str]) -> SQL:
        # Each word a quoted phrase: one token, never an operator, whatever it spells.
        phrases = " ".join('"' + word.replace('"', '""') + '"' for word in words)
        return index.candidates(row_id), [phrases]

    def sort_keys(self, path: Path) -> tuple[SQL, list[SQL]]:
        p, col = self.json_path(path), self.column
        kind = f"json_type({col}, %s)"
        missing = (f"{kind} IS NULL", [p])
        rank = (
            f"CASE {kind} WHEN 'integer' THEN 0 WHEN 'real' THEN 0 WHEN 'text' THEN 1 "
            "WHEN 'true' THEN 2 WHEN 'false' THEN 2 WHEN 'null' THEN 3 ELSE 4 END",
            [p],
        )
        scalar = (
            f"CASE WHEN {kind} IN ('integer', 'real', 'text') THEN json_extract({col}, %s) "
            f"WHEN {kind} = 'true' THEN 1 WHEN {kind} = 'false' THEN 0 END",
            [p, p, p, p],
        )
        return missing, [rank, scalar]


class PostgreSQLDialect(Dialect):
    """PostgreSQL ``jsonb`` operators; keys are passed as ``text`` so digits never index arrays.

    Scalar equality (and so ``in``, ``ne``) and ``contains`` of a scalar are ``@>``
    containments, which the GIN index on ``payload`` answers; ranges, ``exists`` and
    ``startsWith`` are evaluated row by row.
    """

    def value(self, path: Path) -> SQL:
        """``(payload -> 'key'::text …)``: identifier keys written as literals, the very
        expression of a ``payloadIndexes`` index, which the planner then matches however
        parameters are bound (a parameter in its place matches no index in a generic plan
        of a prepared statement); any other key travels as a parameter."""
        if all(IDENTIFIER.fullmatch(key) for key in path):
            return "(" + self.column + "".join(f" -> '{key}'::text" for key in path) + ")", []
        return "(" + self.column + "".join(" -> %s::text" for _ in path) + ")", list(path)

    def equals(self, path: Path, value: Any) -> SQL:
        if json_type(value) in ("object", "array"):
            target, params = self.value(path)
            return f"{target} = %s::jsonb", [*params, json.dumps(value)]
        # Type-exact as it stands: containment matches a scalar to an element of an
        # array only at the top level of both sides, and the right side is an object.
        return f"{self.column} @> %s::jsonb", [json.dumps(_nest(path, value))]

    def compare(self, path: Path, operator: str, value: Any) -> SQL:
        target, params = self.value(path)
        if json_type(value) == "number":
            # jsonb compares numbers as numeric, exactly; the type test keeps other types out.
            return (
                f"(jsonb_typeof({target}) = 'number' AND {target} {operator} %s::jsonb)",
                [*params, *params, json.dumps(value)],
            )
        return (
            f"(jsonb_typeof({target}) = 'string' AND "
            f'({target} #>> \'{{}}\') COLLATE "C" {operator} %s COLLATE "C")',
            [*params, *params, value],
        )

    def exists(self, path: Path, present: bool) -> SQL:
        target, params = self.value(path)
        return f"{target} IS {'NOT ' if present else ''}NULL", params

    def contains(self, path: Path, value: Any) -> SQL:
        target, params = self.value(path)
        if json_type(value) in ("object", "array"):
            # Containment would accept part of an object or array: compare elements whole.
            return (
                f"(CASE WHEN jsonb_typeof({target}) = 'array' THEN EXISTS (SELECT 1 FROM "
                f"jsonb_array_elements({target}) AS x WHERE x = %s::jsonb) ELSE false END)",
                [*params, *params, json.dumps(value)],
            )
        return (
            f"({self.column} @> %s::jsonb AND jsonb_typeof({target}) = 'array')",
            [json.dumps(_nest(path, [value])), *params],
        )

    def starts_with(self, path: Path, prefix: str) -> SQL:
        target, params = self.value(path)
        return (
            f"(jsonb_typeof({target}) = 'string' AND left({target} #>> '{{}}', %s) = %s)",
            [*params, *params, len(prefix), prefix],
        )

    def sort_keys(self, path: Path) -> tuple[SQL, list[SQL]]:
        target, params = self.value(path)
        kind = f"jsonb_typeof({target})"
        missing = (f"{target} IS NULL", params)
        rank = (
            f"CASE {kind} WHEN 'number' THEN 0 WHEN 'string' THEN 1 WHEN 'boolean' THEN 2 "
            "WHEN 'null' THEN 3 ELSE 4 END",
            params,
        )
        number = (f"CASE WHEN {kind} = 'number' THEN ({target})::numeric END", params * 2)
        text = (
            f"(CASE WHEN {kind} = 'string' THEN ({target} #>> '{{}}') END) COLLATE \"C\"",
            params * 2,
        )
        boolean = (f"CASE WHEN {kind} = 'boolean' THEN ({target})::boolean END", params * 2)
        return missing, [rank, number, text, boolean]

    def text_order(self, column: str) -> str:
        return f'{column} COLLATE "C"'

    def has_words(self, column: str, words: Sequence[str]) -> SQL:
        # The very expression of the GIN index of migration 0004.
        return f"string_to_array({column}, ' ') @> %s::text[]", [list(words)]


def _nest(path: Path, value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


DIALECTS = {"sqlite": SQLiteDialect, "postgresql": PostgreSQLDialect}

#: FTS5's tokenizer for a words column: every character but the space is part of a token,
#: so each stored word is one token, and a query word the same token. Its case folding
#: (no diacritics removed) can only merge words, never split one, and long tokens are cut
#: the same way on both sides: a match is a superset of the exact answer, never less.
WORD_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* M* N* P* S* Z* C*' separators ' '"


@dataclass(frozen=True)
class WordIndex:
    """An SQLite FTS5 table indexing the words column of ``content`` (external content:
    it stores no copy of the words), kept in step by triggers, so that no writer needs to
    know it exists. It records which rows hold a token, not where (``detail=none``, no
    column sizes): a query word is one token, never a phrase, so that is all a match
    needs, and it keeps the index small.

    FTS5 writes what it holds in memory at the end of every statement that changed it
    through a trigger, so a trigger per inserted row makes a batch inserted row by row
    (``executemany``) write the index once per row, several times the cost of the row.
    With ``catch_up_every`` (a number of rows) inserted rows are not indexed one by one:
    the index holds the rows up to the rowid in its ``mark`` table, and the insert that
    leaves that many rows after it indexes them all in one statement; :meth:`candidates`
    counts the rows after the mark (fewer than ``catch_up_every``) as candidates. The
    work stays inside the inserting statement, after it holds the write lock (a trigger
    on a transaction's first statement would read the index before the lock is taken,
    and a deferred transaction could then not wait for the lock). Deleting or rewriting
    an indexed row's words updates the index in its own trigger.
    """

    table: str
    content: str
    content_rowid: str = "rowid"
    words: str = "words"
    catch_up_every: int | None = None

    @property
    def mark(self) -> str:
        return f"{self.table}_mark"

    def statements(self) -> list[str]:
        """Create the index and its triggers (each statement idempotent)."""
        t, c, rowid, words = self.table, self.content, self.content_rowid, self.words
        into, new_row = f"INSERT INTO {t}(rowid, {words})", f"new.{rowid}, new.{words}"
        into_deleted, old_row = f"INSERT INTO {t}({t}, rowid, {words})", f"old.{rowid}, old.{words}"
        insert, delete = (
            f"{into} VALUES ({new_row})",
            f"{into_deleted} VALUES ('delete', {old_row})",
        )
        create = (
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {t} USING fts5({words}, content='{c}', "
            f"content_rowid='{rowid}', tokenize=\"{WORD_TOKENIZER}\", detail=none, "
            "columnsize=0)"
        )
        if self.catch_up_every is None:
            return [
                create,
                f"CREATE TRIGGER IF NOT EXISTS {t}_insert AFTER INSERT ON {c} BEGIN {insert}; END",
                f"CREATE TRIGGER IF NOT EXISTS {t}_delete AFTER DELETE ON {c} BEGIN {delete}; END",
                f"CREATE TRIGGER IF NOT EXISTS {t}_update AFTER UPDATE OF {words} ON {c} "
                f"BEGIN {delete}; {insert}; END",
            ]
        upto = f"(SELECT upto FROM {self.mark})"
        delete_indexed = f"{into_deleted} SELECT 'delete', {old_row}"
        insert_indexed = f"{into} SELECT {new_row}"
        statements = [
            create,
            f"CREATE TABLE IF NOT EXISTS {self.mark} "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), upto INTEGER NOT NULL)",
            f"INSERT OR IGNORE INTO {self.mark} VALUES (1, 0)",
            # An emptied table starts again from rowid 1 if its sequence is reset (flush).
            f"CREATE TRIGGER IF NOT EXISTS {t}_delete AFTER DELETE ON {c} BEGIN "
            f"{delete_indexed} WHERE old.{rowid} <= {upto}; "
            f"UPDATE {self.mark} SET upto = 0 WHERE NOT EXISTS (SELECT 1 FROM {c}); END",
            f"CREATE TRIGGER IF NOT EXISTS {t}_update AFTER UPDATE OF {words} ON {c} BEGIN "
            f"{delete_indexed} WHERE old.{rowid} <= {upto}; "
            f"{insert_indexed} WHERE new.{rowid} <= {upto}; END",
        ]
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS {t}_catch_up AFTER INSERT ON {c} "
            f"WHEN new.{rowid} - {upto} >= {self.catch_up_every} BEGIN "
            f"INSERT INTO {t}(rowid, {words}) SELECT {rowid}, {words} FROM {c} "
            f"WHERE {rowid} > {upto} AND {rowid} <= new.{rowid}; "
            f"UPDATE {self.mark} SET upto = new.{rowid}; END"
        )
        return statements

    def triggers(self) -> list[str]:
        """The names of the triggers that keep the index in step with its content."""
        if self.catch_up_every is None:
            actions = ["insert", "delete", "update"]
        else:
            actions = ["delete", "update", "catch_up"]
        return [f"{self.table}_{action}" for action in actions]

    def rebuild(self) -> list[str]:
        """Re-read every row of the content table into the index."""
        statements = [f"INSERT INTO {self.table}({self.table}) VALUES ('rebuild')"]
        if self.catch_up_every is not None:
            c, rowid = self.content, self.content_rowid
            statements.append(
                f"UPDATE {self.mark} SET upto = (SELECT coalesce(max({rowid}), 0) FROM {c})"
            )
        return statements

    def candidates(self, row_id: str) -> str:
        """The condition (one parameter: the FTS5 query) of the rows that may match."""
        found = f"SELECT rowid FROM {self.table} WHERE {self.table} MATCH %s"
        if self.catch_up_every is not None:
            # One list of row ids, not an OR, which SQLite would answer by a scan.
            rowid = self.content_rowid
            found += (
                f" UNION ALL SELECT {rowid} FROM {self.content} "
                f"WHERE {rowid} > (SELECT upto FROM {self.mark})"
            )
        return f"{row_id} IN ({found})"


@dataclass(frozen=True)
class Table:
    """Where a backend keeps the latest version of each event, as SQL the compiler uses.

    ``columns`` names the SQL of ``schema``, ``producer``, ``createdAt``, ``id`` and
    ``version`` (the sort fields of SPEC §3, :data:`trove.query.SORT_FIELDS`); ``links``
    is the link table with its ``source``, ``source_version``, ``type``, ``target`` and
    ``target_version`` columns; ``instant`` and ``uuid`` turn query values into what the
    columns store.
    """

    columns: dict[str, str]
    #: The column of each event's payload words (:func:`trove.query.payload_words`).
    words: str
    links: str
    link_columns: dict[str, str]
    instant: Callable[[datetime], Any]
    uuid: Callable[[UUID], Any]
    #: The full-text index of ``words``, where there is one (SQLite), and the SQL of the
    #: indexed table's rowid.
    word_index: WordIndex | None = None
    row_id: str = "rowid"


class Compiler:
    """The WHERE and ORDER BY of an :class:`~trove.query.EventQuery` for one table."""

    def __init__(self, dialect: Dialect, table: Table) -> None:
        self.dialect = dialect
        self.table = table

    def where(self, query: EventQuery) -> SQL:
        """Every filter of ``query`` as one condition (``1 = 1`` for none)."""
        columns, conditions = self.table.columns, []
        for name, values in (("schema", query.schemas), ("producer", query.producers)):
            if values:
                marks = ", ".join(["%s"] * len(values))
                conditions.append((f"{columns[name]} IN ({marks})", list(values)))
        if query.start is not None:
            conditions.append((f"{columns['createdAt']} >= %s", [self.table.instant(query.start)]))
        if query.end is not None:
            conditions.append((f"{columns['createdAt']} <= %s", [self.table.instant(query.end)]))
        conditions.extend(self._links(query))
        conditions.extend(self.dialect.predicate(predicate) for predicate in query.where)
        if query.words:
            if self.table.word_index is not None:
                # The index narrows to candidates; the exact test then holds Trove's rules.
                conditions.append(
                    self.dialect.word_candidates(
                        self.table.word_index, self.table.row_id, query.words
                    )
                )
            conditions.append(self.dialect.has_words(self.table.words, query.words))
        return all_of(conditions)

    def _links(self, query: EventQuery) -> list[SQL]:
        """A condition per ``links`` entry. One naming a target is a row-value ``IN`` over
        the links to that target, uncorrelated: the database starts from the few versions
        linking to it (the link table's target index, then the event table's (id,
        version) key) instead of testing each event. One without a target tests each
        event's own links (``EXISTS``), as a type alone may match most of them."""
        links, c = self.table.links, self.table.link_columns
        columns = self.table.columns
        conditions: list[SQL] = []
        for wanted in query.links:
            tests: list[str] = []
            params: list[Any] = []
            if wanted.type is not None:
                tests.append(f"{c['type']} = %s")
                params.append(wanted.type)
            if wanted.target is not None:
                tests.append(f"{c['target']} = %s")
                params.append(self.table.uuid(wanted.target.id))
                if wanted.target.version is not None:
                    tests.append(f"{c['target_version']} = %s")
                    params.append(wanted.target.version)
                conditions.append(
                    (
                        f"({columns['id']}, {columns['version']}) IN (SELECT {c['source']}, "
                        f"{c['source_version']} FROM {links} WHERE {' AND '.join(tests)})",
                        params,
                    )
                )
                continue
            own = (
                f"{c['source']} = {columns['id']} AND {c['source_version']} = {columns['version']}"
            )
            conditions.append(
                (f"EXISTS (SELECT 1 FROM {links} WHERE {' AND '.join([own, *tests])})", params)
            )
        return conditions

    def order_by(self, query: EventQuery) -> list[tuple[str, list[Any], bool]]:
        """``(sql, params, descending)`` per term: the sort keys, then the tie-breakers."""
        terms: list[tuple[str, list[Any], bool]] = []
        columns = self.table.columns
        for key in query.sort:
            path = key.payload_path
            if path is None:
                column = columns[key.field]
                if key.field in ("producer", "schema"):
                    column = self.dialect.text_order(column)
                terms.append((column, [], key.descending))
                continue
            (missing, missing_params), values = self.dialect.sort_keys(path)
            terms.append((missing, missing_params, False))
            terms.extend((sql, params, key.descending) for sql, params in values)
        # Tie-breakers a sort key already gives are left out: the database need not
        # order by a column twice (a second sort step where an index gave the first).
        fields = {key.field for key in query.sort if key.payload_path is None}
        if "id" not in fields:
            if "createdAt" not in fields:
                terms.append((columns["createdAt"], [], False))
            terms.append((columns["id"], [], False))
        return terms


def distinct_values(table: str, column: str, latest: str, limit: int) -> SQL:
    """Up to ``limit`` distinct values of ``column`` by a loose index scan: one index probe
    per value (each the next after the last), not a scan of the table."""
    return (
        f"WITH RECURSIVE distinct_values(value, n) AS ("
        f" SELECT * FROM (SELECT {column}, 1 FROM {table} WHERE {latest}"
        f" ORDER BY {column} LIMIT 1) AS first_value"
        f" UNION ALL SELECT (SELECT {column} FROM {table} WHERE {latest}"
        f" AND {column} > distinct_values.value ORDER BY {column} LIMIT 1), n + 1"
        f" FROM distinct_values WHERE distinct_values.value IS NOT NULL AND n < %s)"
        f" SELECT value FROM distinct_values WHERE value IS NOT NULL",
        [limit],
    )
