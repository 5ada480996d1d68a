"""The addresses the REST API adds to documents, so that a browser or client can follow them.

An event document gets ``url`` (the address of that version), each of its files ``url``
(the record) and ``contentUrl`` (the bytes), each link's ``targetEvent`` a ``url`` (the
pinned version, else the event). They are addresses, not stored data: the canonical
documents of :mod:`trove.documents` never hold them, and importing a document ignores them.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework.request import Request

from trove.documents import Event, FileRecord, Link


def _address(request: Request, name: str, **kwargs: Any) -> str:
    return request.build_absolute_uri(reverse(name, kwargs=kwargs))


def _target(request: Request, target: dict[str, Any]) -> dict[str, Any]:
    if target.get("version") is None:
        url = _address(request, "trove-event-detail", event_id=target["id"])
    else:
        url = _address(
            request, "trove-event-version", event_id=target["id"], version=target["version"]
        )
    return {**target, "url": url}


def _file(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    return {
        **document,
        "url": _address(request, "trove-file-detail", file_id=document["id"]),
        "contentUrl": _address(request, "trove-file-content", file_id=document["id"]),
    }


def _link(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "targetEvent": _target(request, document["targetEvent"])}


def event_document(event: Event, request: Request) -> dict[str, Any]:
    """``event.to_dict()`` with the addresses of the version, its files and link targets."""
    document = event.to_dict()
    document["url"] = _address(
        request, "trove-event-version", event_id=str(event.uuid), version=event.version
    )
    document["files"] = [_file(request, item) for item in document["files"]]
    document["links"] = [_link(request, item) for item in document["links"]]
    return document


def file_document(record: FileRecord, request: Request) -> dict[str, Any]:
    """A file record with its own address and the address of its bytes."""
    return _file(request, record.to_dict())


def link_document(link: Link, request: Request) -> dict[str, Any]:
    """A link whose target carries its address."""
    return _link(request, link.to_dict())
