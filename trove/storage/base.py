"""The storage interfaces of the seed, as typed abstract classes.

Three roles: :class:`EventStorage` (save, get, query events), :class:`FileStorage` (save a
file, get its record, stream its bytes) and :class:`LinkStorage` (save a link, get the
links of an event, get the links pointing at an event; :class:`LinkReader` is its reading
half, what an event storage keeping links in its events offers). A backend may also be a
:class:`TransactionalStorage`, and an event storage an :class:`EventStatistics`.
``trove.testing.conformance`` holds every backend to these contracts; a third-party
backend is done when it passes that suite unchanged.

Backends translate their native errors at this boundary: a missing thing is ``None`` (or
:class:`~trove.exceptions.NotFound` where stated), a duplicate version is
:class:`~trove.exceptions.VersionConflict`, an unreachable service is
:class:`~trove.exceptions.StorageUnavailable`.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any, BinaryIO, ClassVar

from django.core.exceptions import ImproperlyConfigured

from trove.documents import Event, EventId, FileRecord, Link
from trove.query import EventQuery


class StoragePlugin(ABC):  # noqa: B024 - the role interfaces below add the abstract methods
    """A configured backend. Options come from ``TROVE["storage"][role]["options"]``.

    The constructor only checks options (``manage.py check`` builds plugins to find
    mistakes, so it must not connect anywhere); :meth:`initialize` acquires resources.
    """

    #: The roles ("events", "files", "links") this class can fill.
    roles: ClassVar[frozenset[str]] = frozenset()
    #: Accepted options and their defaults; anything else is a configuration error.
    option_defaults: ClassVar[dict[str, Any]] = {}
    #: Options without a default that must be given.
    required_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_defaults) - set(self.required_options))
        if unknown:
            known = sorted({*self.option_defaults, *self.required_options})
            raise ImproperlyConfigured(
                f"{type(self).__name__} does not accept option(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(known) or 'none'}."
            )
        missing = [name for name in self.required_options if options.get(name) in (None, "")]
        if missing:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs option(s) {', '.join(missing)}."
            )
        self.options = {**self.option_defaults, **options}

    def initialize(self) -> None:  # noqa: B027 - optional hook
        """Acquire connections, create tables or directories. Called once before first use."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`initialize` acquired. The plugin is not used afterwards."""

    def check(self) -> None:  # noqa: B027 - each role's interface below probes
        """Raise if the storage cannot answer now. ``GET /api/health/`` calls it on every
        request, so it must be cheap: one small read, never a scan."""


class TransactionalStorage(ABC):
    """A storage whose writes can be grouped: all become visible on commit or none do.

    Transactions nest: a begin inside a begin opens an inner scope (a savepoint) that
    commits into, or rolls back without disturbing, the outer one.
    """

    @abstractmethod
    def begin_transaction(self) -> None:
        """Open a (possibly nested) transaction scope on the calling thread."""

    @abstractmethod
    def commit_transaction(self) -> None:
        """Make the writes of the innermost scope part of the enclosing one (or durable)."""

    @abstractmethod
    def rollback_transaction(self) -> None:
        """Discard every write of the innermost scope."""

    def on_commit(self, callback: Callable[[], None]) -> bool:
        """Run ``callback`` once the writes made so far are durable, if this storage can
        tell when that is (then True); False leaves it to :func:`trove.transaction`."""
        return False


class EventStorage(StoragePlugin):
    """Saves, gets and queries events. Versions of one id are unique and immutable."""

    #: True when the events this storage saves keep their links queryable here, so that
    #: ``"links": "useEventStorage"`` needs no separate :meth:`LinkStorage.save_link` call.
    stores_links: ClassVar[bool] = False

    @abstractmethod
    def save_event(self, event: Event) -> Event:
        """Store one version. Raise ``VersionConflict`` if (id, version) already exists.

        The caller has validated the event and set ``created_at``; ``event.id.version`` is
        the latest stored version plus one. Saving it makes it the latest version.
        """

    def save_events(self, events: Iterable[Event]) -> list[Event]:
        """Store several versions at once; backends override this with a faster batch."""
        return [self.save_event(event) for event in events]

    @abstractmethod
    def get_event(self, event_id: uuid.UUID, version: int | None = None) -> Event | None:
        """The given version, or the latest when ``version`` is ``None``; ``None`` if absent."""

    def get_latest(self, event_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Event]:
        """The latest version of each of these events that exists, by id. Imports and
        exports ask for a page of ids at once; backends may answer in one query."""
        found = {}
        for event_id in event_ids:
            event = self.get_event(event_id)
            if event is not None:
                found[event_id] = event
        return found

    @abstractmethod
    def get_versions(self, event_id: uuid.UUID) -> list[Event]:
        """Every stored version of an event, oldest first; empty if the id is unknown."""

    @abstractmethod
    def query_events(self, query: EventQuery) -> list[Event]:
        """The latest versions matching ``query``, in its order, paged (SPEC §3)."""

    def count_events(self, query: EventQuery) -> int:
        """How many latest versions match ``query`` regardless of limit and offset."""
        return len(self.query_events(query.without_paging()))

    def check(self) -> None:
        """Raise if the storage cannot answer now; ``GET /api/health/`` calls it on every
        request, so it must be cheap. The default reads the last position."""
        self.last_position()

    # The feed (SPEC §9) ---------------------------------------------------------------
    #
    # ``save_event`` and ``save_events`` return the versions with their ``position`` when
    # the write has committed (inside an open transaction a backend may leave it unset
    # until the commit). A position is an integer > 0, unique in the store, and positions
    # follow commit order with no late arrivals: once any reader has seen P, no version
    # with a position <= P becomes visible later. Rolled-back writes may leave gaps.

    #: Seconds between two looks at :meth:`last_position` in the default
    #: :meth:`wait_for_position`.
    poll_interval: ClassVar[float] = 0.2

    @abstractmethod
    def read_feed(
        self,
        after: int = 0,
        limit: int = 1000,
        schemas: Collection[str] = (),
        producers: Collection[str] = (),
    ) -> list[Event]:
        """Up to ``limit`` committed versions with a position > ``after``, in position order,
        every version (not only the latest), optionally only of these schema ids/producers."""

    @abstractmethod
    def last_position(self) -> int:
        """The highest committed position (0 for an empty store)."""

    def wait_for_position(self, after: int, timeout: float) -> bool:
        """Wait until a position > ``after`` has committed, at most ``timeout`` seconds.

        True if one has. The default looks at :meth:`last_position` every
        :attr:`poll_interval`; a backend that can be woken by its database does better.
        """
        deadline = time.monotonic() + timeout
        while self.last_position() <= after:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.poll_interval, remaining))
        return True


class EventStatistics(ABC):
    """An optional capability of an event storage: the admin's aggregate questions
    answered from the storage's indexes instead of by scans through :meth:`query_events`.

    The admin asks ``isinstance(storage, EventStatistics)``, never for a backend class.
    Fields are ``schema``, ``producer`` and ``schemaVersion``; latest versions only.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ("schema", "producer", "schemaVersion")

    @abstractmethod
    def count_by_field(self, field: str, query: EventQuery) -> list[tuple[str, int]]:
        """``(value, events)`` for each value of ``field`` among the latest versions matching
        ``query``, most events first, then by value (``""`` for no schema version)."""

    @abstractmethod
    def count_per_day(self, start: datetime, end: datetime, zone: tzinfo) -> dict[date, int]:
        """Latest versions created from ``start`` to ``end`` (inclusive), per day in ``zone``
        (days without events left out)."""

    @abstractmethod
    def distinct_values(self, field: str, limit: int) -> list[str]:
        """Up to ``limit`` distinct values of ``field`` (schema or producer), sorted."""

    def estimate_count(self, query: EventQuery) -> int | None:
        """A cheap estimate of ``count_events(query)`` when counting exactly would be slow,
        or ``None``: count."""
        return None

    def schema_version_in_use(self, schema_id: str, version: str) -> bool:
        """Whether stored events use ``schema_id`` at ``version`` (here: latest versions)."""
        counts = dict(self.count_by_field("schemaVersion", EventQuery(schemas=(schema_id,))))
        return counts.get(version, 0) > 0


class LinkReader(StoragePlugin):
    """Answers the links between event versions in both directions.

    An event storage that keeps each event's links with it (``stores_links``) reads them
    but takes no link on its own: it is a reader, not a :class:`LinkStorage`.
    """

    def check(self) -> None:
        """Raise if the storage cannot answer now (cheap: ``GET /api/health/`` calls it).
        The default looks up the links of an event that does not exist."""
        self.get_links(EventId(uuid.UUID(int=0), 1))

    @abstractmethod
    def get_links(self, source: EventId, *, type: str | None = None) -> list[Link]:
        """The links carried by that exact version, in the order given, optionally by type."""

    @abstractmethod
    def get_backlinks(
        self, target: uuid.UUID, *, type: str | None = None
    ) -> list[tuple[EventId, Link]]:
        """Every (source version, link) whose link points at ``target``, any version of it."""


class LinkStorage(LinkReader):
    """Keeps links between event versions, saved one by one beside their events."""

    @abstractmethod
    def save_link(self, source: EventId, link: Link) -> None:
        """Record ``link`` as carried by version ``source.version`` of ``source.id``."""


@dataclass(frozen=True)
class StoredFile:
    """What :meth:`FileStorage.save_file` did: the record, and whether the bytes are new.

    ``new_content`` is False when identical bytes were already stored (content addressing);
    only new content may be removed again when the event that brought it fails.
    """

    record: FileRecord
    new_content: bool


class FileStorage(StoragePlugin):
    """Stores file bytes by content hash, plus one record per attached file."""

    #: Bytes read and written at a time; never a whole file in memory.
    chunk_size: ClassVar[int] = 1024 * 1024

    def check(self) -> None:
        """Raise if the storage cannot answer now (cheap: ``GET /api/health/`` calls it).
        The default looks up bytes that are not stored."""
        self.content_exists("sha256:" + "0" * 64)

    @abstractmethod
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
        """Stream ``content`` in, computing size and ``sha256:<hex>`` as it goes.

        Raise ``FileTooLarge`` past ``max_size`` and ``FileIntegrityError`` when the hash
        differs from ``expected_hash``; in both cases nothing is left stored. The record
        gets a new id unless ``file_id`` gives the one to keep (an import does: documents
        name their files by id).
        """

    @abstractmethod
    def save_reference(
        self,
        uri: str,
        *,
        content_type: str,
        filename: str | None = None,
        file_id: uuid.UUID | None = None,
    ) -> FileRecord:
        """Record bytes that live elsewhere (``s3://…``, ``https://…``) without fetching them;
        ``file_id`` as in :meth:`save_file`."""

    @abstractmethod
    def get_file(self, file_id: uuid.UUID) -> FileRecord | None:
        """The record of a file, or ``None``."""

    @abstractmethod
    def open_file(self, file_id: uuid.UUID) -> BinaryIO:
        """A readable binary stream of the bytes; ``NotFound`` if absent or a reference."""

    def get_file_data(self, file_id: uuid.UUID) -> Iterator[bytes]:
        """The bytes in chunks of :attr:`chunk_size` (the seed's ``getFileData``)."""
        with self.open_file(file_id) as stream:
            while chunk := stream.read(self.chunk_size):
                yield chunk

    @abstractmethod
    def delete_file(self, file_id: uuid.UUID, *, delete_content: bool) -> None:
        """Forget a record and, if ``delete_content``, its bytes (used to undo failed writes)."""

    @abstractmethod
    def content_exists(self, digest: str) -> bool:
        """Whether bytes with hash ``digest`` (``sha256:<hex>``) are stored."""

    def download_url(self, file_id: uuid.UUID, *, expires: int) -> str | None:
        """A short-lived URL a client can fetch the bytes from directly, if the backend has one."""
        return None
