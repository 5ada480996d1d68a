"""The schema registry and JSON Schema validation.

Schemas live in the ``EventSchema`` table of the default database whatever the event
storage is, so that staff can edit them in the admin. Each process keeps the versions of
each schema id with their compiled validators, and checks them on every event with one
cheap aggregate query (:func:`_stamp`): a schema edited or a version registered in any
process takes effect on the next event everywhere, without reloading rows or recompiling.
Validation collects every violation, never only the first, and never rewrites the payload.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError

from trove.conf import trove_settings
from trove.documents import SchemaRef
from trove.exceptions import InvalidSchema, SchemaNotFound, SchemaValidationError, VersionConflict

INLINE_ID = re.compile(r"^(?P<name>.+)\+v(?P<version>\d+(?:\.\d+)*)$")


def version_key(version: str) -> tuple:
    """Order versions the way people read them: ``1.10`` after ``1.9``, ``2`` after ``1.10``."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"[.\-+]", version)
    )


def split_inline_id(schema_id: str) -> tuple[str, str]:
    """Read the original Trove's ``name+vX.Y.Z`` ``$id`` as (name, version); else (id, "1")."""
    match = INLINE_ID.match(schema_id)
    if match:
        return match["name"], match["version"]
    return schema_id, "1"


def _validator_class(schema: Any):
    import jsonschema

    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)


def check_json_schema(schema: Any) -> None:
    """Raise :class:`InvalidSchema` listing every problem if ``schema`` is not a JSON Schema."""
    if not isinstance(schema, dict | bool):
        raise InvalidSchema(
            "A JSON Schema must be an object.",
            problems=[{"field": "schema", "message": "A JSON Schema must be an object."}],
        )
    cls = _validator_class(schema)
    meta = cls(cls.META_SCHEMA)
    problems = [
        {"field": "schema" + _pointer(error.absolute_path), "message": error.message}
        for error in sorted(meta.iter_errors(schema), key=lambda e: list(map(str, e.path)))
    ]
    if problems:
        raise InvalidSchema(
            "Invalid JSON Schema: " + "; ".join(p["message"] for p in problems), problems=problems
        )


def _pointer(path) -> str:
    """A dotted suffix naming where in the document a problem is: ``.author.name``."""
    return "".join(f".{part}" for part in path)


def _fast_validator(schema: Any):
    """A ``jsonschema-rs`` validator for ``schema``, or ``None`` where it cannot serve.

    It is optional (the Python ``jsonschema`` answers alone without it) and used only to
    answer "valid?" about a thousand times faster; it never fetches a remote ``$ref``.
    """
    try:
        import jsonschema_rs
    except ImportError:
        return None

    def refuse(uri: str) -> Any:
        raise ValueError(f"remote reference {uri} is not fetched")

    try:
        return jsonschema_rs.validator_for(schema, validate_formats=True, retriever=refuse)
    except (ValueError, TypeError, jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError):
        return None


class CompiledSchema:
    """A registered schema version with its validators, compiled once per process.

    A payload that ``jsonschema-rs`` accepts is valid. Any other payload goes to the Python
    ``jsonschema``, which lists every violation; where it finds none (the two disagree on
    a regular expression or format edge) the payload is accepted, as it always was.
    """

    def __init__(self, schema_id: str, version: str, schema: Any) -> None:
        import jsonschema

        self.ref = SchemaRef(schema_id, version)
        cls = _validator_class(schema)
        self.validator = cls(
            schema, format_checker=cls.FORMAT_CHECKER or jsonschema.FormatChecker()
        )
        self.fast = _fast_validator(schema)

    def problems(self, payload: Any) -> list[dict[str, Any]]:
        """Every violation of ``payload``, as ``{field, message, validator}``; empty if valid."""
        if self.fast is not None:
            try:
                if self.fast.is_valid(payload):
                    return []
            except (ValueError, TypeError, OverflowError):
                pass  # a value jsonschema-rs cannot read: the Python validator decides
        errors = sorted(
            self.validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path]
        )
        return [
            {
                "field": "payload" + _pointer(error.absolute_path),
                "message": error.message,
                "validator": str(error.validator),
            }
            for error in errors
        ]


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


_registry: dict[str, _Versions] = {}
_stamp_sql: dict[str, str] = {}


def _stamp(schema_id: str) -> tuple:
    """What changes whenever a version of ``schema_id`` is added, edited or removed.

    One indexed aggregate query, far cheaper than loading the rows: the rows (and the
    compiled validators) are reloaded only when it differs from the cached one, so every
    process sees a registration or an edit made anywhere on its next event.
    """
    from django.db import connections, router

    from trove.models import EventSchema

    alias = router.db_for_read(EventSchema)
    connection = connections[alias]
    if alias not in _stamp_sql:
        meta, quote = EventSchema._meta, connection.ops.quote_name
        _stamp_sql[alias] = "SELECT COUNT(*), MAX({}), MAX({}) FROM {} WHERE {} = %s".format(
            quote(meta.get_field("id").column),
            quote(meta.get_field("updated_at").column),
            quote(meta.db_table),
            quote(meta.get_field("schema_id").column),
        )
    with connection.cursor() as cursor:
        cursor.execute(_stamp_sql[alias], [schema_id])
        return tuple(cursor.fetchone())


def compiled_schema(ref: SchemaRef) -> CompiledSchema | None:
    """The registered schema ``ref`` names (its latest version if none), or ``None``."""
    from trove.models import EventSchema

    stamp = _stamp(ref.id)
    versions = _registry.get(ref.id)
    if versions is None or versions.stamp != stamp:
        rows = EventSchema.objects.filter(schema_id=ref.id).values_list("version", "schema")
        versions = _Versions(stamp, list(rows))
        _registry[ref.id] = versions
    return versions.get(ref.id, ref.version)


def get_schema(schema_id: str, version: str | None = None):
    """The ``EventSchema`` row for (id, version), or its latest version; ``None`` if absent."""
    from trove.models import EventSchema

    rows = EventSchema.objects.filter(schema_id=schema_id)
    if version is not None:
        return rows.filter(version=version).first()
    candidates = list(rows)
    return max(candidates, key=lambda row: version_key(row.version), default=None)


def list_schemas():
    from trove.models import EventSchema

    return EventSchema.objects.order_by("schema_id", "created_at")


def register_schema(schema_id: str, version: str, schema: dict[str, Any], *, description: str = ""):
    """Register a JSON Schema under (id, version), firing ``schema:registering``/``registered``.

    Registering the same document again is a no-op; a different document under an existing
    (id, version) is a :class:`VersionConflict`, because events already validated against it.
    """
    from trove import signals
    from trove.models import EventSchema

    problems = []
    if not isinstance(schema_id, str) or not schema_id.strip():
        problems.append({"field": "id", "message": "A schema id must be a non-empty string."})
    if not isinstance(version, str) or not version.strip():
        problems.append(
            {"field": "version", "message": "A schema version must be a non-empty string."}
        )
    if problems:
        raise InvalidSchema("; ".join(p["message"] for p in problems), problems=problems)
    check_json_schema(schema)
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
