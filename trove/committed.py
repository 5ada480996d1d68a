"""``event_committed`` (SPEC §4): sent once per event after its write is durable.

A write inside a transaction is durable only when the outermost transaction commits, and
never if it rolls back. A storage that knows when that is (the ORM backends: Django's
``transaction.on_commit``, which also covers a caller's own ``atomic`` block) says so
through :meth:`~trove.storage.base.TransactionalStorage.on_commit`; for the others, the
events wait in the scopes of :func:`trove.transaction`, kept here per thread. Receivers
run with ``send_robust``: an error is logged, and the write stays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from trove import signals
from trove.documents import Event
from trove.storage.base import TransactionalStorage
from trove.storage.handler import storages

logger = logging.getLogger(__name__)
_local = threading.local()


def _scopes() -> list[list[Event]]:
    if not hasattr(_local, "scopes"):
        _local.scopes = []
    return _local.scopes


@contextmanager
def scope() -> Iterator[None]:
    """One :func:`trove.transaction`: events written inside are sent after the outermost
    one commits, and forgotten if this one fails."""
    scopes = _scopes()
    scopes.append([])
    try:
        yield
    except BaseException:
        scopes.pop()
        raise
    events = scopes.pop()
    if scopes:
        scopes[-1].extend(events)
    else:
        send(events)


def after_write(events: list[Event]) -> None:
    """Send ``event_committed`` for these stored events once they are durable."""
    signal = signals.event_committed
    if not events or not signal.receivers or not signal.has_listeners(Event):
        return  # nothing connected at all: the common case, told apart without a look-up
    storage = storages.events
    if isinstance(storage, TransactionalStorage) and storage.on_commit(lambda: send(events)):
        return
    scopes = _scopes()
    if scopes:
        scopes[-1].extend(events)
    else:
        send(events)


def with_positions(events: list[Event]) -> list[Event]:
    """The events as stored. A storage that gives positions only when its transaction
    commits (``storage-json-file``) returned them without; once no transaction is open
    any more, they are read back with their positions."""
    if _scopes() or all(event.position is not None for event in events):
        return events
    storage = storages.events
    return [
        event
        if event.position is not None
        else storage.get_event(event.uuid, event.version) or event
        for event in events
    ]


def send(events: list[Event]) -> None:
    """Send the signal for each event, with its position; a failing receiver is logged,
    never raised."""
    for event in with_positions(events):
        for receiver, error in signals.event_committed.send_robust(sender=Event, event=event):
            if isinstance(error, Exception):
                logger.error(
                    "event_committed receiver %r failed for event %s v%d.",
                    receiver,
                    event.uuid,
                    event.version,
                    exc_info=error,
                )
