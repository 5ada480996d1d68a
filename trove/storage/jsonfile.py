"""``storage-json-file``: one JSON document per event version, crash-safe, with an index.

People pick this backend because they can read, back up, diff and sync the events with
ordinary tools, so the documents are the record and everything else can be rebuilt from
them. Under ``directory``::

    events/<2 hex>/<2 hex>/<uuid>.<version>.json   one event version (SPEC §1), indented
    journal/<generation>.jsonl                      the last committed write, for recovery
    index.sqlite3                                   what reads and queries use (a cache)
    lock                                            held by whoever is writing

The two hex levels come from a hash of the UUID, so ids of any kind (random, time-ordered)
spread over 65,536 directories: 100 million versions leave about 1,500 files in each.
File names are built only from parsed UUIDs and integers.

**Writing** (a commit; every write outside a transaction is one) holds an exclusive
``flock`` on ``lock`` throughout, so processes commit one at a time:

1. bring the index up to date with the journal (see below), check that no version being
   written exists yet (else :class:`~trove.exceptions.VersionConflict`) and give the
   documents the positions after the last indexed one (SPEC §9): positions are taken and
   made visible under one lock, so they become visible in order, with no late arrivals;
2. write the journal entry ``journal/<n+1>.jsonl`` holding every document of the commit
   (temporary file, fsync, link into place, fsync the directory): this is the commit point;
3. write each document the same way (temporary file beside it, fsync, ``os.link`` to its
   final name, which fails rather than replace an existing version, fsync the directory);
4. record the documents in the index and its generation ``n+1`` in one SQLite transaction;
5. delete older journal entries.

An error in steps 2-4 removes what the commit wrote, so a failed write leaves nothing. A
process killed at any step leaves either no journal entry (nothing happened) or one the
index has not caught up with; whoever next reads or writes finds the index generation one
behind the journal, takes the lock and replays that entry: missing documents are written
from it, its leftover temporary files are removed, and the index catches up. Documents
only ever appear whole (by ``link``), and names other than ``<uuid>.<version>.json`` are
never read as events.

**Reading** goes through the index, which decides what is committed: a document being
published is invisible until step 4, so the documents of a commit become visible together.
Before each read the index generation is compared with the journal's; an index that is
missing, damaged, of another format, or off by more than one entry (deleted, restored from
another moment, copied from elsewhere) is rebuilt from the documents under the lock.
Documents changed by hand are not detected: run ``manage.py trove_rebuild_index`` after.
A rebuild that finds documents without a ``position`` (written before positions existed)
numbers them after the highest one found, in ``createdAt`` order, and writes them back.

**Transactions** keep their documents in memory (per thread, nested scopes) and commit
them as one journal entry when the outermost scope commits; a rollback forgets them. Reads
inside a transaction see its own writes.

The directory must be on a local file system (``flock``, ``link`` and SQLite's WAL need
one); any number of processes on that machine may share it.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import ImproperlyConfigured

from trove.documents import Event, EventId, Link, parse_instant
from trove.exceptions import (
    NO_SPACE,
    InvalidEvent,
    StorageError,
    StorageFull,
    StorageUnavailable,
    VersionConflict,
)
from trove.query import EventQuery
from trove.storage import jsonfile_index as index
from trove.storage.base import EventStatistics, EventStorage, LinkReader, TransactionalStorage
from trove.storage.durability import fsync_directory

logger = logging.getLogger(__name__)
T = TypeVar("T")

DOCUMENT_NAME = re.compile(
    r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([1-9][0-9]*)\.json$"
)
JOURNAL_NAME = re.compile(r"^([0-9]{12})\.jsonl$")
SHARD_NAME = re.compile(r"^[0-9a-f]{2}$")
#: Documents of one commit are written and fsynced this many at a time (the file system
#: groups concurrent fsyncs into fewer journal flushes).
WRITER_THREADS = 4


class CorruptDocument(StorageError):
    """A file named like a document (or a journal entry) does not hold what it should."""

    code = "corrupt_document"


@dataclass(frozen=True)
class Document:
    """One event version as written: file bytes for people, one compact line for the journal."""

    event: Event
    compact: str
    content: bytes

    @classmethod
    def of(cls, event: Event) -> Document:
        data = event.to_dict()
        try:
            compact = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            text = json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
            return cls(event, compact, text.encode())
        except (TypeError, ValueError) as error:
            raise InvalidEvent(
                f"Event {event.uuid} version {event.version} cannot be stored as JSON: {error}."
            ) from error

    def with_position(self, position: int) -> Document:
        """This document with its ``position``, which ``to_dict`` puts last.

        Positions are given under the writers' lock, so rather than serialising the event
        again there, the key is appended to both texts: the result is byte for byte what
        :meth:`of` makes of the positioned event.
        """
        if self.event.position is not None:
            raise ValueError(f"Event {self.event.uuid} already has position {self.event.position}.")
        compact = f'{self.compact[:-1]},"position":{position:d}}}'
        text = self.content[:-3] + f',\n  "position": {position:d}\n}}\n'.encode()
        return Document(self.event.with_changes(position=position), compact, text)


def parse_document(
    data: bytes | str, source: Path, event_id: uuid.UUID | None = None, version: int | None = None
) -> Event:
    """Read a stored document back, checking it is the version its name promises."""
    try:
        event = Event.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError, AttributeError, InvalidEvent) as error:
        raise CorruptDocument(f"{source} is not a valid event document ({error}).") from error
    if event_id is not None and (event.uuid, event.version) != (event_id, version):
        raise CorruptDocument(
            f"{source} holds event {event.uuid} version {event.version}, "
            f"not version {version} of {event_id}."
        )
    return event


@dataclass
class RebuildReport:
    """What a rebuild found: events and versions indexed, documents it could not read."""

    events: int = 0
    documents: int = 0
    damaged: list[str] = field(default_factory=list)


def translate_errors(method):
    """Report the file system's and SQLite's failures as Trove's, naming the path."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as error:
            where = error.filename or self.directory
            unavailable = StorageFull if error.errno in NO_SPACE else StorageUnavailable
            raise unavailable(
                f"storage-json-file cannot use {where}: {error.strerror or error}."
            ) from error
        except sqlite3.Error as error:
            full = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            raise (StorageFull if full else StorageUnavailable)(
                f"storage-json-file index {self.index_path} failed: {error}."
            ) from error

    return wrapper


class JSONFileEventStorage(EventStorage, EventStatistics, LinkReader, TransactionalStorage):
    """Events and their links as JSON documents under ``directory``, indexed in SQLite."""

    roles: ClassVar[frozenset[str]] = frozenset({"events", "links"})
    stores_links: ClassVar[bool] = True
    required_options: ClassVar[tuple[str, ...]] = ("directory",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        directory = self.options["directory"]
        if not isinstance(directory, str | os.PathLike):
            raise ImproperlyConfigured(
                f"storage-json-file: 'directory' must be a path, not {directory!r}."
            )
        self.directory = Path(os.path.abspath(os.path.expanduser(directory)))
        self.events_dir = self.directory / "events"
        self.journal_dir = self.directory / "journal"
        self.index_path = self.directory / "index.sqlite3"
        self.lock_path = self.directory / "lock"
        self._local = threading.local()
        # Each thread's connection lives in its thread-local and closes when the thread
        # ends; this set only lets shutdown() close those still open.
        self._open: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()

    @translate_errors
    def initialize(self) -> None:
        """Create the directory, and recover from a crash or rebuild a stale index now
        rather than in the middle of a request."""
        self.events_dir.mkdir(parents=True, exist_ok=True)
        self.journal_dir.mkdir(exist_ok=True)
        with self._exclusive():
            self._recovered()
            self._tidy_journal(self._journal_generation())

    def shutdown(self) -> None:
        for held in list(self._open):
            held.close()
        self._local = threading.local()

    # Layout -------------------------------------------------------------------------

    def document_path(self, event_id: uuid.UUID, version: int) -> Path:
        """Where a version lives; only a UUID and a positive integer make up the name."""
        if not isinstance(event_id, uuid.UUID):
            raise InvalidEvent(f"Event id {event_id!r} is not a UUID.")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidEvent(f"Event version {version!r} is not a positive integer.")
        shard = hashlib.blake2b(event_id.bytes, digest_size=2).hexdigest()
        return self.events_dir / shard[:2] / shard[2:] / f"{event_id}.{version}.json"

    def _path_of(self, document: Document) -> Path:
        return self.document_path(document.event.uuid, document.event.version)

    def _read_version(self, event_id: uuid.UUID, version: int) -> Event | None:
        path = self.document_path(event_id, version)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return parse_document(data, path, event_id, version)

    # Locking and the index connection -------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The writers' lock: one commit, replay or rebuild at a time across processes.

        Each holder opens its own descriptor, so threads of one process exclude each
        other too; the lock dies with the process, so a killed writer never blocks others.
        """
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _connection(self) -> sqlite3.Connection:
        """This thread's index connection, reopened if the file was replaced or deleted."""
        try:
            inode: int | None = os.stat(self.index_path).st_ino
        except FileNotFoundError:
            inode = None
        held = getattr(self._local, "index", None)
        if held is not None and held.usable(inode):
            return held.connection
        self._drop_connection()
        connection = index.connect(self.index_path)
        held = _ThreadConnection(connection, os.stat(self.index_path).st_ino)
        self._local.index = held
        self._open.add(held)
        return connection

    def _drop_connection(self) -> None:
        held = getattr(self._local, "index", None)
        if held is not None:
            held.close()
            self._local.index = None

    def _discard_index(self) -> None:
        """Delete a damaged index file (caller holds the lock); the next use recreates it."""
        self._drop_connection()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.index_path}{suffix}").unlink(missing_ok=True)

    def _reader(self) -> sqlite3.Connection:
        """A connection to an index that reflects every committed write.

        The common case costs one directory listing and one tiny query. Otherwise the
        lock is taken (waiting for a writer in the middle of its commit) and the index is
        brought up to date, by replaying the last journal entry or by a rebuild.
        """
        try:
            connection = self._connection()
            if index.generation(connection) == self._journal_generation():
                return connection
        except index.IndexDamaged:
            pass
        with self._exclusive():
            return self._recovered()

    def _recovered(self) -> sqlite3.Connection:
        """Under the lock: a connection to an index in step with the journal."""
        try:
            connection = self._connection()
            self._recover(connection)
        except index.IndexDamaged as error:
            logger.warning("storage-json-file: %s Rebuilding it.", error)
            self._discard_index()
            connection = self._connection()
            self._rebuild(connection)
        return connection

    def _read_index(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on a current index; an index found damaged mid-read is rebuilt once."""
        connection = self._reader()
        try:
            return operation(connection)
        except sqlite3.DatabaseError as error:
            if not index.is_damage(error):
                raise
            logger.warning(
                "storage-json-file: the index %s is damaged (%s).", self.index_path, error
            )
        with self._exclusive():
            self._discard_index()
            return operation(self._recovered())

    # The journal ----------------------------------------------------------------------

    def _journal_generations(self) -> list[int]:
        try:
            names = os.listdir(self.journal_dir)
        except FileNotFoundError:
            return []
        return sorted(int(match[1]) for name in names if (match := JOURNAL_NAME.match(name)))

    def _journal_generation(self) -> int:
        """The number of the last committed write (0 before the first)."""
        generations = self._journal_generations()
        return generations[-1] if generations else 0

    def _journal_path(self, generation: int) -> Path:
        return self.journal_dir / f"{generation:012d}.jsonl"

    def _write_journal(self, generation: int, documents: list[Document]) -> None:
        header = json.dumps({"generation": generation, "documents": len(documents)})
        lines = "\n".join([header, *(d.compact for d in documents)]) + "\n"
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        path = self._journal_path(generation)
        _write_file(path, lines.encode(), exclusive=True)
        fsync_directory(self.journal_dir)

    def _read_journal(self, generation: int) -> list[Document]:
        path = self._journal_path(generation)
        try:
            header, *lines = path.read_text(encoding="utf-8").splitlines()
            expected = json.loads(header)
            if expected != {"generation": generation, "documents": len(lines)}:
                raise ValueError(f"header {header} does not match {len(lines)} documents")
        except ValueError as error:
            raise CorruptDocument(f"{path} is not a valid journal entry ({error}).") from error
        return [Document.of(parse_document(line, path)) for line in lines]

    def _recover(self, connection: sqlite3.Connection) -> None:
        """Under the lock: make the index reflect the journal, replaying or rebuilding."""
        latest = self._journal_generation()
        indexed = index.generation(connection)
        if indexed == latest:
            return
        if indexed is not None and indexed == latest - 1:
            try:
                documents = self._read_journal(latest)
            except CorruptDocument as error:
                logger.warning("storage-json-file: %s", error)
            else:
                self._publish(documents, replace=True)
                index.apply(connection, [d.event for d in documents], latest)
                logger.info(
                    "storage-json-file: finished the interrupted write %d in %s.",
                    latest,
                    self.directory,
                )
                return
        report = self._rebuild(connection)
        if indexed is None and not latest and not report.documents:
            return  # a new, empty store
        logger.warning(
            "storage-json-file: the index of %s was %s (journal at %d); rebuilt it from "
            "%d documents.",
            self.directory,
            "missing" if indexed is None else f"at write {indexed}",
            latest,
            report.documents,
        )

    # Writing --------------------------------------------------------------------------

    def _publish(
        self, documents: list[Document], *, replace: bool = False, written: list[Path] | None = None
    ) -> None:
        """Write documents into place, durably. ``replace`` is for replaying the journal:
        a missing or differing document is rewritten; otherwise an existing one is a
        conflict. ``written`` collects the paths this call created, for undoing."""
        changed: set[Path] = set()  # directories that gained an entry and need an fsync
        targets = []
        for document in documents:
            path = self._path_of(document)
            _make_directory(path.parent, changed)
            targets.append((path, document))

        def write(target: tuple[Path, Document]) -> None:
            path, document = target
            if replace:
                for leftover in path.parent.glob(f".{path.name}.*.tmp"):
                    leftover.unlink(missing_ok=True)
                if _has_content(path, document.content):
                    return
            try:
                _write_file(path, document.content, exclusive=not replace)
            except FileExistsError:
                raise VersionConflict(
                    f"Event {document.event.uuid} version {document.event.version} already exists."
                ) from None
            changed.add(path.parent)
            if written is not None:
                written.append(path)

        _in_parallel(write, targets)
        _in_parallel(fsync_directory, sorted(changed))

    def _commit(self, documents: list[Document]) -> list[Event]:
        """Make documents durable and visible together (the protocol in the module doc);
        the events as stored, with the positions they were given under the lock."""
        with self._exclusive():
            connection = self._recovered()
            for document in documents:
                if self._path_of(document).exists():
                    raise _conflict(document.event)
            first = index.last_position(connection) + 1
            documents = [d.with_position(first + i) for i, d in enumerate(documents)]
            generation = self._journal_generation() + 1
            written: list[Path] = []
            try:
                self._write_journal(generation, documents)
                self._publish(documents, written=written)
                index.apply(connection, [d.event for d in documents], generation)
            except BaseException:
                self._undo(generation, written)
                raise
            self._tidy_journal(generation)
        return [document.event for document in documents]

    def _tidy_journal(self, generation: int) -> None:
        """Under the lock: drop entries before ``generation`` and temporary files of
        journal entries a killed writer never finished."""
        for name in os.listdir(self.journal_dir):
            match = JOURNAL_NAME.match(name)
            if (match and int(match[1]) < generation) or _is_temporary(name):
                (self.journal_dir / name).unlink(missing_ok=True)

    def _undo(self, generation: int, written: list[Path]) -> None:
        """Remove what a failed commit wrote, its documents first and its journal entry
        last. An undo that fails is logged, not raised (the original error is the one to
        report); if the journal entry stays, the next reader completes the write instead,
        so the commit still ends all or nothing."""
        try:
            for path in written:
                path.unlink()
            for directory in {path.parent for path in written}:
                fsync_directory(directory)
            self._journal_path(generation).unlink(missing_ok=True)
            fsync_directory(self.journal_dir)
        except OSError:
            logger.exception(
                "storage-json-file: could not undo the failed write %d in %s.",
                generation,
                self.directory,
            )

    # Transactions -----------------------------------------------------------------------

    def _scopes(self) -> list[dict[uuid.UUID, dict[int, Document]]]:
        """This thread's open transaction scopes, outermost first: id → version → document."""
        if not hasattr(self._local, "scopes"):
            self._local.scopes = []
        return self._local.scopes

    def _pending(self, event_id: uuid.UUID) -> dict[int, Event]:
        """Versions of ``event_id`` written by this thread's open transaction."""
        return {
            version: document.event
            for scope in self._scopes()
            for version, document in scope.get(event_id, {}).items()
        }

    def _pending_latest(self) -> dict[uuid.UUID, Event]:
        latest: dict[uuid.UUID, Event] = {}
        for scope in self._scopes():
            for event_id, versions in scope.items():
                newest = versions[max(versions)].event
                if event_id not in latest or newest.version > latest[event_id].version:
                    latest[event_id] = newest
        return latest

    def begin_transaction(self) -> None:
        self._scopes().append({})

    @translate_errors
    def commit_transaction(self) -> None:
        scopes = self._scopes()
        scope = scopes.pop()
        if scopes:
            for event_id, versions in scope.items():
                scopes[-1].setdefault(event_id, {}).update(versions)
        elif scope:
            self._commit([d for versions in scope.values() for d in versions.values()])

    def rollback_transaction(self) -> None:
        self._scopes().pop()

    # Events -----------------------------------------------------------------------------

    def save_event(self, event: Event) -> Event:
        return self.save_events([event])[0]

    @translate_errors
    def save_events(self, events: Iterable[Event]) -> list[Event]:
        """Store versions in one commit (or in the open transaction): all or none.

        Positions are given by the commit; one the caller left on an event is dropped."""
        documents = [
            Document.of(event if event.position is None else event.with_changes(position=None))
            for event in events
        ]
        seen: set[tuple[uuid.UUID, int]] = set()
        for document in documents:
            event = document.event
            key = (event.uuid, event.version)
            if key in seen or event.version in self._pending(event.uuid):
                raise _conflict(event)
            if self._path_of(document).exists():
                raise _conflict(event)
            seen.add(key)
        scopes = self._scopes()
        if scopes:
            for document in documents:
                event = document.event
                scopes[-1].setdefault(event.uuid, {})[event.version] = document
        elif documents:
            return self._commit(documents)
        return [document.event for document in documents]

    @translate_errors
    def get_event(self, event_id: uuid.UUID, version: int | None = None) -> Event | None:
        pending = self._pending(event_id)
        if pending and (version is None or version in pending):
            return pending[max(pending) if version is None else version]
        latest = self._read_index(lambda connection: index.latest(connection, event_id))
        if latest is None or version is None or version == latest.version:
            return latest
        if version > latest.version:
            return None
        return self._read_version(event_id, version)

    @translate_errors
    def get_versions(self, event_id: uuid.UUID) -> list[Event]:
        versions = self._pending(event_id)
        latest = self._read_index(lambda connection: index.latest(connection, event_id))
        if latest is not None:
            versions[latest.version] = latest
            for version in range(1, latest.version):
                event = self._read_version(event_id, version)
                if event is not None:
                    versions[version] = event
        return [versions[number] for number in sorted(versions)]

    def _with_pending(self, query: EventQuery) -> list[Event] | None:
        """All matches when this thread's transaction has written (its versions replace the
        committed ones), else ``None``: the index alone answers."""
        pending = self._pending_latest()
        if not pending:
            return None
        committed = self._read_index(
            lambda connection: index.select(connection, query.without_paging())
        )
        merged = [event for event in committed if event.uuid not in pending]
        return query.without_paging().apply([*merged, *pending.values()])

    @translate_errors
    def query_events(self, query: EventQuery) -> list[Event]:
        merged = self._with_pending(query)
        if merged is None:
            return self._read_index(lambda connection: index.select(connection, query))
        stop = None if query.limit is None else query.offset + query.limit
        return merged[query.offset : stop]

    @translate_errors
    def count_events(self, query: EventQuery) -> int:
        merged = self._with_pending(query)
        if merged is None:
            return self._read_index(lambda connection: index.count(connection, query))
        return len(merged)

    # Statistics (EventStatistics), from the index's committed rows ----------------------

    @translate_errors
    def count_by_field(self, field: str, query: EventQuery) -> list[tuple[str, int]]:
        return self._read_index(lambda connection: index.count_by_field(connection, field, query))

    @translate_errors
    def count_per_day(self, start: datetime, end: datetime, zone: tzinfo) -> dict[date, int]:
        created = self._read_index(lambda c: index.created_between(c, start, end))
        return dict(Counter(parse_instant(text).astimezone(zone).date() for text in created))

    @translate_errors
    def distinct_values(self, field: str, limit: int) -> list[str]:
        return self._read_index(lambda connection: index.distinct(connection, field, limit))

    # The feed -----------------------------------------------------------------------------

    @translate_errors
    def read_feed(
        self,
        after: int = 0,
        limit: int = 1000,
        schemas: Collection[str] = (),
        producers: Collection[str] = (),
    ) -> list[Event]:
        return self._read_index(
            lambda connection: index.feed(connection, after, limit, schemas, producers)
        )

    @translate_errors
    def last_position(self) -> int:
        return self._read_index(index.last_position)

    # Links ------------------------------------------------------------------------------

    def get_links(self, source: EventId, *, type: str | None = None) -> list[Link]:
        event = self.get_event(source.id, source.version)
        links = event.links if event is not None else ()
        return [link for link in links if type is None or link.type == type]

    @translate_errors
    def get_backlinks(
        self, target: uuid.UUID, *, type: str | None = None
    ) -> list[tuple[EventId, Link]]:
        found = self._read_index(lambda connection: index.backlinks(connection, target, type))
        for scope in self._scopes():
            for versions in scope.values():
                for document in versions.values():
                    found.extend(
                        (document.event.id, link)
                        for link in document.event.links
                        if link.target.id == target and (type is None or link.type == type)
                    )
        return found

    # Verifying --------------------------------------------------------------------------

    @translate_errors
    def integrity_problems(self) -> Iterator[str]:
        """Where the index and the documents disagree (``manage.py trove_verify``): a
        document the index lacks or holds otherwise, two documents with one position, an
        indexed version whose document is gone. It only reads; ``trove_rebuild_index``
        repairs the index from the documents."""
        connection = self._reader()
        matched = 0
        for path in self._document_paths():
            try:
                event = parse_document(path.read_bytes(), path, *_name_of(path))
            except CorruptDocument as error:
                yield str(error)
                continue
            except FileNotFoundError:
                continue  # removed since the listing
            row = connection.execute(
                "SELECT document FROM feed WHERE position = ?", (event.position,)
            ).fetchone()
            indexed = None if row is None else Event.from_dict(json.loads(row[0]))
            if indexed == event:
                matched += 1
            elif indexed is None:
                yield f"{path} (position {event.position}) is not in the index."
            elif indexed.id != event.id:
                yield (
                    f"{path} has position {event.position}, which the index gives to event "
                    f"{indexed.uuid} version {indexed.version}: positions are not unique."
                )
            else:
                yield f"{path} differs from the index's copy of it."
        indexed_count = connection.execute("SELECT count(*) FROM feed").fetchone()[0]
        if indexed_count == matched:
            return
        for (document,) in connection.execute("SELECT document FROM feed ORDER BY position"):
            event = Event.from_dict(json.loads(document))
            if not self.document_path(event.uuid, event.version).exists():
                yield (
                    f"The index holds event {event.uuid} version {event.version} (position "
                    f"{event.position}), whose document is missing."
                )

    def _document_paths(self) -> Iterator[Path]:
        """Every file named like a document, in directory order; nothing is changed."""
        for first in _subdirectories(self.events_dir):
            for second in _subdirectories(first):
                for name in sorted(os.listdir(second)):
                    if DOCUMENT_NAME.match(name):
                        yield second / name

    # Rebuilding -------------------------------------------------------------------------

    @translate_errors
    def rebuild_index(self, progress: Callable[[int], None] | None = None) -> RebuildReport:
        """Rebuild the index from the documents (``manage.py trove_rebuild_index``).

        ``progress`` is called with the number of documents read so far.
        """
        with self._exclusive():
            try:
                connection = self._connection()
            except index.IndexDamaged:
                self._discard_index()
                connection = self._connection()
            return self._rebuild(connection, progress)

    def _rebuild(
        self, connection: sqlite3.Connection, progress: Callable[[int], None] | None = None
    ) -> RebuildReport:
        """Under the lock: finish the last journal entry, then index every document."""
        latest = self._journal_generation()
        if latest:
            try:
                self._publish(self._read_journal(latest), replace=True)
            except CorruptDocument as error:
                logger.warning("storage-json-file: %s", error)
        report = RebuildReport()
        unpositioned: list[Event] = []

        def events() -> Iterator[Event]:
            highest = 0
            for event in self._scan(report):
                report.documents += 1
                if event.position is None:
                    unpositioned.append(event)
                    continue
                highest = max(highest, event.position)
                yield event
            yield from self._give_positions(unpositioned, highest)

        report.events = index.replace_all(connection, events(), latest, progress)
        for problem in report.damaged:
            logger.warning("storage-json-file: not indexed: %s", problem)
        return report

    def _give_positions(self, events: list[Event], highest: int) -> Iterator[Event]:
        """Under the lock: number documents written before positions existed, after
        ``highest`` in ``createdAt`` order (then id, then version), and write each back
        with its position so that every later rebuild finds the same numbers."""
        events.sort(key=lambda event: (event.created_at, str(event.uuid), event.version))
        changed: set[Path] = set()
        for offset, event in enumerate(events, start=1):
            positioned = event.with_changes(position=highest + offset)
            path = self.document_path(event.uuid, event.version)
            _write_file(path, Document.of(positioned).content, exclusive=False)
            changed.add(path.parent)
            yield positioned
        _in_parallel(fsync_directory, sorted(changed))
        if events:
            logger.info(
                "storage-json-file: gave positions %d-%d to %d documents in %s.",
                highest + 1,
                highest + len(events),
                len(events),
                self.directory,
            )

    def _scan(self, report: RebuildReport) -> Iterator[Event]:
        """Every readable document, in directory order. Temporary files left by killed
        writers are deleted (the caller holds the lock, so none is in use); unreadable
        documents are listed in ``report.damaged`` and left for a person to look at."""
        for first in _subdirectories(self.events_dir):
            for second in _subdirectories(first):
                for name in sorted(os.listdir(second)):
                    path = second / name
                    if _is_temporary(name):
                        path.unlink(missing_ok=True)
                        continue
                    match = DOCUMENT_NAME.match(name)
                    if match is None:
                        continue
                    event_id, version = uuid.UUID(match[1]), int(match[2])
                    if self.document_path(event_id, version) != path:
                        report.damaged.append(f"{path} is not in the directory its id hashes to.")
                        continue
                    try:
                        yield parse_document(path.read_bytes(), path, event_id, version)
                    except CorruptDocument as error:
                        report.damaged.append(str(error))


class _ThreadConnection:
    """One thread's index connection, closed as soon as that thread ends (its locals are
    dropped); a thread per request, as ``runserver`` does, then leaves no files open. A
    connection inherited through ``fork`` is left alone: it belongs to the parent."""

    __slots__ = ("connection", "inode", "pid", "__weakref__")

    def __init__(self, connection: sqlite3.Connection, inode: int) -> None:
        self.connection: sqlite3.Connection | None = connection
        self.inode = inode
        self.pid = os.getpid()

    def usable(self, inode: int | None) -> bool:
        return self.connection is not None and self.pid == os.getpid() and self.inode == inode

    def close(self) -> None:
        if self.connection is not None and self.pid == os.getpid():
            self.connection.close()
        self.connection = None

    def __del__(self) -> None:
        self.close()


def _name_of(path: Path) -> tuple[uuid.UUID, int]:
    """The (id, version) a document's file name promises."""
    match = DOCUMENT_NAME.match(path.name)
    assert match is not None
    return uuid.UUID(match[1]), int(match[2])


def _conflict(event: Event) -> VersionConflict:
    return VersionConflict(f"Event {event.uuid} version {event.version} already exists.")


def _write_file(path: Path, content: bytes, *, exclusive: bool) -> None:
    """Atomically and durably put ``content`` at ``path`` via a temporary file beside it.

    ``exclusive`` links the file into place, raising ``FileExistsError`` rather than
    replacing anything; otherwise it replaces. The directory still needs an fsync.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if exclusive:
            os.link(temporary, path)
        else:
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _has_content(path: Path, content: bytes) -> bool:
    try:
        return path.read_bytes() == content
    except FileNotFoundError:
        return False


def _make_directory(path: Path, changed: set[Path]) -> None:
    """Create ``path`` and missing parents, noting the directories that gained an entry."""
    if path.is_dir():
        return
    _make_directory(path.parent, changed)
    try:
        path.mkdir()
    except FileExistsError:
        return
    changed.add(path.parent)


def _in_parallel(function: Callable[[Any], None], items: list[Any]) -> None:
    if len(items) <= 1:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(max_workers=min(WRITER_THREADS, len(items))) as pool:
        for _ in pool.map(function, items):
            pass


def _subdirectories(path: Path) -> list[Path]:
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return []
    return [path / name for name in names if SHARD_NAME.match(name) and (path / name).is_dir()]
