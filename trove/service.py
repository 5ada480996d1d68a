"""The Python API: create, version, read, query and link events, within transactions.

Every write follows one path: build the event, fire ``event:validating``, validate the
payload, fire ``event:validated`` and ``event:received``, store its files, fire
``event:storing``, save the event and its links, fire ``event:stored``. Everything from the
files on runs inside :func:`transaction`, so a failure anywhere (a hook raising, a link
to a missing event, a version conflict, a database error) leaves no event, no link and
no orphan bytes behind. A write with nothing to group (no files, links kept by the event
storage, no ``event:storing`` receiver, no enclosing transaction) is a single storage
call, atomic on its own, and skips the transaction's round trips.
"""

from __future__ import annotations

import base64
import functools
import gc
import io
import logging
import threading
import uuid
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from django.utils import timezone

from trove import committed, schemas, signals
from trove.conf import trove_settings
from trove.documents import (
    Event,
    EventId,
    FileRecord,
    Link,
    SchemaRef,
    new_event,
    parse_event_uuid,
)
from trove.exceptions import (
    InvalidEvent,
    InvalidSchema,
    NotFound,
    SchemaNotFound,
    SchemaValidationError,
    VersionConflict,
)
from trove.jsonvalues import json_problems, plain_json_depth
from trove.limits import (
    MAX_SCHEMA_VERSION,
    content_type_problems,
    depth_problems,
    filename_problems,
    name_problems,
    schema_version_problems,
)
from trove.query import EventQuery
from trove.storage.base import TransactionalStorage
from trove.storage.handler import storages

if TYPE_CHECKING:  # models import only once the app registry is ready
    from trove.models import EventSchema

__all__ = [
    "NewFile",
    "FileReference",
    "append_version",
    "count_events",
    "create_event",
    "create_events",
    "get_backlinks",
    "get_event",
    "get_file",
    "get_linked_events",
    "get_links",
    "get_versions",
    "open_file",
    "query_events",
    "register_schema",
    "transaction",
]

logger = logging.getLogger(__name__)
#: The resolution of ``createdAt`` (SPEC §1).
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class NewFile:
    """Bytes to attach: ``content`` is bytes, text (stored as UTF-8) or a binary stream."""

    content: bytes | str | BinaryIO
    content_type: str = "application/octet-stream"
    filename: str | None = None
    hash: str | None = None

    def stream(self) -> BinaryIO:
        if isinstance(self.content, str):
            return io.BytesIO(self.content.encode())
        if isinstance(self.content, bytes | bytearray):
            return io.BytesIO(self.content)
        return self.content

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> NewFile | FileReference:
        """Read the REST/JSON form ``{contentType, filename?, data, encoding?, isReference?}``."""
        if not isinstance(data, dict):
            raise InvalidEvent(f"A file must be an object, not {data!r}.")
        content_type = data.get("contentType") or "application/octet-stream"
        content = data.get("data")
        if not isinstance(content, str):
            raise InvalidEvent("A file needs 'data': text, base64 text, or a URI.")
        if data.get("isReference"):
            return FileReference(content, content_type, data.get("filename"))
        encoding = data.get("encoding")
        if encoding == "base64":
            try:
                content = base64.b64decode(content, validate=True)
            except ValueError as error:
                raise InvalidEvent(
                    f"File {data.get('filename') or ''} is not valid base64."
                ) from error
        elif encoding not in (None, "utf-8", "text"):
            raise InvalidEvent(f"Unknown file encoding {encoding!r}; use 'base64' or none.")
        return cls(content, content_type, data.get("filename"), data.get("hash"))


@dataclass(frozen=True)
class FileReference:
    """Bytes that live elsewhere (``s3://…`` or ``https://…``): recorded, never fetched."""

    uri: str
    content_type: str = "application/octet-stream"
    filename: str | None = None

    def check(self) -> None:
        if not self.uri.startswith(("s3://", "https://", "http://")):
            raise InvalidEvent(f"File reference {self.uri!r} must be an s3:// or https:// URI.")


# Transactions ----------------------------------------------------------------------

_frames = threading.local()


def _file_frames() -> list[list[tuple[FileRecord, bool]]]:
    """Per thread, per open transaction: the files stored and whether their bytes are new."""
    if not hasattr(_frames, "stack"):
        _frames.stack = []
    return _frames.stack


@contextmanager
def transaction() -> Iterator[None]:
    """Everything written inside commits together or not at all, on every storage role.

    Event and link storages that support transactions take part directly. Files cannot
    be un-written, so the files stored inside are remembered and deleted again on
    rollback (their bytes only if no earlier file shares them). Transactions nest.
    """
    participants: list[TransactionalStorage] = []
    for role in ("events", "links"):
        candidate = storages[role]
        if isinstance(candidate, TransactionalStorage) and candidate not in participants:
            participants.append(candidate)
    frames = _file_frames()
    with committed.scope():
        frames.append([])
        begun: list[TransactionalStorage] = []
        try:
            for storage in participants:
                storage.begin_transaction()
                begun.append(storage)
            yield
        except BaseException:
            for storage in reversed(begun):
                storage.rollback_transaction()
            _discard_files(frames.pop())
            raise
        else:
            pending = list(reversed(begun))
            try:
                while pending:
                    pending[0].commit_transaction()
                    pending.pop(0)
            except BaseException:
                # The failed store ended its own transaction; the ones after it never
                # committed and must not stay open (storage-memory would keep its lock).
                for storage in pending[1:]:
                    storage.rollback_transaction()
                _discard_files(frames.pop())
                raise
            new_files = frames.pop()
            if frames:
                frames[-1].extend(new_files)


def _discard_files(records: list[tuple[FileRecord, bool]]) -> None:
    """Undo files stored by a failed write. A file that cannot be removed (the store went
    down) is logged, never raised: the error that caused the rollback is the one to report."""
    for record, new_content in reversed(records):
        try:
            storages.files.delete_file(record.id, delete_content=new_content)
        except Exception:
            logger.exception(
                "Could not remove file %s (%s) of a failed write.", record.id, record.hash
            )


def _store_file(new: NewFile | FileReference) -> FileRecord:
    files = storages.files
    frames = _file_frames()
    if isinstance(new, FileReference):
        new.check()
        record = files.save_reference(new.uri, content_type=new.content_type, filename=new.filename)
        frames[-1].append((record, False))
        return record
    stored = files.save_file(
        new.stream(),
        content_type=new.content_type,
        filename=new.filename,
        expected_hash=new.hash,
        max_size=trove_settings.max_file_size,
    )
    frames[-1].append((stored.record, stored.new_content))
    return stored.record


# Schemas ---------------------------------------------------------------------------


def register_schema(
    schema_id: str, version: str, schema: dict[str, Any], *, description: str = ""
) -> EventSchema:
    """Register a JSON Schema under (id, version) (see :func:`trove.schemas.register_schema`),
    after the checks every entry point shares: the id and version are names every backend
    keeps (a version also names a URL segment, so no ``/``), and the document nests no
    deeper than ``TROVE["max_json_depth"]``."""
    problems = name_problems(schema_id, "id") + schema_version_problems(version)
    problems += depth_problems(schema, "schema")
    if not problems:
        problems = json_problems(schema, "schema") + json_problems(description, "description")
    if problems:
        raise InvalidSchema("; ".join(p["message"] for p in problems), problems=problems)
    return schemas.register_schema(schema_id, version, schema, description=description)


def is_registered(schema_id: str, version: str, schema: dict[str, Any]) -> bool:
    """Whether exactly this document is registered under (id, version) already, so that
    registering it again changes nothing (and needs no permission to register)."""
    row = schemas.get_schema(schema_id, version)
    return row is not None and row.schema == schema


# Writing ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _schema_ref_of_id(schema_id: str) -> SchemaRef:
    """:func:`_schema_ref` of a schema id: every write names one, most the same few, so
    each is checked once (an id it refuses raises, and is not cached)."""
    problems = name_problems(schema_id, "schema", label="The schema id")
    if problems:
        raise InvalidEvent("Invalid schema reference.", problems=problems)
    return SchemaRef(schema_id)


def _schema_ref(schema: str | SchemaRef | dict[str, Any]) -> SchemaRef:
    if type(schema) is str and schema:
        return _schema_ref_of_id(schema)
    if isinstance(schema, str) and schema:
        ref = SchemaRef(schema)
    elif isinstance(schema, dict) and isinstance(schema.get("id"), str) and schema["id"]:
        version = schema.get("version")
        ref = SchemaRef(schema["id"], None if version is None else str(version))
    elif isinstance(schema, SchemaRef):
        ref = schema
    else:
        raise InvalidEvent(f"schema must be an id or {{id, version}}, not {schema!r}.")
    problems = name_problems(ref.id, "schema", label="The schema id")
    if ref.version is not None:
        problems += name_problems(
            ref.version, "schema", MAX_SCHEMA_VERSION, label="The schema version"
        )
    if problems:
        raise InvalidEvent("Invalid schema reference.", problems=problems)
    return ref


def _coerce_files(files: Iterable[Any]) -> list[NewFile | FileReference]:
    """The files to attach, each checked before any is stored: a content type that is a
    media type (it becomes a header when the file is served) and a file name any backend
    can keep."""
    result = []
    problems = []
    for index, item in enumerate(files):
        if isinstance(item, dict):
            item = NewFile.from_document(item)
        elif not isinstance(item, NewFile | FileReference):
            raise InvalidEvent(f"A file must be a NewFile, FileReference or object, not {item!r}.")
        problems += content_type_problems(item.content_type, f"files[{index}].contentType")
        problems += filename_problems(item.filename, f"files[{index}].filename")
        result.append(item)
    if problems:
        raise InvalidEvent("; ".join(p["message"] for p in problems), problems=problems)
    return result


def _check_links(links: Sequence[Link]) -> None:
    """Link types are names; link metadata is JSON every backend keeps, within the depth."""
    problems = []
    for index, link in enumerate(links):
        field = f"links[{index}].metadata"
        problems += name_problems(link.type, f"links[{index}].type")
        problems += depth_problems(link.metadata, field) or json_problems(link.metadata, field)
    if problems:
        raise InvalidEvent("; ".join(p["message"] for p in problems), problems=problems)


@functools.lru_cache(maxsize=256)
def _plain_name(text: str) -> bool:
    return not name_problems(text, "producer")


def _is_name(value: Any) -> bool:
    """Whether ``value`` is a name (:func:`~trove.limits.name_problems` finds nothing):
    every write names its producer, most the same few, so each is checked once."""
    return _plain_name(value) if type(value) is str else not name_problems(value, "producer")


def _check_shape(producer: Any, payload: Any, metadata: Any) -> None:
    """Refuse, on every backend alike, what some backend could not store (see jsonvalues).

    Plain JSON objects within the depth limit (nearly every event) are seen to be so in
    one walk each; anything else is measured and walked in full for the problems."""
    if type(payload) is dict and type(metadata) is dict:
        payload_depth = plain_json_depth(payload)
        metadata_depth = plain_json_depth(metadata) if metadata else 1  # most have none
        if (
            payload_depth is not None
            and metadata_depth is not None
            and max(payload_depth, metadata_depth) <= trove_settings.max_json_depth
            and _is_name(producer)
        ):
            return
    problems = depth_problems(payload, "payload") + depth_problems(metadata, "metadata")
    if problems:  # measured first: a value this deep is not walked any further
        raise InvalidEvent("; ".join(p["message"] for p in problems), problems=problems)
    problems = json_problems(payload, "payload") + json_problems(metadata, "metadata")
    if not isinstance(payload, dict):
        problems.append({"field": "payload", "message": "payload must be a JSON object."})
    if not isinstance(metadata, dict):
        problems.append({"field": "metadata", "message": "metadata must be a JSON object."})
    problems += name_problems(producer, "producer")
    if problems:
        raise InvalidEvent("; ".join(p["message"] for p in problems), problems=problems)


def _check_link_targets(
    links: Sequence[Link],
    created: Container[uuid.UUID] = (),
    found: dict[EventId, bool] | None = None,
) -> None:
    """Raise :class:`InvalidEvent` naming every link whose target does not exist.

    ``created`` holds events written earlier in the same batch (version 1 only), and
    ``found`` remembers the targets looked up for it, so each is looked up once.
    """
    if not links:
        return
    events = storages.events
    found = {} if found is None else found
    missing = []
    for link in links:
        target = link.target
        if target.id in created and target.version in (None, 1):
            continue
        if target not in found:
            found[target] = events.get_event(target.id, target.version) is not None
        if not found[target]:
            missing.append(link)
    if missing:
        problems = [
            {
                "field": "links",
                "message": f"Link {link.type!r} targets event {link.target.id}"
                + (f" version {link.target.version}" if link.target.version else "")
                + ", which does not exist.",
            }
            for link in missing
        ]
        raise InvalidEvent("; ".join(p["message"] for p in problems), problems=problems)


def _copy(
    draft: Event, schema: SchemaRef, files: tuple[FileRecord, ...], created_at: datetime
) -> Event:
    """The draft with a resolved schema, its files and its time: ``with_changes`` spelt out,
    at a quarter of the cost of ``dataclasses.replace`` (every write copies its event twice)."""
    return new_event(
        draft.id,
        created_at,
        schema,
        draft.payload,
        draft.producer,
        files,
        draft.links,
        draft.metadata,
        None,
    )


def _validated(
    draft: Event, schema: schemas.CompiledSchema | None, resolved: SchemaRef | None = None
) -> Event:
    """Fire the hooks before storing around schema validation; the draft, schema resolved.
    ``resolved``: the payload was validated already, this is the schema it follows.

    Each hook is sent only if something is connected to it (``receivers``): sending to
    none costs more than the check, several times per event on every write."""
    if signals.event_validating.receivers:
        signals.event_validating.send(sender=Event, event=draft)
    if resolved is None:
        resolved = schemas.check_payload(draft.schema, schema, draft.payload)
    draft = _copy(draft, resolved, draft.files, draft.created_at)
    if signals.event_validated.receivers:
        signals.event_validated.send(sender=Event, event=draft)
    if signals.event_received.receivers:
        signals.event_received.send(sender=Event, event=draft)
    return draft


def _with_files(
    draft: Event, new_files: Sequence[NewFile | FileReference], after: datetime | None = None
) -> Event:
    """Store the draft's new files and stamp it, later than ``after`` (the event before it
    in a batch: a batch's times keep its order, however many fall in one microsecond);
    fires ``event:storing``."""
    files = draft.files + tuple(_store_file(new) for new in new_files) if new_files else draft.files
    now = timezone.now()
    if after is not None and now <= after:
        now = after + _MICROSECOND
    event = _copy(draft, draft.schema, files, now)
    if signals.event_storing.receivers:  # see _validated
        signals.event_storing.send(sender=Event, event=event)
    return event


def _save_links(stored: Iterable[Event]) -> None:
    if not storages.links_use_event_storage:
        for event in stored:
            for link in event.links:
                storages.link_writer.save_link(event.id, link)


def _needs_transaction(new_files: Sequence[NewFile | FileReference]) -> bool:
    """Whether a write must group several steps: files to undo on failure, links saved
    apart, ``event:storing`` receivers that may write, or a transaction to nest in."""
    return (
        bool(new_files)
        or not storages.links_use_event_storage
        or (bool(signals.event_storing.receivers) and signals.event_storing.has_listeners(Event))
        or bool(_file_frames())
    )


def _save_at_stamp(draft: Event, registry: str) -> Event | None:
    """Save a new event with nothing to group (see :func:`_needs_transaction`) and no
    links in one round trip, where the event storage can check the schema registry in its
    insert (``storage-orm`` on PostgreSQL with the registry in the same database);
    ``None`` where it cannot, or when the registry changed.

    The payload is validated against the schema as this process last loaded it, and the
    insert happens only if the registry's stamp of that schema id is still the one it was
    loaded at, so a registration made anywhere still applies to the very next event. If
    the stamp moved, nothing is written and the caller validates again against the
    registry as it now is: the hooks before storing then fire again, for the event as
    validated anew. A payload the cached schema refuses is left to that fresh look too.
    """
    if draft.id.version != 1 or draft.links:
        return None
    storage = storages.events
    folds = getattr(storage, "folds_schema_stamp", None)
    if folds is None or not folds(registry):
        return None
    cached = schemas.cached_schema(draft.schema, registry)
    if cached is None:
        return None
    stamp, schema = cached
    try:
        resolved = schemas.check_payload(draft.schema, schema, draft.payload)
    except (SchemaNotFound, SchemaValidationError):
        return None
    event = _with_files(_validated(draft, schema, resolved), ())
    return storage.save_new_event_at_stamp(event, draft.schema.id, stamp)  # type: ignore[attr-defined]


def _write(draft: Event, new_files: Sequence[NewFile | FileReference]) -> Event:
    grouped = _needs_transaction(new_files)
    registry = schemas.registry_alias()
    stored = None if grouped else _save_at_stamp(draft, registry)
    if stored is None:
        draft = _validated(draft, schemas.compiled_schema(draft.schema, registry))
        if grouped:
            with transaction():
                _check_link_targets(draft.links)
                stored = storages.events.save_event(_with_files(draft, new_files))
                _save_links([stored])
        else:
            _check_link_targets(draft.links)
            stored = storages.events.save_event(_with_files(draft, ()))
    if signals.event_stored.receivers:  # see _validated
        signals.event_stored.send(sender=Event, event=stored)
    committed.after_write([stored])
    return committed.with_positions([stored])[0]


def _new_draft(
    schema: str | SchemaRef | dict[str, Any],
    payload: dict[str, Any],
    *,
    producer: str = "core",
    metadata: dict[str, Any] | None = None,
    links: Iterable[Link | dict[str, Any]] = (),
    files: Iterable[NewFile | FileReference | dict[str, Any]] = (),
    event_id: uuid.UUID | str | None = None,
) -> tuple[Event, list[NewFile | FileReference]]:
    """Version 1 of a new event, checked in shape but not stored, and its new files."""
    metadata = {} if metadata is None else metadata
    _check_shape(producer, payload, metadata)
    identifier = uuid.uuid4() if event_id is None else parse_event_uuid(event_id)
    if event_id is not None and storages.events.get_event(identifier) is not None:
        raise VersionConflict(f"Event {identifier} already exists; append a version instead.")
    draft = new_event(
        EventId(identifier, 1),
        timezone.now(),
        _schema_ref(schema),
        payload,
        producer,
        (),
        tuple(Link.from_dict(link) for link in links) if links else (),
        metadata,
        None,
    )
    if draft.links:
        _check_links(draft.links)
    return draft, _coerce_files(files) if files else []


def create_event(
    schema: str | SchemaRef | dict[str, Any],
    payload: dict[str, Any],
    *,
    producer: str = "core",
    metadata: dict[str, Any] | None = None,
    links: Iterable[Link | dict[str, Any]] = (),
    files: Iterable[NewFile | FileReference | dict[str, Any]] = (),
    event_id: uuid.UUID | str | None = None,
) -> Event:
    """Create version 1 of a new event and return it as stored.

    ``schema`` is an id (its latest registered version), ``{"id", "version"}`` or a
    :class:`SchemaRef`. ``event_id`` may be given (a UUID); it must be new.
    """
    draft, new_files = _new_draft(
        schema,
        payload,
        producer=producer,
        metadata=metadata,
        links=links,
        files=files,
        event_id=event_id,
    )
    return _write(draft, new_files)


def create_events(items: Iterable[dict[str, Any]]) -> list[Event]:
    """Create several events atomically: all are stored or, on any error, none.

    Each item holds the keyword arguments of :func:`create_event` plus ``schema`` and
    ``payload``. The batch is written as one: each schema is looked up once, link targets
    once each, and the event storage saves every event in one call (one statement per
    table on the ORM backends). An item may link to an item before it. Each event goes
    through every hook in order: the validation hooks event by event, then, inside the
    batch's transaction, ``event:storing`` for each, the save, ``event:stored`` for each
    (a receiver that fails there rolls the whole batch back).
    """
    with _collection_paused():
        return _create_events(items)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch is built and written.

    A batch allocates several objects per event and frees none of them until it is
    written, so the collector would walk the growing batch again and again for nothing
    (none of it is cyclic garbage). Re-enabled at the end unless it was off before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: A schema not looked up yet in a batch (``None`` is an unregistered one).
_UNRESOLVED: Any = object()


def _create_events(items: Iterable[dict[str, Any]]) -> list[Event]:
    resolved: dict[SchemaRef, schemas.CompiledSchema | None] = {}
    drafts: list[tuple[Event, list[NewFile | FileReference]]] = []
    chosen: set[uuid.UUID] = set()
    for item in items:
        draft, new_files = _new_draft(**item)
        if item.get("event_id") is not None:  # generated ids are new by construction
            if draft.uuid in chosen:
                raise VersionConflict(f"Event {draft.uuid} appears twice in the batch.")
            chosen.add(draft.uuid)
        schema = resolved.get(draft.schema, _UNRESOLVED)
        if schema is _UNRESOLVED:
            schema = resolved[draft.schema] = schemas.compiled_schema(draft.schema)
        drafts.append((_validated(draft, schema), new_files))
    with transaction():
        if any(draft.links for draft, _ in drafts):
            created: set[uuid.UUID] = set()
            found: dict[EventId, bool] = {}
            for draft, _ in drafts:
                _check_link_targets(draft.links, created, found)
                created.add(draft.uuid)
        stamped: list[Event] = []
        for draft, new_files in drafts:
            stamped.append(
                _with_files(draft, new_files, stamped[-1].created_at if stamped else None)
            )
        stored = storages.events.save_events(stamped)
        _save_links(stored)
        if signals.event_stored.receivers:  # see _validated
            for event in stored:
                signals.event_stored.send(sender=Event, event=event)
    committed.after_write(stored)
    return committed.with_positions(stored)


def append_version(
    event_id: uuid.UUID | str,
    payload: dict[str, Any],
    *,
    schema: str | SchemaRef | dict[str, Any] | None = None,
    producer: str | None = None,
    metadata: dict[str, Any] | None = None,
    links: Iterable[Link | dict[str, Any]] | None = None,
    files: Iterable[NewFile | FileReference | dict[str, Any]] = (),
    expected_version: int | None = None,
) -> Event:
    """Append version N+1 of an event. What is not given is kept from version N; new files
    are added to its files. ``expected_version`` guards against a concurrent append."""
    identifier = parse_event_uuid(event_id)
    previous = storages.events.get_event(identifier)
    if previous is None:
        raise NotFound(f"Event {identifier} does not exist.")
    if expected_version is not None and previous.version != expected_version:
        raise VersionConflict(
            f"Event {identifier} is at version {previous.version}, not {expected_version}."
        )
    producer = previous.producer if producer is None else producer
    metadata = previous.metadata if metadata is None else metadata
    _check_shape(producer, payload, metadata)
    draft = Event(
        id=EventId(identifier, previous.version + 1),
        created_at=timezone.now(),
        schema=previous.schema if schema is None else _schema_ref(schema),
        payload=payload,
        producer=producer,
        files=previous.files,
        links=previous.links if links is None else tuple(Link.from_dict(x) for x in links),
        metadata=metadata,
    )
    if links is not None:
        _check_links(draft.links)
    return _write(draft, _coerce_files(files))


# Reading ---------------------------------------------------------------------------


def get_event(event_id: uuid.UUID | str, version: int | None = None) -> Event:
    """The latest version of an event, or the given one; :class:`NotFound` if absent."""
    identifier = parse_event_uuid(event_id)
    event = storages.events.get_event(identifier, version)
    if event is None:
        which = "" if version is None else f" version {version}"
        raise NotFound(f"Event {identifier}{which} does not exist.")
    return event


def get_versions(event_id: uuid.UUID | str) -> list[Event]:
    """Every version of an event, oldest first; :class:`NotFound` if the id is unknown."""
    identifier = parse_event_uuid(event_id)
    versions = storages.events.get_versions(identifier)
    if not versions:
        raise NotFound(f"Event {identifier} does not exist.")
    return versions


def query_events(query: EventQuery | dict[str, Any] | None = None) -> list[Event]:
    """The latest versions matching an EventQuery (dict form of SPEC §3 or parsed)."""
    return storages.events.query_events(EventQuery.parse(query))


def count_events(query: EventQuery | dict[str, Any] | None = None) -> int:
    """How many latest versions match, ignoring limit and offset."""
    return storages.events.count_events(EventQuery.parse(query))


def get_links(
    event_id: uuid.UUID | str, *, type: str | None = None, version: int | None = None
) -> list[Link]:
    """The outgoing links of an event's latest (or given) version, optionally by type."""
    event = get_event(event_id, version)
    return storages.links.get_links(event.id, type=type)


def get_linked_events(
    event_id: uuid.UUID | str, *, type: str | None = None, version: int | None = None
) -> list[Event]:
    """The events an event links to: the pinned version of each target, else its latest."""
    return [
        get_event(link.target.id, link.target.version)
        for link in get_links(event_id, type=type, version=version)
    ]


def get_backlinks(event_id: uuid.UUID | str, *, type: str | None = None) -> list[Event]:
    """The events whose latest version links to this event, oldest first."""
    identifier = get_event(event_id).uuid
    sources: dict[uuid.UUID, Event] = {}
    for source, _link in storages.links.get_backlinks(identifier, type=type):
        if source.id in sources:
            continue
        latest = storages.events.get_event(source.id)
        if latest is not None and latest.version == source.version:
            sources[source.id] = latest
    return sorted(sources.values(), key=lambda e: (e.created_at, str(e.uuid)))


def get_file(file_id: uuid.UUID | str) -> FileRecord:
    """A file's record; :class:`NotFound` if absent."""
    identifier = _file_uuid(file_id)
    record = storages.files.get_file(identifier)
    if record is None:
        raise NotFound(f"File {identifier} does not exist.")
    return record


def open_file(file_id: uuid.UUID | str) -> BinaryIO:
    """A binary stream of a stored file's bytes (close it, or use ``with``)."""
    return storages.files.open_file(_file_uuid(file_id))


def _file_uuid(file_id: uuid.UUID | str) -> uuid.UUID:
    try:
        return file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound(f"File {file_id!r} does not exist.") from None
