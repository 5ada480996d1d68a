"""Moving stored versions between stores as they are (SPEC §10): export, import, copy.

An import is not a write of something new: the versions happened elsewhere, already
validated, already linked, and their ids, versions, ``createdAt``, producers, links and
file ids must survive the move. So an import keeps all of that and only the ``position``
is new (the target's next, in the order versions arrive, which is the source's position
order). It still checks what the target must be able to trust: the payload against its
pinned schema version, the shape of every value, that link targets exist (unless partial
history is allowed), and that file bytes match their recorded hash.

**Hooks.** An import fires none of the lifecycle hooks that run before and at storing
(``event:validating`` … ``event:stored``): their receivers create derived events, and
those derived events are part of what is being imported, so firing them again would
duplicate them. ``event:committed`` is sent for each version imported into the
configured store (not into another one, as ``trove_copy --to`` writes), because the
store really did gain it and that signal's receivers (caches, notifications) must know.

**Reruns are harmless.** A version already present with the same document (position
aside) is skipped; one present with a different document is an :class:`ImportConflict`
and nothing of it is written. A version must be newer than the target's latest version
of that event, so history keeps its order.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from trove import committed, schemas
from trove.documents import Event, FileRecord
from trove.exceptions import InvalidEvent, TroveError, VersionConflict
from trove.query import EventQuery
from trove.storage.base import EventStorage
from trove.storage.handler import StorageHandler, storages

__all__ = [
    "ImportConflict",
    "ImportResult",
    "Importer",
    "StoreDigest",
    "document_digest",
    "event_from_document",
    "exported_versions",
    "import_event",
    "iter_versions",
]

#: Versions read from the feed, and imported in one storage call, at a time.
PAGE = 1000

#: Where an import finds the bytes of a file record, or ``None`` when it has none.
BytesSource = Callable[[FileRecord], BinaryIO | None]


class ImportConflict(VersionConflict):
    """The target holds this version (or file id) already, with a different document."""

    code = "import_conflict"


@dataclass(frozen=True)
class ImportResult:
    """What importing one version did: ``imported`` False means it was already there."""

    event: Event
    imported: bool


def canonical(event: Event) -> bytes:
    """The document of a version as one canonical JSON text, ``position`` left out: what
    two stores holding the same version agree on, whatever order they stored it in."""
    data = event.to_dict()
    data.pop("position", None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def document_digest(event: Event) -> str:
    """The SHA-256 of :func:`canonical`, in hex."""
    return hashlib.sha256(canonical(event)).hexdigest()


class StoreDigest:
    """A count and an order-independent digest of many documents: the sum of their
    SHA-256 values modulo 2**256, so that two stores compare equal exactly when they hold
    the same documents (to SHA-256's strength), whatever positions they gave them."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, event: Event) -> None:
        self.count += 1
        self._sum = (self._sum + int(document_digest(event), 16)) % (1 << 256)

    @property
    def hexdigest(self) -> str:
        return f"{self._sum:064x}"


def iter_versions(events: EventStorage, after: int = 0) -> Iterator[Event]:
    """Every committed version after position ``after``, in position order, a page of the
    feed at a time: memory holds one page whatever the size of the store."""
    while page := events.read_feed(after, PAGE):
        yield from page
        after = page[-1].position or after


def exported_versions(
    events: EventStorage, query: EventQuery | None = None, *, all_versions: bool = False
) -> Iterator[Event]:
    """What ``trove_export`` writes, in position order: the latest version of each event
    whose latest version matches ``query`` (every event without one), or with
    ``all_versions`` every version of those events. Latest versions are looked up a page
    at a time, so memory stays flat."""
    after = 0
    while page := events.read_feed(after, PAGE):
        after = page[-1].position or after
        if all_versions and query is None:
            yield from page
            continue
        latest = events.get_latest({event.uuid for event in page})
        for event in page:
            newest = latest.get(event.uuid)
            if newest is None or (not all_versions and newest.version != event.version):
                continue
            if query is None or query.matches(newest):
                yield event


@dataclass
class _Prepared:
    """A version checked and with its files stored, waiting to be saved."""

    event: Event
    new_files: list[tuple[FileRecord, bool]]


class Importer:
    """Imports versions into a store (the configured one unless ``target`` is given).

    ``open_bytes`` finds the bytes of a stored file the target lacks; without it (or when
    it answers ``None``) such a version fails. :meth:`import_events` takes a batch and
    saves what passes its checks in one storage call; each version gets its own result.
    """

    def __init__(
        self,
        target: StorageHandler | None = None,
        *,
        open_bytes: BytesSource | None = None,
        allow_dangling_links: bool = False,
    ) -> None:
        self.target = storages if target is None else target
        self.open_bytes = open_bytes
        self.allow_dangling_links = allow_dangling_links
        self._schemas: dict[Any, schemas.CompiledSchema | None] = {}

    def import_event(self, event: Event) -> ImportResult:
        """Import one version; raise its error (:class:`ImportConflict`, ``InvalidEvent``…)."""
        result = self.import_events([event])[0]
        if isinstance(result, TroveError):
            raise result
        assert result is not None
        return result

    def import_events(
        self,
        events: Iterable[Event],
        *,
        stop_on_error: bool = False,
        delivered: Collection[uuid.UUID] = (),
    ) -> list[ImportResult | TroveError | None]:
        """Import versions in the order given; one result (or error) per version.

        With ``stop_on_error`` nothing after the first failing version is written (its
        result and theirs are ``None``, its own is the error). An id in ``delivered`` was
        derived from a CloudEvent's source and id: if the store has it, it is that same
        CloudEvent delivered again, skipped without comparing documents.
        """
        events = list(events)  # positions they carry are the source's: storages give new ones
        target = self.target.events
        stored = target.get_latest({event.uuid for event in events})
        latest = {event_id: event.version for event_id, event in stored.items()}
        results: list[ImportResult | TroveError | None] = [None] * len(events)
        prepared: list[tuple[int, _Prepared]] = []
        for index, event in enumerate(events):
            try:
                if event.uuid in delivered and event.uuid in stored:
                    results[index] = ImportResult(stored[event.uuid], imported=False)
                    continue
                present = self._present(event, latest.get(event.uuid, 0))
                if present is not None:
                    results[index] = ImportResult(present, imported=False)
                    continue
                prepared.append((index, self._prepare(event, latest)))
            except TroveError as error:
                results[index] = error
                if stop_on_error:
                    break
                continue
            latest[event.uuid] = event.version
        for index, result in self._save(prepared):
            results[index] = result
        return results

    # Checks ---------------------------------------------------------------------------

    def _present(self, event: Event, latest: int) -> Event | None:
        """The target's copy of this version if it has the same document; ``None`` if the
        version is new. Raises :class:`ImportConflict` or, for a version older than the
        target's latest that it lacks, ``InvalidEvent``."""
        if event.version > latest:
            return None
        stored = self.target.events.get_event(event.uuid, event.version)
        if stored is None:
            raise InvalidEvent(
                f"Event {event.uuid} version {event.version} comes after version {latest} "
                "in the target: versions are imported in order."
            )
        if canonical(stored) != canonical(event):
            raise ImportConflict(
                f"Event {event.uuid} version {event.version} is already stored with "
                "another document; it was not imported."
            )
        return stored

    def _prepare(self, event: Event, latest: dict[uuid.UUID, int]) -> _Prepared:
        from trove.service import _check_shape

        _check_shape(event.producer, event.payload, event.metadata)
        self._validate(event)
        if not self.allow_dangling_links:
            self._check_links(event, latest)
        new_files: list[tuple[FileRecord, bool]] = []
        try:
            for record in event.files:
                stored = self._store_file(record)
                if stored is not None:
                    new_files.append(stored)
        except BaseException:
            self._discard(new_files)
            raise
        return _Prepared(event, new_files)

    def _validate(self, event: Event) -> None:
        """The payload against the schema version the document pins; an unpinned schema
        (unregistered when the event was written) is checked only by strict mode."""
        ref = event.schema
        if ref not in self._schemas:
            self._schemas[ref] = None if ref.version is None else schemas.compiled_schema(ref)
        schemas.check_payload(ref, self._schemas[ref], event.payload)

    def _check_links(self, event: Event, latest: dict[uuid.UUID, int]) -> None:
        if not event.links:
            return
        events = self.target.events
        missing = []
        for link in event.links:
            target = link.target
            newest = latest.get(target.id)
            if newest is None:
                found = events.get_event(target.id)
                newest = 0 if found is None else found.version
                if newest:
                    latest[target.id] = newest
            if not newest or (target.version is not None and target.version > newest):
                missing.append(link)
        if missing:
            problems = [
                {
                    "field": "links",
                    "message": f"Link {link.type!r} of event {event.uuid} targets event "
                    f"{link.target.id}"
                    + (f" version {link.target.version}" if link.target.version else "")
                    + ", which the target does not hold (import it first, or allow "
                    "dangling links).",
                }
                for link in missing
            ]
            raise InvalidEvent("; ".join(p["message"] for p in problems), problems=problems)

    def _store_file(self, record: FileRecord) -> tuple[FileRecord, bool] | None:
        """Store one file under its own id; ``None`` when the target has it already."""
        files = self.target.files
        existing = files.get_file(record.id)
        if existing is not None:
            if existing != record:
                raise ImportConflict(
                    f"File {record.id} is already stored with another record; not imported."
                )
            return None
        if record.is_reference:
            saved = files.save_reference(
                record.uri or "",
                content_type=record.content_type,
                filename=record.filename,
                file_id=record.id,
            )
            return saved, False
        stream = None if self.open_bytes is None else self.open_bytes(record)
        if stream is None:
            raise InvalidEvent(
                f"The bytes of file {record.id} ({record.hash}) are not part of the import; "
                "export them with --files DIR and import with --files DIR."
            )
        with stream:
            stored = files.save_file(
                stream,
                content_type=record.content_type,
                filename=record.filename,
                expected_hash=record.hash,
                file_id=record.id,
            )
        return stored.record, stored.new_content

    # Saving ---------------------------------------------------------------------------

    def _save(self, prepared: list[tuple[int, _Prepared]]) -> Iterator[tuple[int, Any]]:
        """Save the batch in one call; if that fails, one by one, so that each version
        gets its own answer and the good ones are kept."""
        if not prepared:
            return
        if len(prepared) > 1:
            try:
                stored = self._save_events([item.event for _, item in prepared])
            except TroveError:
                pass  # one of them is the reason: find out which, below
            else:
                for (index, _), event in zip(prepared, stored, strict=True):
                    yield index, ImportResult(event, imported=True)
                return
        for index, item in prepared:
            try:
                event = self._save_events([item.event])[0]
            except TroveError as error:
                self._discard(item.new_files)
                yield index, error
            else:
                yield index, ImportResult(event, imported=True)

    def _save_events(self, events: list[Event]) -> list[Event]:
        target = self.target
        stored = target.events.save_events(events)
        if not target.links_use_event_storage:
            for event in stored:
                for link in event.links:
                    target.link_writer.save_link(event.id, link)
        if target is storages:
            committed.after_write(stored)
        return stored

    def _discard(self, new_files: list[tuple[FileRecord, bool]]) -> None:
        for record, new_content in reversed(new_files):
            self.target.files.delete_file(record.id, delete_content=new_content)


def import_event(
    document: dict[str, Any] | Event,
    *,
    open_bytes: BytesSource | None = None,
    allow_dangling_links: bool = False,
) -> ImportResult:
    """Import one stored version, as exported, into the configured store (see the module
    docstring for what is kept and checked). ``open_bytes`` gives the bytes of each stored
    file the store lacks. Raises :class:`ImportConflict` when the store holds that version
    with another document."""
    event = document if isinstance(document, Event) else event_from_document(document)
    importer = Importer(open_bytes=open_bytes, allow_dangling_links=allow_dangling_links)
    return importer.import_event(event)


def event_from_document(data: Any) -> Event:
    """An exported document (SPEC §1) as an :class:`Event`, or ``InvalidEvent`` saying
    what is wrong with it."""
    if not isinstance(data, dict):
        raise InvalidEvent(f"An event document must be a JSON object, not {type(data).__name__}.")
    missing = [key for key in ("id", "createdAt", "schema", "payload") if key not in data]
    if missing:
        raise InvalidEvent(f"The document lacks {', '.join(missing)}.")
    if not isinstance(data["id"], dict) or not isinstance(data["id"].get("version"), int):
        raise InvalidEvent('\'id\' must be {"id": <uuid>, "version": <integer>}.')
    try:
        return Event.from_dict(data)
    except InvalidEvent:
        raise
    except KeyError as error:
        raise InvalidEvent(f"The document lacks {error}.") from error
    except (ValueError, TypeError, AttributeError) as error:
        raise InvalidEvent(f"The document is malformed: {error}.") from error
