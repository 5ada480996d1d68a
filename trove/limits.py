"""The limits on names, versions and file fields, and the media-type rule, in one place.

The ORM's columns decide the lengths (``models.py``); every backend and every entry point
(Python API, REST API, admin) applies the same limits, so that no backend stores what
another would refuse. The size and nesting limits that a deployment tunes are ``TROVE``
settings instead (``max_request_size``, ``max_json_depth``, …: see ``trove.conf``);
:func:`depth_problems` compares a value with ``max_json_depth``.
"""

from __future__ import annotations

import re
from typing import Any

from trove.conf import trove_settings
from trove.jsonvalues import json_depth, json_problems

#: Event versions (and link target versions): a 32-bit integer column.
MAX_VERSION = 2**31 - 1
#: A producer, a schema id, a link type.
MAX_NAME = 200
#: A schema version.
MAX_SCHEMA_VERSION = 50
#: A file's content type and its file name.
MAX_FILE_FIELD = 255
#: A file's ``sha256:<hex>`` hash.
MAX_HASH = 80

_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
#: A media type as RFC 9110 writes it: ``type/subtype`` and optional ``; name=value`` pairs,
#: with no control character anywhere (a header value must not end a line). Use ``fullmatch``.
MEDIA_TYPE = re.compile(
    rf'{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|"[^"\\\x00-\x1f\x7f]*"))*'
)

Problems = list[dict[str, str]]


def is_media_type(value: Any) -> bool:
    """Whether ``value`` is a ``type/subtype`` media type fit for a ``Content-Type`` header."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_FILE_FIELD
        and bool(MEDIA_TYPE.fullmatch(value))
    )


def name_problems(
    value: Any, field: str, limit: int = MAX_NAME, *, label: str | None = None
) -> Problems:
    """Why ``value`` cannot be a name (producer, schema id or version, link type): it must be
    a non-empty string of at most ``limit`` characters that every backend can store.
    ``label`` names it in the message (default: ``field``)."""
    label = label or field
    if not isinstance(value, str) or not value:
        return [{"field": field, "message": f"{label} must be a non-empty string."}]
    if len(value) > limit:
        return [{"field": field, "message": f"{label} is longer than {limit} characters."}]
    return json_problems(value, field)


def schema_version_problems(value: Any, field: str = "version") -> Problems:
    """A schema version to register: a name that can also be a URL segment (no ``/``)."""
    problems = name_problems(value, field, MAX_SCHEMA_VERSION)
    if not problems and "/" in value:
        problems.append({"field": field, "message": f"{field} may not contain '/'."})
    return problems


def filename_problems(value: Any, field: str = "filename") -> Problems:
    """A file name is optional (``None``); given, it is text of at most 255 characters."""
    if value is None:
        return []
    if not isinstance(value, str):
        return [{"field": field, "message": f"{field} must be a string."}]
    if len(value) > MAX_FILE_FIELD:
        return [{"field": field, "message": f"{field} is longer than {MAX_FILE_FIELD} characters."}]
    return json_problems(value, field)


def content_type_problems(value: Any, field: str = "contentType") -> Problems:
    """A content type must be a ``type/subtype`` media type without control characters."""
    if is_media_type(value):
        return []
    shown = repr(value)[:80]
    return [{"field": field, "message": f"{shown} is not a media type such as text/plain."}]


def depth_problems(value: Any, field: str) -> Problems:
    """``value`` nested deeper than ``TROVE["max_json_depth"]``, as a problem."""
    limit = trove_settings.max_json_depth
    if json_depth(value) > limit:
        return [{"field": field, "message": f"{field} is nested deeper than {limit} levels."}]
    return []
