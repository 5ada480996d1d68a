"""A create repeated with the same client-chosen id answers the event it stored.

A client that supplies the event id and loses the response (a timeout, a dropped
connection, a retry by a proxy) sends the same request again. Answering that repeat with
409 would tell it the write failed when it did not; answering with the stored event (200)
makes the retry harmless. Only a true repeat gets that answer: the same schema, producer,
payload, metadata, links and files (bytes compared by hash). Anything else under a used
id is still the 409 of a version conflict, so a stored event is never silently replaced.
"""

from __future__ import annotations

import hashlib
from typing import Any

import trove
from trove.documents import Event, FileRecord, Link, SchemaRef
from trove.exceptions import NotFound, TroveError
from trove.service import FileReference, NewFile

_CHUNK = 1024 * 1024


def stored_repeat(creation: dict[str, Any]) -> Event | None:
    """The stored version 1 of ``creation``'s chosen id if ``creation`` repeats it exactly.

    ``creation`` holds the keyword arguments of :func:`trove.create_event` that failed with
    a version conflict; ``None`` when no id was chosen or the stored event differs.
    """
    if creation.get("event_id") is None:
        return None
    try:
        stored = trove.get_event(creation["event_id"], 1)
    except (NotFound, TroveError):
        return None
    schema = creation["schema"]
    wanted = schema if isinstance(schema, SchemaRef) else None
    same = (
        (wanted.id if wanted else _schema_id(schema)) == stored.schema.id
        and (wanted is None or wanted.version in (None, stored.schema.version))
        and creation.get("producer", "core") == stored.producer
        and creation["payload"] == stored.payload
        and (creation.get("metadata") or {}) == stored.metadata
        and _same_links(creation.get("links") or (), stored.links)
        and _same_files(creation.get("files") or (), stored.files)
    )
    return stored if same else None


def _schema_id(schema: Any) -> Any:
    return schema.get("id") if isinstance(schema, dict) else schema


def _same_links(sent: Any, stored: tuple[Link, ...]) -> bool:
    links = [Link.from_dict(link) for link in sent]
    if len(links) != len(stored):
        return False
    return all(
        link.type == kept.type
        and link.target.id == kept.target.id
        and link.target.version in (None, kept.target.version)
        and link.metadata == kept.metadata
        for link, kept in zip(links, stored, strict=True)
    )


def _same_files(sent: Any, stored: tuple[FileRecord, ...]) -> bool:
    files = list(sent)
    if len(files) != len(stored):
        return False
    return all(_same_file(new, kept) for new, kept in zip(files, stored, strict=True))


def _same_file(new: NewFile | FileReference, kept: FileRecord) -> bool:
    if new.content_type != kept.content_type or (new.filename or None) != (kept.filename or None):
        return False
    if isinstance(new, FileReference):
        return kept.is_reference and new.uri == kept.uri
    return not kept.is_reference and _sha256(new) == kept.hash


def _sha256(new: NewFile) -> str | None:
    """The hash of ``new``'s bytes, read again from the start; ``None`` if they cannot be."""
    stream = new.stream()
    try:
        stream.seek(0)
    except (AttributeError, OSError, ValueError):
        return None
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return "sha256:" + digest.hexdigest()
