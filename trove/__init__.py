"""Trove for Django: an event store with files and links, as a reusable app.

The Python API is re-exported here lazily (importing ``trove`` must not import models
before Django's app registry is ready)::

    import trove

    trove.register_schema("note.created", "1.0", {"type": "object", "required": ["text"]})
    note = trove.create_event("note.created", {"text": "hello"}, producer="web")
    trove.query_events({"schema": "note.created", "payload": {"text": "hello"}})
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Event",
    "EventId",
    "EventQuery",
    "FileRecord",
    "FileReference",
    "Link",
    "NewFile",
    "SchemaRef",
    "append_version",
    "count_events",
    "create_event",
    "create_events",
    "follow",
    "get_backlinks",
    "get_event",
    "get_file",
    "get_linked_events",
    "get_links",
    "get_versions",
    "import_event",
    "open_file",
    "query_events",
    "read_feed",
    "register_schema",
    "transaction",
]

_SOURCES = {
    "Event": "trove.documents",
    "EventId": "trove.documents",
    "FileRecord": "trove.documents",
    "Link": "trove.documents",
    "SchemaRef": "trove.documents",
    "EventQuery": "trove.query",
    "follow": "trove.feed",
    "import_event": "trove.interchange",
    "read_feed": "trove.feed",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'trove' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_SOURCES.get(name, "trove.service")), name)
    globals()[name] = value  # later look-ups skip this function
    return value
