"""The schema registry: registered JSON Schemas and their validators, per process.

The rules a schema must follow and the validation itself are in :mod:`trove.validation`,
which knows nothing of Django; this module feeds it the registered documents. Schemas
live in the ``EventSchema`` table of the default database whatever the event storage is,
so that staff can edit them in the admin. Each process keeps the versions of each schema
id with their compiled validators, and checks them on every event with one cheap
aggregate query (:func:`_stamp`): a schema edited or a version registered in any process
takes effect on the next event everywhere, without reloading rows or recompiling.
Validation collects every violation, never only the first, and never rewrites the payload.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError

from trove import signals, validation
from trove.conf import trove_settings
from trove.documents import SchemaRef
from trove.exceptions import InvalidSchema, SchemaNotFound, SchemaValidationError, VersionConflict
from trove.models import EventSchema, version_key

INLINE_ID = re.compile(r"^(?P<name>.+)\+v(?P<version>\d+(?:\.\d+)*)$")


def split_inline_id(schema_id: str) -> tuple[str, str]:
    """Read the original Trove's ``name+vX.Y.Z`` ``$id`` as (name, version); else (id, "1")."""
    match = INLINE_ID.match(schema_id)
    if match:
        return match["name"], match["version"]
    return schema_id, "1"


def check_json_schema(
    schema: Any, schema_id: str = "", version: str = ""
) -> validation.CheckedSchema:
    """Raise :class:`InvalidSchema` listing every problem if ``schema`` cannot be registered
    as (``schema_id``, ``version``); see :func:`trove.validation.check_schema` for the rules.
    """
    return EventSchema(schema_id=schema_id, version=version, schema=schema).check_schema()


class CompiledSchema(validation.PayloadValidator):
    """A registered schema version with its validators, compiled once per process.

    The schema is checked again as it is compiled (a row written before the rules or
    straight into the table may break them), so that validation never looks anything up.
    """

    def __init__(self, schema_id: str, version: str, schema: Any) -> None:
        self.ref = SchemaRef(schema_id, version)
        super().__init__(check_json_schema(schema, schema_id, version))


class _Versions:
    """The registered versions of one schema id as of ``stamp``; compiled when first used."""

    def __init__(self, stamp: tuple, rows: list[tuple[str, Any]]) -> None:
        self.stamp = stamp
        self.documents = dict(rows)
        self.latest = max(self.documents, key=version_key, default=None)
        self.compiled: dict[str, CompiledSchema] = {}

    def get(self, schema_id: str, version: str | None) -> CompiledSchema | None:
        version = self.latest if version is None else version
        if version not in self.documents:
            return None
        if version not in self.compiled:
            self.compiled[version] = CompiledSchema(schema_id, version, self.documents[version])
        return self.compiled[version]


#: (registry database alias, schema id) → its versions, as last loaded from that database.
_registry: dict[tuple[str, str], _Versions] = {}
_stamp_sql: dict[str, str] = {}


def _stamp(schema_id: str, alias: str) -> tuple:
    """What changes whenever a version of ``schema_id`` is added, edited or removed.

    One indexed aggregate query, far cheaper than loading the rows: the rows (and the
    compiled validators) are reloaded only when it differs from the cached one, so every
    process sees a registration or an edit made anywhere on its next event. It runs on
    the DB-API cursor under Django's connection (its error translation and broken
    transaction check kept): every write pays for it, and Django's cursor wrappers cost
    more than the query itself.
    """
    from django.db import connections

    connection = connections[alias]
    if alias not in _stamp_sql:
        meta, quote = EventSchema._meta, connection.ops.quote_name
        sql = "SELECT COUNT(*), MAX({}), MAX({}) FROM {} WHERE {} = %s".format(
            quote(meta.get_field("id").column),
            quote(meta.get_field("updated_at").column),
            quote(meta.db_table),
            quote(meta.get_field("schema_id").column),
        )
        _stamp_sql[alias] = sql.replace("%s", "?") if connection.vendor == "sqlite" else sql
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            cursor.execute(_stamp_sql[alias], (schema_id,))
            return tuple(cursor.fetchone())
        finally:
            cursor.close()


def compiled_schema(ref: SchemaRef, alias: str | None = None) -> CompiledSchema | None:
    """The registered schema ``ref`` names (its latest version if none), or ``None``;
    ``alias``: the registry's database (:func:`registry_alias`) if the caller has it."""
    alias = registry_alias() if alias is None else alias
    stamp = _stamp(ref.id, alias)
    key = (alias, ref.id)
    versions = _registry.get(key)
    if versions is None or versions.stamp != stamp:
        rows = EventSchema.objects.filter(schema_id=ref.id).values_list("version", "schema")
        versions = _Versions(stamp, list(rows))
        _registry[key] = versions
    return versions.get(ref.id, ref.version)


def registry_alias() -> str:
    """The database alias the registry is read from."""
    from django.db import router

    return router.db_for_read(EventSchema)


def cached_schema(ref: SchemaRef, alias: str) -> tuple[tuple, CompiledSchema | None] | None:
    """The schema ``ref`` names as this process last loaded it from the registry on
    ``alias``, with the stamp it was loaded at; ``None`` if it never was. Validating
    against it is sound only where the write itself checks that the registry still has
    that stamp (see ``ORMEventStorage.save_new_event_at_stamp``)."""
    versions = _registry.get((alias, ref.id))
    if versions is None:
        return None
    return versions.stamp, versions.get(ref.id, ref.version)


def get_schema(schema_id: str, version: str | None = None):
    """The ``EventSchema`` row for (id, version), or its latest version; ``None`` if absent."""
    rows = EventSchema.objects.filter(schema_id=schema_id)
    if version is not None:
        return rows.filter(version=version).first()
    candidates = list(rows)
    return max(candidates, key=lambda row: version_key(row.version), default=None)


def list_schemas():
    return EventSchema.objects.order_by("schema_id", "created_at")


def register_schema(schema_id: str, version: str, schema: dict[str, Any], *, description: str = ""):
    """Register a JSON Schema under (id, version), firing ``schema:registering``/``registered``.

    Registering the same document again is a no-op; a different document under an existing
    (id, version) is a :class:`VersionConflict`, because events already validated against it.
    """
    problems = []
    if not isinstance(schema_id, str) or not schema_id.strip():
        problems.append({"field": "id", "message": "A schema id must be a non-empty string."})
    if not isinstance(version, str) or not version.strip():
        problems.append(
            {"field": "version", "message": "A schema version must be a non-empty string."}
        )
    if problems:
        raise InvalidSchema("; ".join(p["message"] for p in problems), problems=problems)
    check_json_schema(schema, schema_id, version)
    signals.schema_registering.send(
        sender=EventSchema, schema_id=schema_id, version=version, schema=schema
    )
    existing = EventSchema.objects.filter(schema_id=schema_id, version=version).first()
    if existing is not None:
        if existing.schema != schema:
            raise VersionConflict(
                f"Schema {schema_id} version {version} is already registered with another document."
            )
        return existing
    try:
        row = EventSchema.objects.create(
            schema_id=schema_id, version=version, schema=schema, description=description
        )
    except IntegrityError as error:
        raise VersionConflict(
            f"Schema {schema_id} version {version} was registered concurrently."
        ) from error
    signals.schema_registered.send(sender=EventSchema, schema=row)
    return row


def validate_payload(ref: SchemaRef, payload: Any) -> SchemaRef:
    """Validate ``payload`` against the schema ``ref`` names; return the resolved reference.

    An id without a version resolves to the latest registered version. An unregistered
    schema is accepted as it is, unless the ``strict_schemas`` setting is on.
    """
    return check_payload(ref, compiled_schema(ref), payload)


def check_payload(ref: SchemaRef, schema: CompiledSchema | None, payload: Any) -> SchemaRef:
    """:func:`validate_payload` with the schema already looked up (once for many payloads)."""
    if schema is None:
        if trove_settings.strict_schemas:
            wanted = ref.id if ref.version is None else f"{ref.id} version {ref.version}"
            raise SchemaNotFound(
                f"Schema {wanted} is not registered and strict_schemas is on.",
                problems=[{"field": "schema", "message": f"Schema {wanted} is not registered."}],
            )
        return ref
    problems = schema.problems(payload)
    if problems:
        raise SchemaValidationError(
            f"Payload does not follow schema {schema.ref.id} version {schema.ref.version}: "
            + "; ".join(f"{p['field']}: {p['message']}" for p in problems),
            problems=problems,
        )
    return schema.ref
