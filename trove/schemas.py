"""The schema registry and JSON Schema validation.

Schemas live in the ``EventSchema`` table of the default database whatever the event
storage is, so that staff can edit them in the admin. A validator is compiled once per
(id, version, last change) and reused; looking up the row on each event keeps every
process in agreement when a schema is edited or a new version is registered elsewhere.
Validation collects every violation, never only the first, and never rewrites the payload.
"""

from __future__ import annotations

import re
from functools import lru_cache
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


@lru_cache(maxsize=512)
def _compiled(schema_id: str, version: str, stamp: str, schema_json: str):
    """A compiled validator; the key includes the row's last change so edits take effect."""
    import json

    import jsonschema

    schema = json.loads(schema_json)
    cls = _validator_class(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER or jsonschema.FormatChecker())


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
    import json

    row = get_schema(ref.id, ref.version)
    if row is None:
        if trove_settings.strict_schemas:
            wanted = ref.id if ref.version is None else f"{ref.id} version {ref.version}"
            raise SchemaNotFound(
                f"Schema {wanted} is not registered and strict_schemas is on.",
                problems=[{"field": "schema", "message": f"Schema {wanted} is not registered."}],
            )
        return ref
    validator = _compiled(
        row.schema_id, row.version, row.updated_at.isoformat(), json.dumps(row.schema)
    )
    errors = sorted(validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        problems = [
            {
                "field": "payload" + _pointer(error.absolute_path),
                "message": error.message,
                "validator": str(error.validator),
            }
            for error in errors
        ]
        raise SchemaValidationError(
            f"Payload does not follow schema {row.schema_id} version {row.version}: "
            + "; ".join(f"{p['field']}: {p['message']}" for p in problems),
            problems=problems,
        )
    return SchemaRef(row.schema_id, row.version)
