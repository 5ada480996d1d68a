"""``storage-memory``: every role in process memory, for tests and experiments.

It is the reference backend: queries run the pure-Python evaluator of ``trove.query``, so
the conformance suite compares every other backend against the rules as written. Data is
lost when the process ends. A transaction snapshots the state and holds the storage's lock
from its beginning to its end, so threads take turns: no other thread reads a version before
it commits, and a rollback cannot take another thread's acknowledged writes with it.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import threading
import uuid
from abc import abstractmethod
from collections.abc import Collection
from typing import Any, BinaryIO, ClassVar

from trove.documents import Event, EventId, FileRecord, Link
from trove.exceptions import FileIntegrityError, FileTooLarge, NotFound, VersionConflict
from trove.query import EventQuery
from trove.storage.base import (
    EventStorage,
    FileStorage,
    LinkReader,
    LinkStorage,
    StoredFile,
    TransactionalStorage,
)


class _Snapshots(TransactionalStorage):
    """Transactions by snapshot: begin saves a copy of the state, rollback restores it.

    The (re-entrant) lock is held by the transaction's thread until the outermost commit
    or rollback; every read and write takes it too. Restoring a snapshot is only sound
    because nobody else wrote since it was taken, and positions stay in commit order
    because nobody else takes one while a transaction is open.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._lock = threading.RLock()
        self._snapshots: list[Any] = []

    @abstractmethod
    def _copy_state(self) -> Any:
        """A copy of everything a rollback must bring back."""

    @abstractmethod
    def _restore_state(self, state: Any) -> None:
        """Put back a state taken by :meth:`_copy_state`."""

    def begin_transaction(self) -> None:
        self._lock.acquire()
        try:
            self._snapshots.append(self._copy_state())
        except BaseException:
            self._lock.release()
            raise

    def commit_transaction(self) -> None:
        try:
            self._snapshots.pop()
        finally:
            self._lock.release()

    def rollback_transaction(self) -> None:
        try:
            self._restore_state(self._snapshots.pop())
        finally:
            self._lock.release()


class MemoryEventStorage(_Snapshots, EventStorage, LinkReader):
    """Events (and, with ``useEventStorage``, their links) in a dict of version lists."""

    roles: ClassVar[frozenset[str]] = frozenset({"events", "links"})
    stores_links: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._versions: dict[uuid.UUID, list[Event]] = {}
        # The feed: every version in position order, and the positions alone for bisect.
        # The counter is not part of a transaction's snapshot: a rolled-back position is
        # never handed out again, so a reader that saw it cannot miss its successor.
        self._feed: list[Event] = []
        self._positions: list[int] = []
        self._last_position = 0

    def _copy_state(self) -> Any:
        versions = {key: list(versions) for key, versions in self._versions.items()}
        return versions, list(self._feed), list(self._positions)

    def _restore_state(self, state: Any) -> None:
        self._versions, self._feed, self._positions = state

    def save_event(self, event: Event) -> Event:
        with self._lock:
            versions = self._versions.setdefault(event.uuid, [])
            if any(v.version == event.version for v in versions):
                raise VersionConflict(f"Event {event.uuid} version {event.version} already exists.")
            self._last_position += 1
            event = event.with_changes(position=self._last_position)
            versions.append(event)
            versions.sort(key=lambda v: v.version)
            self._feed.append(event)
            self._positions.append(self._last_position)
            return event

    def read_feed(
        self,
        after: int = 0,
        limit: int = 1000,
        schemas: Collection[str] = (),
        producers: Collection[str] = (),
    ) -> list[Event]:
        with self._lock:
            start = bisect.bisect_right(self._positions, after)
            found: list[Event] = []
            for event in self._feed[start:]:
                if len(found) >= limit:
                    break
                if (not schemas or event.schema.id in schemas) and (
                    not producers or event.producer in producers
                ):
                    found.append(event)
            return found

    def last_position(self) -> int:
        with self._lock:
            return self._positions[-1] if self._positions else 0

    def get_event(self, event_id: uuid.UUID, version: int | None = None) -> Event | None:
        with self._lock:
            versions = self._versions.get(event_id, [])
            if version is None:
                return versions[-1] if versions else None
            return next((v for v in versions if v.version == version), None)

    def get_versions(self, event_id: uuid.UUID) -> list[Event]:
        with self._lock:
            return list(self._versions.get(event_id, []))

    def query_events(self, query: EventQuery) -> list[Event]:
        with self._lock:
            latest = [versions[-1] for versions in self._versions.values() if versions]
        return query.apply(latest)

    def get_links(self, source: EventId, *, type: str | None = None) -> list[Link]:
        event = self.get_event(source.id, source.version)
        links = event.links if event else ()
        return [link for link in links if type is None or link.type == type]

    def get_backlinks(
        self, target: uuid.UUID, *, type: str | None = None
    ) -> list[tuple[EventId, Link]]:
        with self._lock:
            versions = [v for vs in self._versions.values() for v in vs]
        return [
            (event.id, link)
            for event in versions
            for link in event.links
            if link.target.id == target and (type is None or link.type == type)
        ]


class MemoryLinkStorage(_Snapshots, LinkStorage):
    """Links kept on their own, beside an event storage that does not keep them."""

    roles: ClassVar[frozenset[str]] = frozenset({"links"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._links: list[tuple[EventId, Link]] = []

    def _copy_state(self) -> Any:
        return list(self._links)

    def _restore_state(self, state: Any) -> None:
        self._links = state

    def save_link(self, source: EventId, link: Link) -> None:
        with self._lock:
            self._links.append((source, link))

    def get_links(self, source: EventId, *, type: str | None = None) -> list[Link]:
        with self._lock:
            links = list(self._links)
        return [
            link for owner, link in links if owner == source and (type is None or link.type == type)
        ]

    def get_backlinks(
        self, target: uuid.UUID, *, type: str | None = None
    ) -> list[tuple[EventId, Link]]:
        with self._lock:
            links = list(self._links)
        return [
            (owner, link)
            for owner, link in links
            if link.target.id == target and (type is None or link.type == type)
        ]


class MemoryFileStorage(FileStorage):
    """File bytes in a dict keyed by content hash, records in a dict keyed by file id."""

    roles: ClassVar[frozenset[str]] = frozenset({"files"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._lock = threading.RLock()
        self._blobs: dict[str, bytes] = {}
        self._records: dict[uuid.UUID, FileRecord] = {}

    def save_file(
        self,
        content: BinaryIO,
        *,
        content_type: str,
        filename: str | None = None,
        expected_hash: str | None = None,
        max_size: int | None = None,
        file_id: uuid.UUID | None = None,
    ) -> StoredFile:
        hasher, buffer, size = hashlib.sha256(), io.BytesIO(), 0
        while chunk := content.read(self.chunk_size):
            size += len(chunk)
            if max_size is not None and size > max_size:
                raise FileTooLarge(f"File {filename or ''} is larger than {max_size} bytes.")
            hasher.update(chunk)
            buffer.write(chunk)
        digest = f"sha256:{hasher.hexdigest()}"
        if expected_hash is not None and expected_hash.lower() != digest:
            raise FileIntegrityError(
                f"File {filename or ''} has hash {digest}, not the declared {expected_hash}."
            )
        record = FileRecord(file_id or uuid.uuid4(), content_type, filename, size, digest)
        with self._lock:
            new_content = digest not in self._blobs
            if new_content:
                self._blobs[digest] = buffer.getvalue()
            self._records[record.id] = record
        return StoredFile(record, new_content)

    def save_reference(
        self,
        uri: str,
        *,
        content_type: str,
        filename: str | None = None,
        file_id: uuid.UUID | None = None,
    ) -> FileRecord:
        record = FileRecord(
            file_id or uuid.uuid4(), content_type, filename, is_reference=True, uri=uri
        )
        with self._lock:
            self._records[record.id] = record
        return record

    def get_file(self, file_id: uuid.UUID) -> FileRecord | None:
        return self._records.get(file_id)

    def open_file(self, file_id: uuid.UUID) -> BinaryIO:
        record = self._records.get(file_id)
        if record is None or record.is_reference or record.hash not in self._blobs:
            raise NotFound(f"File {file_id} has no stored bytes.")
        return io.BytesIO(self._blobs[record.hash])

    def delete_file(self, file_id: uuid.UUID, *, delete_content: bool) -> None:
        with self._lock:
            record = self._records.pop(file_id, None)
            if record is not None and delete_content and record.hash:
                self._blobs.pop(record.hash, None)

    def content_exists(self, digest: str) -> bool:
        return digest in self._blobs
