"""What a benchmark run is doing while it runs: the area, the benchmark, how far it is.

The runner names the area (``[ingest 1/7]``); the shared timing helpers of
``benchmarks.measure`` report each round of each measure, so every area that uses them
shows its progress without code of its own, and a module may report more with
:func:`note` or :func:`steps`. On a terminal each group of steps is a tqdm bar that
clears when done; otherwise (a log, CI) each step is one plain line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_prefix = ""


def start_area(area: str, index: int, total: int) -> None:
    """Name the area that runs now, the ``index``-th (from 1) of ``total``."""
    global _prefix
    _prefix = f"[{area} {index}/{total}]"
    note("started")


def note(text: str) -> None:
    """One line of progress under the current area."""
    print(f"{_prefix} {text}".strip(), flush=True)


@contextmanager
def steps(label: str, total: int) -> Iterator[Callable[[str], None]]:
    """``total`` steps of ``label``: call the yielded function with each step's name as it
    starts."""
    if sys.stdout.isatty():
        from tqdm import tqdm

        with tqdm(total=total, desc=f"{_prefix} {label}", leave=False) as bar:
            started = False

            def advance(step: str) -> None:
                nonlocal started
                if started:
                    bar.update()
                started = True
                bar.set_postfix_str(step)

            yield advance
            bar.update()
        return
    done = 0

    def line(step: str) -> None:
        nonlocal done
        done += 1
        note(f"{label}: {done}/{total} {step}")

    yield line
