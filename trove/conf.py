"""The ``TROVE`` setting: its defaults, and one cached view of it reset on ``setting_changed``.

Keys (all optional):

``storage``
    ``{"events": …, "files": …, "links": …}`` as SPEC §2; each role is
    ``{"plugin": name-or-dotted-path, "options": {…}}``; ``links`` may be ``"useEventStorage"``.
``strict_schemas``
    Reject events whose schema is not registered (default ``False``).
``anonymous_read``
    Let anonymous users read through the REST API (default ``False``).
``max_file_size``
    Largest accepted file in bytes, or ``None`` for no limit (413 beyond it). Files stream
    and never count towards ``max_request_size``.
``max_request_size``
    Largest JSON (non-file) request body in bytes (default 10 MiB; 413 beyond it).
``max_json_depth``
    Deepest nesting of a payload, metadata, query or schema (default 64; 400 beyond it).
``max_query_terms``
    Most values in one query: ``in`` lists, object values, predicates (default 1000; 400
    beyond it).
``processors``
    Durable consumers of the feed (SPEC §9): ``{name: {"handler": "dotted.path",
    "schema": [...], "producer": [...]}}`` (default none).
``presigned_downloads`` / ``presigned_expiry``
    Redirect file downloads to a presigned URL where the file storage can make one, valid
    for ``presigned_expiry`` seconds (default ``False`` / ``300``).
``bind_producer_to_user``
    Set ``producer`` of events written through the REST API to the user's username.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    "storage": {},
    "strict_schemas": False,
    "anonymous_read": False,
    "max_file_size": None,
    "max_request_size": 10 * 1024 * 1024,
    "max_json_depth": 64,
    "max_query_terms": 1000,
    "processors": {},
    "presigned_downloads": False,
    "presigned_expiry": 300,
    "bind_producer_to_user": False,
}

DEFAULT_STORAGE: dict[str, Any] = {
    "events": {"plugin": "storage-orm", "options": {"database": "default"}},
    "files": {"plugin": "storage-file-system", "options": {}},
    "links": "useEventStorage",
}


def default_files_directory() -> str:
    """Where ``storage-file-system`` keeps bytes when no directory is configured."""
    return os.path.join(str(settings.MEDIA_ROOT or "."), "trove")


class TroveSettings:
    """Attribute access to ``settings.TROVE`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    @property
    def raw(self) -> dict[str, Any]:
        value = getattr(settings, "TROVE", {})
        return value if isinstance(value, dict) else {}

    def _merged(self) -> dict[str, Any]:
        if self._cache is None:
            merged = {**DEFAULTS, **self.raw}
            merged["storage"] = {**DEFAULT_STORAGE, **(self.raw.get("storage") or {})}
            self._cache = merged
        return self._cache

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._merged()[name]
        except KeyError:
            raise AttributeError(f"TROVE has no setting {name!r}") from None

    def reset(self) -> None:
        self._cache = None


trove_settings = TroveSettings()


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("TROVE", "MEDIA_ROOT"):
        trove_settings.reset()
