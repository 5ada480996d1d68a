"""Trove's benchmarks: every figure beside a reference measured in the same run.

Run ``python -m benchmarks`` (quick, a few minutes) or ``python -m benchmarks --full``
(``make bench`` / ``make bench-full``). Each area is a module exposing
``run(full: bool) -> list[dict]``; the runner in ``__main__`` sets Django up on throwaway
databases (``benchmarks.environment``), runs the areas, prints a table of ratios and writes
``benchmarks/results/latest.json``.
"""
