"""``python -m benchmarks [--full] [--only AREA,…] [--output PATH]``

Runs each benchmark area on throwaway databases, prints every figure beside its same-run
reference with their ratio, and writes all figures to ``benchmarks/results/latest.json``.
An area that cannot run here (a missing module, service or endpoint) is skipped with a
note; an area that fails is reported and the run goes on, exiting non-zero at the end.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time
import traceback
from pathlib import Path

from benchmarks import progress
from benchmarks.report import Figure, Skip, table, unique_keys, write_json

#: Areas in the order they run; each is a module of this package with ``run(full)``.
AREAS = (
    "ingest",
    "api_ingest",
    "api_load",
    "queries",
    "jsonfile_queries",
    "files",
    "feed",
    "interchange",
)
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Trove's throughput and latency beside raw drivers and peers, as ratios.",
    )
    parser.add_argument(
        "--full", action="store_true", help="the full sizes (1,000,000 events on PostgreSQL…)"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated areas to run (default: all of {', '.join(AREAS)})",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    args = parser.parse_args(argv)
    areas = [a.strip() for a in args.only.split(",") if a.strip()] or list(AREAS)
    unknown = sorted(set(areas) - set(AREAS))
    if unknown:
        parser.error(f"unknown area(s) {', '.join(unknown)}; areas: {', '.join(AREAS)}")
    args.areas = areas
    return args


def run_area(area: str, full: bool) -> tuple[list[Figure], bool]:
    """The figures of one area, and whether it failed; skips are printed, not failures."""
    try:
        module = importlib.import_module(f"benchmarks.{area}")
    except ImportError as error:
        print(f"[{area}] skipped: cannot import benchmarks.{area} ({error})", flush=True)
        return [], False
    start = time.perf_counter()
    try:
        figures = [Figure.from_dict(data, area) for data in module.run(full)]
    except Skip as skip:
        print(f"[{area}] skipped: {skip}", flush=True)
        return [], False
    except Exception:
        print(f"[{area}] FAILED:\n{traceback.format_exc()}", flush=True)
        return [], True
    print(f"[{area}] {time.perf_counter() - start:.0f} s\n{table(figures)}\n", flush=True)
    return figures, False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from benchmarks.environment import bench_environment

    # A terminated run still drops its database and directory (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    mode = "full" if args.full else "quick"
    print(f"Trove benchmarks, {mode} mode: {', '.join(args.areas)}\n", flush=True)
    figures: list[Figure] = []
    failed = False
    start = time.perf_counter()
    with bench_environment() as environment:
        if environment.postgres_url is None:
            print(f"PostgreSQL figures skipped: {environment.postgres_unavailable}\n")
        for index, area in enumerate(args.areas, start=1):
            progress.start_area(area, index, len(args.areas))
            area_figures, area_failed = run_area(area, args.full)
            figures.extend(area_figures)
            failed = failed or area_failed
    figures = unique_keys(figures)
    write_json(figures, args.output)
    print(f"All figures ({mode} mode, {time.perf_counter() - start:.0f} s):\n{table(figures)}")
    print(f"\nWritten to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
