"""Timing helpers shared by the benchmark modules.

Machines are shared and noisy, so a figure and its reference are measured in alternation,
round after round, and each is the median of its rounds: a burst of load elsewhere hits
both sides rather than one. Both helpers report their progress (``benchmarks.progress``),
labelled with what the caller passes or else the calling function's name.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from benchmarks import progress


def _caller_label(label: str | None) -> str:
    """``label``, or the name of the function that called the helper (``sqlite_figures``
    reads "sqlite figures")."""
    return label or sys._getframe(2).f_code.co_name.replace("_", " ").strip()


def seconds(work: Callable[[], object]) -> float:
    """Wall-clock seconds ``work()`` takes."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def alternating(
    measures: dict[str, Callable[[], float]], rounds: int, label: str | None = None
) -> dict[str, float]:
    """Call every measure once per round, in turn; the median of each one's results."""
    results: dict[str, list[float]] = {name: [] for name in measures}
    with progress.steps(_caller_label(label), rounds * len(measures)) as step:
        for index in range(rounds):
            for name, measure in measures.items():
                step(f"round {index + 1}/{rounds}, {name}")
                results[name].append(measure())
    return {name: statistics.median(values) for name, values in results.items()}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``values``, nearest-rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latencies(
    queries: dict[str, Callable[[], object]],
    runs: int,
    warmup: int = 3,
    budget: float | None = None,
    label: str | None = None,
) -> dict[str, tuple[float, float]]:
    """p50 and p95 in milliseconds of each query, the queries run in alternation.

    With ``budget`` (seconds), stop after that long once 10 runs are done, so that a
    query taking seconds does not hold the run for minutes.
    """
    progress.note(
        f"{_caller_label(label)}: {', '.join(queries)}, up to {runs} runs each"
        + (f" or {budget:.0f} s" if budget is not None else "")
    )
    for _ in range(warmup):
        for query in queries.values():
            query()
    samples: dict[str, list[float]] = {name: [] for name in queries}
    start = time.perf_counter()
    for done in range(runs):
        if budget is not None and done >= 10 and time.perf_counter() - start > budget:
            break
        for name, query in queries.items():
            samples[name].append(seconds(query) * 1000)
    return {name: (percentile(s, 50), percentile(s, 95)) for name, s in samples.items()}
