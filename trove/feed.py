"""The feed (SPEC §9): every stored version in position order, read in pages or followed.

Positions follow commit order with no late arrivals (each backend says how it keeps that
promise), so "everything after the last position I saw" is a complete answer: a reader
that remembers one integer never misses a version and never sees one twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable

from trove.documents import Event
from trove.exceptions import InvalidEvent
from trove.storage.handler import storages

__all__ = ["follow", "read_feed", "tail"]

#: The most versions one read of the feed returns.
MAX_LIMIT = 1000


def _names(value: str | Iterable[str] | None, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(
        isinstance(name, str) and name for name in names
    ):
        raise InvalidEvent(f"{field} must be a non-empty string or a list of them.")
    return tuple(names)


def _position(after: int) -> int:
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise InvalidEvent(f"after must be a position (an integer >= 0), not {after!r}.")
    return after


def read_feed(
    after: int = 0,
    limit: int = MAX_LIMIT,
    schema: str | Iterable[str] | None = None,
    producer: str | Iterable[str] | None = None,
) -> list[Event]:
    """Up to ``limit`` (at most 1000) versions with a position > ``after``, in position
    order, optionally only of the given schema id(s) and producer(s)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidEvent(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}.")
    return storages.events.read_feed(
        _position(after), limit, _names(schema, "schema"), _names(producer, "producer")
    )


def tail(
    after: int = 0,
    schema: str | Iterable[str] | None = None,
    producer: str | Iterable[str] | None = None,
    *,
    wait: float = 5.0,
    on_idle: Callable[[], None] | None = None,
) -> Generator[Event | None, None, None]:
    """Versions after ``after`` as they commit, and ``None`` after each ``wait`` seconds
    (at most) without one, so that a caller can do something while idle. ``on_idle`` is
    called each time it is about to wait (to release database connections, say).

    With a filter, the versions it skips still move the cursor: a read that returns less
    than a page has seen every version up to the last position committed before it (no
    late arrivals), so waiting resumes from there, not from the last match. They wake it
    without being yielded, so the ``wait`` is counted from the last thing yielded: a
    caller hears ``None`` on time however busy the rest of the store is. Without a
    filter the last version read is the cursor, and that look-up is spared.
    """
    schemas, producers = _names(schema, "schema"), _names(producer, "producer")
    filtered = bool(schemas or producers)
    cursor = _position(after)
    quiet_since = time.monotonic()
    while True:
        storage = storages.events
        committed = storage.last_position() if filtered else 0
        events = storage.read_feed(cursor, MAX_LIMIT, schemas, producers)
        if events:
            yield from events
            cursor = events[-1].position or cursor
            quiet_since = time.monotonic()
        if len(events) == MAX_LIMIT:
            continue
        cursor = max(cursor, committed)
        if on_idle is not None:
            on_idle()
        remaining = quiet_since + wait - time.monotonic()
        if remaining <= 0 or not storage.wait_for_position(cursor, remaining):
            yield None
            quiet_since = time.monotonic()


def follow(
    after: int = 0,
    schema: str | Iterable[str] | None = None,
    producer: str | Iterable[str] | None = None,
) -> Generator[Event, None, None]:
    """Every version after ``after`` in position order, waiting for new ones for ever.

    On PostgreSQL a commit wakes the follower at once (LISTEN/NOTIFY); other backends are
    polled a few times a second. Remember the ``position`` of the last version handled
    and pass it as ``after`` to resume.
    """
    for event in tail(after, schema, producer):
        if event is not None:
            yield event
