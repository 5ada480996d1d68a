"""Waking feed readers when PostgreSQL commits: one ``LISTEN`` connection per process.

Every write on PostgreSQL sends ``NOTIFY trove_feed, '<last position>'`` in its own
transaction (see ``ORMEventStorage._counter_statement``), which PostgreSQL delivers only
once that transaction commits. A process keeps a single listening connection per
database, on a daemon thread, whatever the number of followers and event streams it
serves: waiting costs no connection from Django's pool and no query. While the listener
is down (the server restarted, the network failed) waiters fall back to polling, and
look again each time it reconnects, so a notification lost in between only costs latency.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: While listening, waiters still look at the database this often, as a safety net.
RECHECK_LISTENING = 5.0
#: Seconds between reconnection attempts of a listener that lost its connection.
RECONNECT_DELAY = 1.0
#: How often the listening thread looks whether it was asked to stop.
STOP_CHECK = 0.5


class CommitListener:
    """Listens on one channel of one database and wakes the threads waiting for it."""

    def __init__(self, params: dict[str, Any], channel: str) -> None:
        self._params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context")}
        self._channel = channel
        self._condition = threading.Condition()
        self._latest = 0  # the highest position notified since the listener started
        self._connects = 0  # bumped on each (re)connection: waiters then look again
        self._listening = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopping = threading.Event()

    def _ensure_running(self) -> None:
        with self._condition:
            alive = self._thread is not None and self._thread.is_alive()
            if alive and self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a forked child starts its own listener
            self._listening = False
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(self._stopping,),
                name=f"trove-listen-{self._channel}",
                daemon=True,
            )
            self._thread.start()
            self._condition.wait_for(lambda: self._listening, timeout=5)

    def _run(self, stopping: threading.Event) -> None:
        import psycopg

        while not stopping.is_set():
            try:
                with psycopg.connect(**self._params, autocommit=True) as connection:
                    connection.execute(f"LISTEN {self._channel}")
                    with self._condition:
                        self._listening = True
                        self._connects += 1
                        self._condition.notify_all()
                    while not stopping.is_set():
                        for notice in connection.notifies(timeout=STOP_CHECK):
                            with self._condition:
                                if notice.payload.isdigit():
                                    self._latest = max(self._latest, int(notice.payload))
                                self._condition.notify_all()
            except Exception as error:  # any failure: poll meanwhile, then reconnect
                logger.warning("Trove: listening on %s failed (%s).", self._channel, error)
            with self._condition:
                self._listening = False
                self._condition.notify_all()
            if stopping.wait(RECONNECT_DELAY):
                return

    def stop(self) -> None:
        """Close the listening connection (within a second); the next wait restarts it."""
        with self._condition:
            thread = self._thread
            self._thread = None
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            self._stopping.set()
            thread.join(STOP_CHECK + RECONNECT_DELAY + 1)

    def wait(
        self, after: int, timeout: float, last_position: Callable[[], int], poll: float
    ) -> bool:
        """Wait until a position > ``after`` commits (True) or ``timeout`` passes (False)."""
        self._ensure_running()
        deadline = time.monotonic() + timeout
        with self._condition:
            connects = self._connects
        if last_position() > after:
            return True
        while True:
            with self._condition:
                if self._latest > after:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                step = RECHECK_LISTENING if self._listening else poll
                notified = self._condition.wait(min(remaining, step))
                if self._latest > after:
                    return True
                reconnected = self._connects != connects
                connects = self._connects
            if (not notified or reconnected) and last_position() > after:
                return True


_listeners: dict[tuple, CommitListener] = {}
_lock = threading.Lock()


def stop_listeners() -> None:
    """Close every listening connection of this process (tests drop their databases)."""
    with _lock:
        listeners = list(_listeners.values())
    for listener in listeners:
        listener.stop()


def listener_for(params: dict[str, Any], channel: str) -> CommitListener:
    """This process's listener for the database that ``params`` connect to."""
    key = (
        params.get("host"),
        params.get("port"),
        params.get("dbname"),
        params.get("user"),
        channel,
    )
    with _lock:
        if key not in _listeners:
            _listeners[key] = CommitListener(params, channel)
        return _listeners[key]
