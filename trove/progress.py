"""Progress of long commands (export, import, copy, verify), as SPEC §7 asks.

On a terminal it is a ``tqdm`` bar with the count, the rate and, when the amount of work
is known, the time left. Elsewhere (a log, a pipe, CI) a bar would be noise, so a plain
line is written every few seconds instead. ``quiet`` silences both; the final counts are
the command's own business.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["Progress"]

#: Seconds between two plain lines when not on a terminal.
PLAIN_INTERVAL = 5.0


class Progress:
    """Counts work done; shows it as a bar (terminal) or a line every ``interval`` s.

    ``total`` is the amount of work in ``unit`` when known (positions of the store, bytes
    of the input), which gives the bar its percentage and time left. ``counts`` passed to
    :meth:`advance` (imported, skipped, failed…) are shown beside it.
    """

    def __init__(
        self,
        description: str,
        stream: TextIO,
        *,
        total: int | None = None,
        unit: str = "versions",
        quiet: bool = False,
        interval: float = PLAIN_INTERVAL,
    ) -> None:
        self.description = description
        self.stream = stream
        self.total = total or None
        self.unit = unit
        self.quiet = quiet
        self.interval = interval
        self.done = 0
        self.counts: dict[str, int] = {}
        self._started = time.monotonic()
        self._shown = self._started
        self._bar: tqdm | None = None
        if not quiet and _is_terminal(stream):
            self._bar = tqdm(
                total=self.total,
                desc=description,
                unit=" B" if unit == "bytes" else f" {unit}",
                unit_scale=unit == "bytes",
                file=stream,
                dynamic_ncols=True,
                mininterval=0.2,
            )

    def advance(self, amount: int = 1, **counts: int) -> None:
        """Record ``amount`` more work done, and add ``counts`` to the totals shown."""
        self.done += amount
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value
        if self._bar is not None:
            self._bar.update(amount)
            if counts:
                self._bar.set_postfix(self.counts, refresh=False)
            return
        now = time.monotonic()
        if not self.quiet and now - self._shown >= self.interval:
            self._shown = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """The plain progress line: done (of total), rate, counts."""
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        text = f"{self.description}: {self.done:,}"
        if self.total:
            text += f" of {self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {self.done / elapsed:,.0f}/s"
        if self.counts:
            text += " · " + ", ".join(f"{name} {value:,}" for name, value in self.counts.items())
        return text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
