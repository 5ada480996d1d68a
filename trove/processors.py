"""Processors (SPEC §9): named, durable consumers of the feed, run by ``trove_process``.

``TROVE["processors"] = {"name": {"handler": "dotted.path", "schema": [...],
"producer": [...]}}``. A handler is called with each matching version (a
:class:`~trove.documents.Event`), in position order, at least once. Its position is a
:class:`~trove.models.ProcessorPosition` row in the default database, whatever the event
backend, and each version is handled inside the database transaction that moves that row
past it: what the handler writes to the default database (rows of its own, or events in
an ORM event store there) commits together with the new position or not at all, so those
effects happen exactly once, even when the process is killed in the middle. That holds
with events in a JSON directory or in memory too: the position is never kept with them.

The handler also runs inside a :func:`trove.transaction`, so that a handler that raises
leaves no event behind in any event store. An event store outside the default database
(``storage-json-file``, ``storage-memory``, ``storage-sqlite``, an ORM store on another
database) commits just before the database does, and a crash in between would repeat
the version: events the handler creates there with :func:`create_derived_event` are then
found instead of created again (their ids are derived from the processor and the
version), so they too are created once. Other effects outside the default database
(e-mail, an appended version, another service) happen at least once: make them
idempotent.

A handler that raises rolls its version back, records the error and the number of
failures in a row, and is retried after a backoff (1 s, 2 s, 4 s … at most 5 minutes);
the other processors go on meanwhile.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import F
from django.utils.module_loading import import_string

import trove
from trove.conf import trove_settings
from trove.documents import Event
from trove.storage.handler import storages

logger = logging.getLogger(__name__)

#: Versions read from the feed at a time by one processor.
BATCH = 100
#: Backoff after the n-th failure in a row: FIRST_RETRY * 2**(n-1) seconds, at most MAX_RETRY.
FIRST_RETRY = 1.0
MAX_RETRY = 300.0
#: Keys a processor's settings may have.
KEYS = {"handler", "schema", "producer"}
#: The namespace of derived event ids (a UUID 5 of processor, source event and version).
DERIVED_IDS = uuid.UUID("0b9c5a2e-6f1d-5c3b-9a57-3e2f8d1c4b60")


@dataclass
class _Handling:
    """The version a handler is being called with, and the derived-event keys it used."""

    processor: str
    event: Event
    keys: set[str] = field(default_factory=set)


_handling: ContextVar[_Handling | None] = ContextVar("trove_processor_handling", default=None)


@dataclass
class Processor:
    """One entry of ``TROVE["processors"]``, its handler imported."""

    name: str
    handler: Callable[[Event], object]
    schemas: tuple[str, ...] = ()
    producers: tuple[str, ...] = ()
    retry_at: float = field(default=0.0, compare=False)
    failed: bool = field(default=False, compare=False)


def settings_problems(name: object, config: object) -> list[str]:
    """What is wrong with one processor's settings (empty when nothing is)."""
    if not isinstance(name, str) or not name or len(name) > 200:
        return [f"processor name {name!r} must be text of 1 to 200 characters"]
    if not isinstance(config, dict):
        return [f"processor {name!r} must be a dict with a 'handler'"]
    problems = [f"processor {name!r} has unknown key {key!r}" for key in sorted(set(config) - KEYS)]
    handler = config.get("handler")
    if not isinstance(handler, str):
        problems.append(f"processor {name!r} needs 'handler', the dotted path of a callable")
    else:
        try:
            if not callable(import_string(handler)):
                problems.append(f"processor {name!r}: {handler} is not callable")
        except ImportError as error:
            problems.append(f"processor {name!r}: cannot import {handler} ({error})")
    for key in ("schema", "producer"):
        values = config.get(key, [])
        if not isinstance(values, list | tuple) or not all(
            isinstance(value, str) and value for value in values
        ):
            problems.append(f"processor {name!r}: {key!r} must be a list of non-empty strings")
    return problems


def configured(names: Collection[str] = ()) -> list[Processor]:
    """The processors of the settings (only ``names``, if given), in settings order."""
    declared = trove_settings.processors
    unknown = sorted(set(names) - set(declared))
    if unknown:
        raise ImproperlyConfigured(
            f"No processor {', '.join(map(repr, unknown))} in TROVE['processors'] "
            f"(declared: {', '.join(map(repr, declared)) or 'none'})."
        )
    processors = []
    for name, config in declared.items():
        if names and name not in names:
            continue
        problems = settings_problems(name, config)
        if problems:
            raise ImproperlyConfigured("; ".join(problems) + ".")
        processors.append(
            Processor(
                name,
                import_string(config["handler"]),
                tuple(config.get("schema", ())),
                tuple(config.get("producer", ())),
            )
        )
    return processors


def position_of(name: str) -> int:
    from trove.models import ProcessorPosition

    row = ProcessorPosition.objects.using(DEFAULT_DB_ALIAS).filter(name=name).first()
    return row.position if row is not None else 0


def _locked_row(name: str):
    """The processor's row, created if new, locked until the transaction ends, so that two
    runners of one processor take turns rather than handle a version twice. The lock is a
    write (a row lock on PostgreSQL, the database's write lock on SQLite)."""
    from trove.models import ProcessorPosition

    rows = ProcessorPosition.objects.using(DEFAULT_DB_ALIAS).filter(name=name)
    if not rows.update(failures=F("failures")):
        ProcessorPosition.objects.using(DEFAULT_DB_ALIAS).get_or_create(name=name)
    return rows.get()


def _current() -> _Handling:
    handling = _handling.get()
    if handling is None:
        raise RuntimeError("Derived events are for a processor's handler, while it runs.")
    return handling


def derived_id(key: str = "") -> uuid.UUID:
    """The id of an event the running handler derives from the version in hand: the same
    on every attempt at that version by that processor, different for each ``key``."""
    handling = _current()
    source = handling.event
    name = f"{handling.processor}\n{source.uuid}\n{source.version}\n{key}"
    return uuid.uuid5(DERIVED_IDS, name)


def create_derived_event(
    schema: Any, payload: dict[str, Any], *, key: str = "", **options: Any
) -> Event:
    """:func:`trove.create_event`, from a processor's handler, with the id
    :func:`derived_id` gives ``key``; or, if an earlier attempt at this version already
    created that event (it committed in an event store outside the default database and
    the process died before the position did), that event, so that it exists once.

    Give each event a handler creates for one version its own ``key``. The first
    attempt's event is kept: a handler whose output differs from one attempt to the next
    still gets one event, the first.
    """
    handling = _current()
    identifier = derived_id(key)
    if key in handling.keys:
        raise ValueError(f"The key {key!r} already named an event derived from this version.")
    handling.keys.add(key)
    existing = storages.events.get_event(identifier)
    if existing is not None:
        return existing
    return trove.create_event(schema, payload, event_id=identifier, **options)


@contextmanager
def _handling_of(processor: Processor, event: Event) -> Iterator[None]:
    """The handler's call: in a Trove transaction, with :func:`derived_id` at hand."""
    token = _handling.set(_Handling(processor.name, event))
    try:
        with trove.transaction():
            yield
    finally:
        _handling.reset(token)


def handle_next(processor: Processor) -> int:
    """Handle the versions after the processor's position, up to :data:`BATCH`; how many.

    Each version is handled in its own transaction with the position update. A failure
    is recorded and schedules a retry; it ends this call (returning what was done).
    """
    from trove.models import ProcessorPosition

    storage = storages.events
    committed = storage.last_position()
    after = position_of(processor.name)
    events = storage.read_feed(after, BATCH, processor.schemas, processor.producers)
    done = 0
    for event in events:
        try:
            with transaction.atomic(using=DEFAULT_DB_ALIAS):
                row = _locked_row(processor.name)
                if row.position >= (event.position or 0):
                    continue  # another runner handled it meanwhile
                with _handling_of(processor, event):
                    processor.handler(event)
                row.position, row.failures, row.last_error = event.position, 0, ""
                row.save()
        except Exception as error:
            _failed(processor, event, error)
            return done
        done += 1
        processor.failed = False
    if len(events) < BATCH and committed > after:
        # Every version up to `committed` was visible to the read (no late arrivals): the
        # ones it did not return do not match, so the position may move past them.
        with transaction.atomic(using=DEFAULT_DB_ALIAS):
            row = _locked_row(processor.name)
            if row.position < committed:
                ProcessorPosition.objects.using(DEFAULT_DB_ALIAS).filter(name=row.name).update(
                    position=committed
                )
    return done


def _failed(processor: Processor, event: Event, error: Exception) -> None:
    from trove.models import ProcessorPosition

    with transaction.atomic(using=DEFAULT_DB_ALIAS):
        row = _locked_row(processor.name)
        row.failures += 1
        row.last_error = (
            f"at position {event.position} (event {event.uuid} v{event.version}): "
            + "".join(traceback.format_exception_only(error)).strip()
        )
        ProcessorPosition.objects.using(DEFAULT_DB_ALIAS).filter(name=row.name).update(
            failures=row.failures, last_error=row.last_error
        )
    delay = min(FIRST_RETRY * 2 ** (row.failures - 1), MAX_RETRY)
    processor.retry_at = time.monotonic() + delay
    processor.failed = True
    logger.error(
        "Processor %r failed %s; retrying in %.0f s.",
        processor.name,
        row.last_error,
        delay,
        exc_info=error,
    )


def run(
    processors: list[Processor],
    *,
    once: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    idle_wait: float = 1.0,
) -> bool:
    """Run processors until ``should_stop`` (or, with ``once``, until each has handled
    what is there or failed). True when none is left failing."""
    while not should_stop():
        busy = False
        for processor in processors:
            if processor.failed and once:
                continue
            if time.monotonic() < processor.retry_at or should_stop():
                continue
            busy = handle_next(processor) > 0 or busy
        if once and not busy:
            break
        if not busy:
            healthy = [p for p in processors if not p.failed]
            if healthy:
                low = min(position_of(p.name) for p in healthy)
                storages.events.wait_for_position(low, idle_wait)
            else:
                time.sleep(idle_wait)
    return not any(processor.failed for processor in processors)
