"""A mixed corpus for the interchange tests: several schemas (one registered at two
versions, one never registered), every version of appended events, links (pinned and
not, with metadata), text and binary files, a file reference."""

from __future__ import annotations

import trove
from trove.documents import Event

BINARY = bytes(range(256)) * 40


def register_schemas() -> None:
    trove.register_schema(
        "note.created",
        "1.0",
        {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
    )
    trove.register_schema(
        "note.created",
        "2.0",
        {"type": "object", "required": ["text", "tags"]},
    )
    trove.register_schema("order.placed", "1.0", {"type": "object", "required": ["n"]})


def build_corpus(orders: int = 6) -> list[Event]:
    """Write the corpus into the configured store; every version written, oldest first."""
    register_schemas()
    written: list[Event] = []
    note = trove.create_event(
        {"id": "note.created", "version": "1.0"},
        {"text": "Annual report", "author": {"name": "Jane"}},
        producer="web-api",
        metadata={"ip": "10.0.0.1"},
        files=[
            trove.NewFile("plain text, é ✓", "text/plain", "notes.txt"),
            trove.NewFile(BINARY, "application/octet-stream", "blob.bin"),
            trove.FileReference("s3://archive/2026/report.pdf", "application/pdf", "report.pdf"),
        ],
    )
    written.append(note)
    written.append(trove.append_version(note.uuid, {"text": "Annual report (corrected)"}))
    written.append(
        trove.append_version(
            note.uuid,
            {"text": "Annual report v3", "tags": ["final"]},
            schema={"id": "note.created", "version": "2.0"},
            files=[trove.NewFile(b"\x00\x01appendix", "application/octet-stream", "a.bin")],
        )
    )
    for n in range(orders):
        order = trove.create_event(
            "order.placed",
            {"n": n, "customer": f"c{n % 3}"},
            producer="shop" if n % 2 else "batch",
            links=[
                {
                    "type": "about",
                    "targetEvent": {"id": str(note.uuid), "version": 1},
                    "metadata": {"why": "n"},
                }
            ],
        )
        written.append(order)
    reply = trove.create_event(
        "comment.unregistered",
        {"text": "Thanks!"},
        links=[
            {"type": "reply-to", "targetEvent": str(note.uuid)},
            {"type": "order", "targetEvent": str(written[-1].uuid)},
        ],
        files=[trove.NewFile("same text", "text/plain", "again.txt")],
    )
    written.append(reply)
    written.append(trove.append_version(reply.uuid, {"text": "Thanks again!"}))
    return written


#: Queries both sides of a move must answer alike.
QUERIES = [
    {},
    {"schema": "order.placed"},
    {"schema": "order.placed", "payload": {"customer": "c1"}},
    {"producer": ["shop"]},
    {"payload": {"author.name": "Jane"}},
    {"schema": "note.created", "sort": [{"field": "createdAt", "direction": "desc"}]},
    {"sort": [{"field": "payload.n", "direction": "desc"}], "limit": 3},
    {"links": [{"type": "reply-to"}]},
    {"timeRange": {"start": "2000-01-01T00:00:00Z"}, "producer": "batch"},
]


def answers(query_list=QUERIES) -> list[list[dict]]:
    """Each query's events as documents without position (positions differ by store)."""
    result = []
    for query in query_list:
        docs = []
        for event in trove.query_events(query):
            data = event.to_dict()
            data.pop("position", None)
            docs.append(data)
        result.append(docs)
    return result
