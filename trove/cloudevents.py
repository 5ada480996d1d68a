"""CloudEvents 1.0 in and out (SPEC §10): the JSON event format and its mapping to Trove.

Export writes every version as a CloudEvent that round-trips: the ``trove*`` extension
attributes carry what CloudEvents has no attribute for (id and version, position,
metadata, links and files), so ``trove_import`` rebuilds the exact document. A CloudEvent
from elsewhere (no ``troveid``) becomes version 1 of the event
``uuid5(NAMESPACE_URL, source + "\\n" + id)``: CloudEvents promises that ``source`` and
``id`` identify an occurrence, so a redelivered one maps to the same event and is
harmless. Its attributes with no Trove field (``time``, ``subject``, unknown extensions)
are kept in ``metadata["cloudevents"]``, with its ``id``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from trove.documents import (
    Event,
    EventId,
    FileRecord,
    Link,
    SchemaRef,
    format_instant,
    parse_instant,
)
from trove.exceptions import InvalidEvent

__all__ = ["Incoming", "from_cloudevent", "is_cloudevent", "schema_urn", "to_cloudevent"]

SPEC_VERSION = "1.0"
URN_PREFIX = "urn:trove:schema:"
#: Attributes that map onto Trove fields; every other one goes to ``metadata["cloudevents"]``.
MAPPED = frozenset(
    {
        "specversion",
        "id",
        "source",
        "type",
        "dataschema",
        "datacontenttype",
        "data",
        "data_base64",
        "troveid",
        "troveversion",
        "troveposition",
        "trovemetadata",
        "trovelinks",
        "trovefiles",
    }
)
_URN_SAFE = "!$&'()*+,;=.-_~@/"


def schema_urn(schema: SchemaRef) -> str | None:
    """``urn:trove:schema:<id>:<version>`` (each part percent-encoded), if it has a version."""
    if schema.version is None:
        return None
    return f"{URN_PREFIX}{quote(schema.id, safe=_URN_SAFE)}:{quote(schema.version, safe=_URN_SAFE)}"


def _schema_of(type_: str, dataschema: Any) -> SchemaRef:
    """The schema a CloudEvent names: ``type``, pinned by a ``urn:trove:schema:`` dataschema."""
    if isinstance(dataschema, str) and dataschema.startswith(URN_PREFIX):
        schema_id, sep, version = dataschema[len(URN_PREFIX) :].rpartition(":")
        if not sep or not schema_id or not version:
            raise InvalidEvent(
                f"dataschema {dataschema!r} is not urn:trove:schema:<id>:<version>.",
                problems=[{"field": "dataschema", "message": "malformed urn:trove:schema:"}],
            )
        if unquote(schema_id) != type_:
            raise InvalidEvent(
                f"dataschema names schema {unquote(schema_id)!r}, but type is {type_!r}.",
                problems=[{"field": "dataschema", "message": "names another schema than type"}],
            )
        return SchemaRef(type_, unquote(version))
    return SchemaRef(type_)


def to_cloudevent(event: Event) -> dict[str, Any]:
    """A stored version as a structured-mode CloudEvent (JSON event format)."""
    cloudevent: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": f"{event.uuid}:{event.version}",
        "source": event.producer,
        "type": event.schema.id,
    }
    urn = schema_urn(event.schema)
    if urn is not None:
        cloudevent["dataschema"] = urn
    cloudevent["time"] = format_instant(event.created_at)
    cloudevent["datacontenttype"] = "application/json"
    cloudevent["troveid"] = str(event.uuid)
    cloudevent["troveversion"] = event.version
    if event.position is not None:
        cloudevent["troveposition"] = event.position
    if event.metadata:
        cloudevent["trovemetadata"] = _json_text(event.metadata)
    if event.links:
        cloudevent["trovelinks"] = _json_text([link.to_dict() for link in event.links])
    if event.files:
        cloudevent["trovefiles"] = _json_text([record.to_dict() for record in event.files])
    cloudevent["data"] = event.payload
    return cloudevent


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def is_cloudevent(data: Any) -> bool:
    """Whether a parsed JSON value looks like a CloudEvent rather than a Trove document."""
    return isinstance(data, dict) and "specversion" in data


@dataclass(frozen=True)
class Incoming:
    """A CloudEvent read for storing: the version it stands for, and whether it carries
    a Trove identity (``troveid``) or was derived from its ``source`` and ``id``."""

    event: Event
    from_trove: bool


def _text(cloudevent: dict[str, Any], name: str, problems: list[dict[str, str]]) -> str:
    value = cloudevent.get(name)
    if not isinstance(value, str) or not value:
        problems.append({"field": name, "message": f"{name} must be a non-empty string."})
        return ""
    return value


def _extension_json(cloudevent: dict[str, Any], name: str, kind: type) -> Any:
    value = cloudevent.get(name)
    if value is None:
        return kind()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise InvalidEvent(
                f"{name} is not JSON text: {error}.",
                problems=[{"field": name, "message": "not JSON text"}],
            ) from error
    if not isinstance(value, kind):
        raise InvalidEvent(
            f"{name} must hold a JSON {kind.__name__}.",
            problems=[{"field": name, "message": f"must hold a JSON {kind.__name__}"}],
        )
    return value


def _integer(value: Any, name: str) -> int | None:
    """An integer attribute, which binary mode sends as header text."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidEvent(
            f"{name} must be a positive integer, not {value!r}.",
            problems=[{"field": name, "message": "must be a positive integer"}],
        )
    return value


def derived_id(source: str, cloudevent_id: str) -> uuid.UUID:
    """The event id of a CloudEvent without ``troveid``: the same for a redelivery."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{source}\n{cloudevent_id}")


def from_cloudevent(cloudevent: Any, *, now: datetime) -> Incoming:
    """Read a CloudEvent (structured form, a dict) as a version to store, or raise
    ``InvalidEvent`` listing what is wrong. ``now`` stamps one without ``time``."""
    if not isinstance(cloudevent, dict):
        raise InvalidEvent("A CloudEvent must be a JSON object.")
    problems: list[dict[str, str]] = []
    if cloudevent.get("specversion") != SPEC_VERSION:
        problems.append({"field": "specversion", "message": 'specversion must be "1.0".'})
    cloudevent_id = _text(cloudevent, "id", problems)
    source = _text(cloudevent, "source", problems)
    type_ = _text(cloudevent, "type", problems)
    content_type = cloudevent.get("datacontenttype", "application/json")
    media = content_type.split(";")[0].strip().lower() if isinstance(content_type, str) else ""
    if media != "application/json" and not media.endswith("+json"):
        problems.append(
            {"field": "datacontenttype", "message": "data must be JSON (application/json)."}
        )
    if "data_base64" in cloudevent or not isinstance(cloudevent.get("data"), dict):
        problems.append({"field": "data", "message": "data must be a JSON object (the payload)."})
    if problems:
        raise InvalidEvent(
            "Invalid CloudEvent: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems),
            problems=problems,
        )
    schema = _schema_of(type_, cloudevent.get("dataschema"))
    try:
        created_at = parse_instant(cloudevent["time"]) if "time" in cloudevent else now
    except ValueError as error:
        raise InvalidEvent(
            f"time {cloudevent['time']!r} is not an RFC 3339 instant.",
            problems=[{"field": "time", "message": "not an RFC 3339 instant"}],
        ) from error
    troveid = cloudevent.get("troveid")
    if troveid is not None:
        version = _integer(cloudevent.get("troveversion"), "troveversion") or 1
        event_id = EventId.coerce({"id": troveid, "version": version})
        metadata = _extension_json(cloudevent, "trovemetadata", dict)
    else:
        event_id = EventId(derived_id(source, cloudevent_id), 1)
        extra = {k: v for k, v in cloudevent.items() if k not in MAPPED}
        metadata = {"cloudevents": {"id": cloudevent_id, **extra}}
    try:
        links = tuple(Link.from_dict(x) for x in _extension_json(cloudevent, "trovelinks", list))
        files = tuple(
            FileRecord.from_dict(x) for x in _extension_json(cloudevent, "trovefiles", list)
        )
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidEvent(f"trovefiles holds a malformed file record ({error}).") from error
    event = Event(
        id=event_id,
        created_at=created_at,
        schema=schema,
        payload=cloudevent["data"],
        producer=source,
        files=files,
        links=links,
        metadata=metadata,
    )
    return Incoming(event, from_trove=troveid is not None)
