"""The addresses the REST API adds to documents, so that a browser or client can follow them.

An event document gets ``url`` (the address of that version), each of its files ``url``
(the record) and ``contentUrl`` (the bytes), each link's ``targetEvent`` a ``url`` (the
pinned version, else the event). They are addresses, not stored data: the canonical
documents of :mod:`trove.documents` never hold them, and importing a document ignores them.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from rest_framework.request import Request

from trove.documents import Event, FileRecord, Link

#: Values that stand in a URL as they are and match every pattern of these URLs: the
#: UUIDs and version numbers of stored events and files.
_PLAIN = re.compile(r"[0-9A-Za-z-]+")
_MARK = "trovevalue{}trovevalue"
_templates: dict[tuple[Any, ...], str] = {}


def path(name: str, **kwargs: Any) -> str:
    """``reverse(name, kwargs=kwargs)``, from a template reversed once per URL name.

    A page of events holds an address per event, file and link target, and ``reverse``
    takes longer than building the rest of the document; the URLs differ only in their
    values, so each is reversed once with marks in their place, which are then replaced.
    A value that is not plain (see ``_PLAIN``) is reversed as usual.
    """
    values = {key: str(value) for key, value in kwargs.items()}
    if not all(_PLAIN.fullmatch(value) for value in values.values()):
        return reverse(name, kwargs=kwargs)
    key = (get_urlconf(), get_script_prefix(), name, *sorted(values))
    template = _templates.get(key)
    if template is None:
        marks = {field: _MARK.format(index) for index, field in enumerate(sorted(values))}
        try:
            template = reverse(name, kwargs=marks)  # quoted: it holds no braces
        except NoReverseMatch:  # a pattern the marks do not fit: no template
            return reverse(name, kwargs=kwargs)
        for field, mark in marks.items():
            template = template.replace(mark, "{" + field + "}")
        _templates[key] = template
    return template.format(**values)


def _address(request: Request, name: str, **kwargs: Any) -> str:
    return request.build_absolute_uri(path(name, **kwargs))


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
