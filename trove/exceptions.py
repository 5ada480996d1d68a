"""Errors Trove raises, one tree so callers can catch as broadly as they need.

Every error carries a machine-readable ``code`` and, where several things can be
wrong at once, a ``problems`` list so that a client sees all of them in one answer.
The REST API maps these classes onto HTTP status codes (see ``trove.api.exceptions``).
"""

from __future__ import annotations

import errno
from typing import Any

#: The ``errno`` of a write that found no room (disk full, quota exceeded, file size
#: limit); storages translate an ``OSError`` with one of them into :class:`StorageFull`.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class TroveError(Exception):
    """Base class of every error Trove raises on purpose."""

    code = "trove_error"

    def __init__(self, message: str, *, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InvalidEvent(TroveError):
    """The event (or a part of it: id, links, files) is malformed or inconsistent."""

    code = "invalid_event"


class SchemaValidationError(TroveError):
    """The payload does not follow its registered JSON Schema.

    ``problems`` lists every violation, not only the first.
    """

    code = "schema_validation_failed"


class InvalidSchema(TroveError):
    """A JSON Schema document given for registration is not a valid schema."""

    code = "invalid_schema"


class SchemaNotFound(TroveError):
    """Strict mode is on and the event references a schema that is not registered."""

    code = "schema_not_found"


class QueryError(TroveError):
    """An EventQuery is malformed: unknown key, bad instant, negative limit, unknown sort field."""

    code = "invalid_query"


class StorageError(TroveError):
    """A storage backend failed to do what was asked."""

    code = "storage_error"


class StorageUnavailable(StorageError):
    """A storage backend cannot be reached (database down, object store unreachable)."""

    code = "storage_unavailable"


class StorageFull(StorageUnavailable):
    """A storage has no room left (disk full, quota exceeded, file size limit): nothing was
    written, and writes work again once space is freed."""

    code = "storage_full"


class NotFound(StorageError):
    """The event, version or file asked for does not exist."""

    code = "not_found"


class VersionConflict(StorageError):
    """The (event id, version) being written already exists, usually a concurrent append."""

    code = "version_conflict"


class FileIntegrityError(StorageError):
    """The bytes received do not match the hash the client declared for them."""

    code = "file_hash_mismatch"


class FileTooLarge(StorageError):
    """A file is larger than the ``max_file_size`` setting allows."""

    code = "file_too_large"
