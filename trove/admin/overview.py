"""The overview page's chart: events per day as bars, laid out here and drawn as inline SVG.

Rendering on the server keeps the page free of scripts and of any CDN (the admin may run
on a closed network), and the numbers stay readable in the page for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils.formats import date_format

WIDTH = 760
HEIGHT = 220
MARGIN_LEFT = 44
MARGIN_RIGHT = 24
MARGIN_BOTTOM = 24
MARGIN_TOP = 18
GAP = 0.2  # share of each slot left empty between bars
CHAR_WIDTH = 6.5  # width of a digit of the 10px value labels


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    x: float
    y: float
    width: float
    height: float
    label: str  # the day under the bar, or "" where the axis would get crowded
    value_label: str  # the count above the bar, or "" where it would not fit

    @property
    def title(self) -> str:
        return f"{date_format(self.day, 'D j M Y')}: {self.count} event{'s' * (self.count != 1)}"

    @property
    def center(self) -> float:
        return round(self.x + self.width / 2, 1)


@dataclass(frozen=True)
class DailyChart:
    bars: list[Bar]
    top: int  # the value of the highest gridline
    width: int = WIDTH
    height: int = HEIGHT
    left: int = MARGIN_LEFT
    right: int = WIDTH - MARGIN_RIGHT
    baseline: int = HEIGHT - MARGIN_BOTTOM
    ceiling: int = MARGIN_TOP

    @property
    def middle(self) -> float:
        return (self.baseline + self.ceiling) / 2

    @property
    def top_label(self) -> str:
        return compact(self.top)

    @property
    def half_label(self) -> str:
        return compact(self.top / 2)

    @property
    def total(self) -> int:
        return sum(bar.count for bar in self.bars)


def compact(value: float) -> str:
    """A short axis label: ``950``, ``2.5``, ``12k``, ``1.5M``."""
    for limit, suffix in ((1_000_000, "M"), (10_000, "k")):
        if value >= limit:
            return f"{value / (limit if suffix == 'M' else 1000):.3g}{suffix}"
    return f"{value:g}"


def nice_ceiling(value: int) -> int:
    """The smallest of 2, 4, 6, 8, 10, 20, 40… that is at least ``value``: a round top
    whose half, the middle gridline, is a whole number too."""
    step = 1
    while True:
        for factor in (2, 4, 6, 8, 10):
            if step * factor >= value:
                return step * factor
        step *= 10


def daily_chart(days: list[date], counts: list[int]) -> DailyChart:
    """Bars for ``counts`` per day, scaled to the largest; every 5th day labelled."""
    top = nice_ceiling(max(counts, default=0))
    plot_height = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    slot = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / max(len(days), 1)
    bars = []
    for index, (day, count) in enumerate(zip(days, counts, strict=True)):
        height = plot_height * count / top
        bars.append(
            Bar(
                day=day,
                count=count,
                x=round(MARGIN_LEFT + index * slot + slot * GAP / 2, 1),
                y=round(HEIGHT - MARGIN_BOTTOM - height, 1),
                width=round(slot * (1 - GAP), 1),
                height=round(height, 1),
                label=date_format(day, "M j") if (len(days) - 1 - index) % 5 == 0 else "",
                value_label=str(count) if count and len(str(count)) * CHAR_WIDTH <= slot else "",
            )
        )
    return DailyChart(bars, top)
