"""Builds the storage of each role from ``TROVE["storage"]``, lazily, once, like Django's
``StorageHandler``: a role maps to ``{"plugin": …, "options": {…}}`` where the plugin is an
official name (``storage-orm`` …) or a dotted path to a :class:`StoragePlugin` subclass.
``"links": "useEventStorage"`` (the default) makes the event storage keep the links too.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from trove.conf import DEFAULT_STORAGE, trove_settings
from trove.storage.base import EventStorage, FileStorage, LinkReader, LinkStorage, StoragePlugin

ROLES = ("events", "files", "links")
USE_EVENT_STORAGE = "useEventStorage"
ROLE_INTERFACES = {"events": EventStorage, "files": FileStorage, "links": LinkStorage}

#: Official plugin names → the class that fills each role they support.
PLUGINS: dict[str, dict[str, str]] = {
    "storage-orm": {
        "events": "trove.storage.orm.ORMEventStorage",
        "links": "trove.storage.orm.ORMEventStorage",
    },
    "storage-sqlite": {
        "events": "trove.storage.orm.SQLiteEventStorage",
        "links": "trove.storage.orm.SQLiteEventStorage",
    },
    # Links live inside the event documents: only "useEventStorage" can keep them there.
    "storage-json-file": {"events": "trove.storage.jsonfile.JSONFileEventStorage"},
    "storage-memory": {
        "events": "trove.storage.memory.MemoryEventStorage",
        "links": "trove.storage.memory.MemoryLinkStorage",
        "files": "trove.storage.memory.MemoryFileStorage",
    },
    "storage-file-system": {"files": "trove.storage.files.FileSystemFileStorage"},
    "storage-s3": {"files": "trove.storage.files.S3FileStorage"},
}


class InvalidStorageError(ImproperlyConfigured):
    """A storage role is misconfigured; the message names the role and what is wrong."""

    def __init__(self, role: str, message: str, hint: str | None = None) -> None:
        super().__init__(f'TROVE["storage"]["{role}"]: {message}')
        self.role = role
        self.hint = hint


def resolve_class(role: str, plugin: Any) -> type[StoragePlugin]:
    """The class a plugin name or dotted path stands for, checked to fit ``role``."""
    if not isinstance(plugin, str) or not plugin:
        raise InvalidStorageError(role, f"'plugin' must be a name or dotted path, not {plugin!r}.")
    if plugin in PLUGINS:
        path = PLUGINS[plugin].get(role)
        if path is None:
            fits = sorted(name for name, roles in PLUGINS.items() if role in roles)
            raise InvalidStorageError(
                role,
                f"plugin {plugin!r} cannot store {role}.",
                hint=f"Plugins for {role}: {', '.join(fits)}.",
            )
    elif "." in plugin:
        path = plugin
    else:
        raise InvalidStorageError(
            role,
            f"unknown plugin {plugin!r}.",
            hint=f"Use one of {', '.join(sorted(PLUGINS))}, or a dotted path to a class.",
        )
    try:
        cls = import_string(path)
    except ImportError as error:
        raise InvalidStorageError(role, f"cannot import {path!r}: {error}") from error
    interface = ROLE_INTERFACES[role]
    if not (isinstance(cls, type) and issubclass(cls, interface)):
        raise InvalidStorageError(role, f"{path} is not a subclass of {interface.__name__}.")
    return cls


def role_config(storage: dict[str, Any], role: str) -> tuple[Any, dict[str, Any]]:
    """Split one role's configuration into (plugin, options), validating its shape; the
    plugin is checked by :func:`resolve_class`."""
    config = storage.get(role)
    if isinstance(config, str):
        return config, {}
    if not isinstance(config, dict):
        raise InvalidStorageError(role, "must be {'plugin': …, 'options': {…}}.")
    unknown = sorted(set(config) - {"plugin", "options"})
    if unknown:
        raise InvalidStorageError(role, f"unknown key(s) {', '.join(unknown)}.")
    options = config.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidStorageError(role, "'options' must be an object.")
    return config.get("plugin"), options


class StorageHandler:
    """Role → storage instance, built on first use and cached until settings change.

    ``config`` (a dict shaped like ``TROVE["storage"]``) makes a handler of its own for
    another store, as ``manage.py trove_copy --to`` needs; by default it is the setting.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._config = None if config is None else {**DEFAULT_STORAGE, **config}
        self._instances: dict[str, StoragePlugin] = {}
        self._built_from: dict[str, Any] | None = None
        self._lock = threading.RLock()

    @property
    def config(self) -> dict[str, Any]:
        """The storage configuration this handler builds from."""
        return trove_settings.storage if self._config is None else self._config

    @property
    def links_use_event_storage(self) -> bool:
        return self.config.get("links") == USE_EVENT_STORAGE

    def build(self, role: str) -> StoragePlugin:
        """A new, uninitialized plugin for ``role``; raises :class:`InvalidStorageError`."""
        storage = self.config
        unknown = sorted(set(storage) - set(ROLES))
        if unknown:
            raise InvalidStorageError(unknown[0], f"unknown role; roles are {', '.join(ROLES)}.")
        plugin, options = role_config(storage, role)
        if role == "links" and plugin == USE_EVENT_STORAGE:
            events_plugin, _ = role_config(storage, "events")
            if not getattr(resolve_class("events", events_plugin), "stores_links", False):
                raise InvalidStorageError(
                    "links",
                    f"the event storage {events_plugin!r} cannot keep links.",
                    hint="Configure a link storage plugin for 'links'.",
                )
            return self.build("events")
        cls = resolve_class(role, plugin)
        try:
            return cls(**options)
        except ImproperlyConfigured as error:
            hint = getattr(error, "hint", None)
            raise InvalidStorageError(role, str(error), hint=hint) from error

    def __getitem__(self, role: str) -> StoragePlugin:
        # Built already (every call but the first): read without the lock, as the dict is
        # only ever replaced whole (``close_all``) or given a new key under it.
        instance = self._instances.get(role)
        if instance is not None:
            return instance
        if role not in ROLES:
            raise KeyError(role)
        with self._lock:
            if role == "links" and self.links_use_event_storage:
                return self["events"]
            if role not in self._instances:
                instance = self.build(role)
                instance.initialize()
                self._instances[role] = instance
                self._built_from = self.config
            return self._instances[role]

    @property
    def events(self) -> EventStorage:
        return self["events"]  # type: ignore[return-value]

    @property
    def files(self) -> FileStorage:
        return self["files"]  # type: ignore[return-value]

    @property
    def links(self) -> LinkReader:
        """What answers links: the event storage itself under ``"useEventStorage"``."""
        return self["links"]  # type: ignore[return-value]

    @property
    def link_writer(self) -> LinkStorage:
        """The separate link storage that saves each link beside its event."""
        links = self["links"]
        if self.links_use_event_storage or not isinstance(links, LinkStorage):
            raise InvalidStorageError("links", "the event storage keeps the links itself.")
        return links

    def reset_if_changed(self) -> None:
        """Rebuild on next use only if ``TROVE["storage"]`` differs from what was built,
        so that changing another TROVE key keeps (in-memory) storages as they are."""
        if self._built_from is not None and self._built_from != self.config:
            self.close_all()

    def close_all(self) -> None:
        """Shut every built storage down and forget it; the next use builds afresh."""
        with self._lock:
            instances, self._instances = self._instances, {}
            self._built_from = None
        for instance in instances.values():
            instance.shutdown()


storages = StorageHandler()


@receiver(setting_changed)
def _reset_storages(*, setting: str, **kwargs: Any) -> None:
    if setting == "TROVE":
        storages.reset_if_changed()
    elif setting in ("MEDIA_ROOT", "DATABASES"):
        storages.close_all()
