"""Processor handlers used by the tests (``TROVE["processors"]`` names them by path)."""

import os
import time

import trove

calls: list = []


def record(event) -> None:
    calls.append(event)


def derive(event) -> None:
    """Write a derived event linked to its source: the database effect to count."""
    time.sleep(float(os.environ.get("TROVE_TEST_HANDLER_DELAY", "0")))
    trove.create_event(
        "work.done",
        {"source": str(event.uuid)},
        links=[{"type": "source", "targetEvent": {"id": str(event.uuid), "version": 1}}],
    )


def derive_then_fail_on_odd(event) -> None:
    """Writes first, then fails for odd payloads: the write must be undone with it."""
    derive(event)
    if event.payload.get("n", 0) % 2:
        raise ValueError(f"odd n {event.payload['n']}")
