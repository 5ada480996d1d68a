"""The figure record every benchmark returns, and how it is printed and saved.

A figure is a measured ``value`` beside a ``reference_value`` measured in the same run on
the same machine (a raw driver, a peer library, a raw file copy). ``ratio`` is always
``value / reference_value``: for a rate (``events/s``, ``MB/s``) above 1 means faster than
the reference; for a latency (``ms``) or a size (``MB``) below 1 means better.

Each figure also has a ``key`` that names it across runs and commits: the module may give
one (``figure(..., key="api_ingest.single.bare_view")``); otherwise it is made from the
area, the name and the reference with their numbers left out (sizes and counts change
with ``--full``), so that comparing two ``latest.json`` files needs no module to change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

#: The keys a benchmark module returns for each figure; the runner adds ``ratio``.
FIGURE_KEYS = ("name", "value", "unit", "reference", "reference_value")
#: A number standing as a word (``5,000``, ``1``, ``100k``, ``0.5``), not part of one
#: (``sqlite3``, ``boto3``).
_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*[kKMG]?(?!\w|\.\d)")


class Skip(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised by a benchmark module that cannot run here; the message says why."""


@dataclass(frozen=True)
class Figure:
    """One line of the results: a measurement and its same-run reference."""

    name: str
    value: float
    unit: str
    reference: str
    reference_value: float
    ratio: float | None
    key: str = ""
    area: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], area: str = "") -> Figure:
        """Build a figure of ``area`` from a module's dict, computing the ratio and key."""
        missing = [key for key in FIGURE_KEYS if key not in data]
        if missing:
            raise ValueError(f"Figure {data.get('name')!r} lacks {', '.join(missing)}.")
        value, reference_value = float(data["value"]), float(data["reference_value"])
        name, reference = str(data["name"]), str(data["reference"])
        return cls(
            name=name,
            value=value,
            unit=str(data["unit"]),
            reference=reference,
            reference_value=reference_value,
            ratio=ratio(value, reference_value),
            key=str(data.get("key") or derived_key(area, name, reference)),
            area=area,
        )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _NUMBER.sub(" ", text).lower()).strip("-")


def derived_key(area: str, name: str, reference: str) -> str:
    """``area.name.reference`` in lower-case words joined by ``-``, numbers left out:
    ``ingest batch of 5,000, storage-sqlite`` beside ``sqlite3 executemany, 1 transaction``
    is ``ingest.ingest-batch-of-storage-sqlite.sqlite3-executemany-transaction``."""
    return ".".join(part for part in (area, _slug(name), _slug(reference)) if part)


def unique_keys(figures: Iterable[Figure]) -> list[Figure]:
    """``figures`` with a repeated key made unique by a ``-2``, ``-3``… suffix, in order."""
    seen: dict[str, int] = {}
    unique = []
    for f in figures:
        seen[f.key] = seen.get(f.key, 0) + 1
        unique.append(f if seen[f.key] == 1 else replace(f, key=f"{f.key}-{seen[f.key]}"))
    return unique


def ratio(value: float, reference_value: float) -> float | None:
    """``value / reference_value``, or ``None`` when the reference is zero."""
    return None if reference_value == 0 else value / reference_value


def figure(
    name: str,
    value: float,
    unit: str,
    reference: str,
    reference_value: float,
    key: str | None = None,
) -> dict[str, Any]:
    """The dict a benchmark module returns for one figure; ``key``, if given, names it
    across runs instead of the key made from its texts."""
    data: dict[str, Any] = {
        "name": name,
        "value": value,
        "unit": unit,
        "reference": reference,
        "reference_value": reference_value,
    }
    if key:
        data["key"] = key
    return data


def number(value: float) -> str:
    """A figure's value with as many digits as are meaningful."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(figures: Iterable[Figure]) -> str:
    """Figures as an aligned text table: name, value, reference, ratio."""
    rows = [("figure", "value", "reference", "ref. value", "ratio")]
    for f in figures:
        rows.append(
            (
                f.name,
                f"{number(f.value)} {f.unit}",
                f.reference,
                f"{number(f.reference_value)} {f.unit}",
                "n/a" if f.ratio is None else f"{f.ratio:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i in (0, 2) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(figures: Iterable[Figure], path: Path) -> None:
    """Save figures as a JSON list so that runs can be compared across commits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
