"""The event document: frozen dataclasses and their canonical camelCase JSON shape.

One shape is used everywhere (REST API, JSON-directory files, export/import), so the
conversion lives here and nowhere else. ``to_dict`` produces exactly the document of
SPEC §1; ``from_dict`` accepts it back, validating ids on the way in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trove.exceptions import InvalidEvent

__all__ = [
    "Event",
    "EventId",
    "FileRecord",
    "Link",
    "SchemaRef",
    "format_instant",
    "parse_event_uuid",
    "parse_instant",
    "parse_position",
]


def parse_event_uuid(value: Any) -> uuid.UUID:
    """Return ``value`` as a UUID or raise :class:`InvalidEvent`; ids are never free text."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidEvent(f"Event id {value!r} is not a UUID.")


def parse_position(value: Any) -> int | None:
    """A stored document's position: a positive integer, or ``None`` when it has none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidEvent(f"Position {value!r} is not a positive integer.")
    return value


def format_instant(value: datetime) -> str:
    """Render an aware datetime as UTC ISO-8601 with microseconds and a ``Z`` suffix."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_instant(value: str) -> datetime:
    """Parse an ISO-8601 instant; a value without an offset is taken as UTC."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO-8601 string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class EventId:
    """An event id and, optionally, one of its versions (``None`` means the latest)."""

    id: uuid.UUID
    version: int | None = None

    @classmethod
    def coerce(cls, value: Any) -> EventId:
        """Accept an EventId, a UUID, a UUID string or ``{"id", "version"}``."""
        if isinstance(value, EventId):
            return value
        if isinstance(value, dict):
            version = value.get("version")
            if version is not None and (
                isinstance(version, bool) or not isinstance(version, int) or version < 1
            ):
                raise InvalidEvent(f"Event version {version!r} is not a positive integer.")
            return cls(parse_event_uuid(value.get("id")), version)
        return cls(parse_event_uuid(value))

    def to_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "version": self.version}


@dataclass(frozen=True, slots=True)
class SchemaRef:
    """A reference to a registered schema; ``version=None`` means its latest version."""

    id: str
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version}


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file attached to an event: stored bytes (by content hash) or a reference (``uri``)."""

    id: uuid.UUID
    content_type: str
    filename: str | None = None
    size: int | None = None
    hash: str | None = None
    is_reference: bool = False
    uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "contentType": self.content_type,
            "filename": self.filename,
            "size": self.size,
            "hash": self.hash,
            "isReference": self.is_reference,
        }
        if self.is_reference:
            data["uri"] = self.uri
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileRecord:
        return cls(
            id=uuid.UUID(data["id"]),
            content_type=data["contentType"],
            filename=data.get("filename"),
            size=data.get("size"),
            hash=data.get("hash"),
            is_reference=bool(data.get("isReference", False)),
            uri=data.get("uri"),
        )


@dataclass(frozen=True, slots=True)
class Link:
    """A directed, typed link from the event carrying it to ``target``."""

    type: str
    target: EventId
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "targetEvent": self.target.to_dict(), "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: Any) -> Link:
        """Build a link from its document form, naming what is wrong when it is malformed."""
        if isinstance(data, Link):
            return data
        if not isinstance(data, dict):
            raise InvalidEvent(f"A link must be an object, not {data!r}.")
        link_type = data.get("type")
        if not isinstance(link_type, str) or not link_type:
            raise InvalidEvent("A link needs a non-empty string 'type'.")
        target = data.get("targetEvent")
        if target is None:
            raise InvalidEvent(f"Link {link_type!r} needs a 'targetEvent'.")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidEvent(f"Link {link_type!r} metadata must be an object.")
        return cls(link_type, EventId.coerce(target), metadata)


@dataclass(frozen=True, slots=True)
class Event:
    """One version of an event. Immutable: a change is a new version with the same id."""

    id: EventId
    created_at: datetime
    schema: SchemaRef
    payload: dict[str, Any]
    producer: str = "core"
    files: tuple[FileRecord, ...] = ()
    links: tuple[Link, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The version's place in the store's commit order (SPEC §9); ``None`` until stored.
    position: int | None = None

    @property
    def uuid(self) -> uuid.UUID:
        return self.id.id

    @property
    def version(self) -> int:
        assert self.id.version is not None
        return self.id.version

    @property
    def stored_position(self) -> int:
        """The position of a stored version; only a document not yet stored has none."""
        assert self.position is not None, "only a stored version has a position"
        return self.position

    def with_changes(self, **changes: Any) -> Event:
        return replace(self, **changes)

    def with_position(self, position: int | None) -> Event:
        """This version at ``position``: ``with_changes(position=…)`` spelt out, at a
        quarter of the cost of ``dataclasses.replace`` (every stored event gets one)."""
        return new_event(
            self.id,
            self.created_at,
            self.schema,
            self.payload,
            self.producer,
            self.files,
            self.links,
            self.metadata,
            position,
        )

    def to_dict(self) -> dict[str, Any]:
        """The document of SPEC §1; ``position`` comes last, and only once it is known."""
        data: dict[str, Any] = {
            "id": self.id.to_dict(),
            "createdAt": format_instant(self.created_at),
            "producer": self.producer,
            "schema": self.schema.to_dict(),
            "payload": self.payload,
            "files": [f.to_dict() for f in self.files],
            "links": [link.to_dict() for link in self.links],
            "metadata": self.metadata,
        }
        if self.position is not None:
            data["position"] = self.position
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Rebuild a stored event document (as written by :meth:`to_dict`)."""
        schema = data["schema"]
        return cls(
            id=EventId.coerce(data["id"]),
            created_at=parse_instant(data["createdAt"]),
            producer=data.get("producer", "core"),
            schema=SchemaRef(schema["id"], schema.get("version")),
            payload=data.get("payload", {}),
            files=tuple(FileRecord.from_dict(f) for f in data.get("files", ())),
            links=tuple(Link.from_dict(link) for link in data.get("links", ())),
            metadata=data.get("metadata", {}),
            position=parse_position(data.get("position")),
        )


def _event_builder() -> Any:
    """:func:`new_event`: ``Event(…)`` with every field given in order, built as the
    dataclass's ``__init__`` builds it (it has no ``__post_init__``) but by each slot's
    own setter, without the frozen class's ``object.__setattr__`` call per field and the
    keyword matching: half the cost, for the events every read and write builds."""
    new = object.__new__
    slot = Event.__dict__
    set_id, set_created, set_schema = (slot[n].__set__ for n in ("id", "created_at", "schema"))
    set_payload, set_producer = slot["payload"].__set__, slot["producer"].__set__
    set_files, set_links = slot["files"].__set__, slot["links"].__set__
    set_metadata, set_position = slot["metadata"].__set__, slot["position"].__set__

    def new_event(
        id: EventId,
        created_at: datetime,
        schema: SchemaRef,
        payload: dict[str, Any],
        producer: str,
        files: tuple[FileRecord, ...],
        links: tuple[Link, ...],
        metadata: dict[str, Any],
        position: int | None,
    ) -> Event:
        event = new(Event)
        set_id(event, id)
        set_created(event, created_at)
        set_schema(event, schema)
        set_payload(event, payload)
        set_producer(event, producer)
        set_files(event, files)
        set_links(event, links)
        set_metadata(event, metadata)
        set_position(event, position)
        return event

    return new_event


#: ``Event(id, created_at, schema, payload, producer, files, links, metadata, position)``.
new_event = _event_builder()
