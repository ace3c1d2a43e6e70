"""A metric's whole history in bounded memory: at most `capacity` buckets (first and last step, min, max,
mean). When full, neighbouring buckets merge, so a 1,000,000-step run costs what a 2,000-step run does. The
Monitor's charts and the Runs view's loss curves both downsample through it. Light: stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Buckets per series: enough for any chart width, small enough to snapshot ten times a second.
SERIES_CAPACITY = 1024


@dataclass(frozen=True)
class Point:
    """One bucket of a series: the steps it covers and the values seen there."""

    step: int
    last_step: int
    mean: float
    low: float
    high: float
    last: float


class Series:
    """A metric's history downsampled into at most `capacity` buckets of equal point counts."""

    def __init__(self, capacity: int = SERIES_CAPACITY) -> None:
        self.capacity = max(2, capacity - capacity % 2)
        self.per_bucket = 1
        self.count = 0
        # Parallel lists (not objects) keep the per-point cost at a few list appends.
        self._first: list[int] = []
        self._last_step: list[int] = []
        self._n: list[int] = []
        self._sum: list[float] = []
        self._low: list[float] = []
        self._high: list[float] = []
        self._last: list[float] = []

    def __len__(self) -> int:
        return len(self._first)

    def add(self, step: int, value: float) -> None:
        """Add one point (steps arrive in order; non-finite values are skipped)."""
        if not math.isfinite(value):
            return
        self.count += 1
        if self._n and self._n[-1] < self.per_bucket:
            i = len(self._n) - 1
            self._last_step[i] = step
            self._n[i] += 1
            self._sum[i] += value
            self._low[i] = min(self._low[i], value)
            self._high[i] = max(self._high[i], value)
            self._last[i] = value
            return
        if len(self._n) >= self.capacity:
            self._halve()
        self._first.append(step)
        self._last_step.append(step)
        self._n.append(1)
        self._sum.append(value)
        self._low.append(value)
        self._high.append(value)
        self._last.append(value)

    def _halve(self) -> None:
        """Merge buckets pairwise; each bucket now holds twice the points."""
        pairs = range(0, len(self._n) - 1, 2)
        self._first = [self._first[i] for i in pairs]
        self._last_step = [self._last_step[i + 1] for i in pairs]
        self._n = [self._n[i] + self._n[i + 1] for i in pairs]
        self._sum = [self._sum[i] + self._sum[i + 1] for i in pairs]
        self._low = [min(self._low[i], self._low[i + 1]) for i in pairs]
        self._high = [max(self._high[i], self._high[i + 1]) for i in pairs]
        self._last = [self._last[i + 1] for i in pairs]
        self.per_bucket *= 2

    def points(self) -> tuple[Point, ...]:
        """Every bucket, oldest first."""
        return tuple(
            Point(s, e, total / n, lo, hi, last)
            for s, e, n, total, lo, hi, last in zip(
                self._first, self._last_step, self._n, self._sum, self._low, self._high, self._last, strict=True
            )
        )

    def tail(self, n: int) -> list[float]:
        """The means of the last `n` buckets (for sparklines)."""
        return [total / count for total, count in zip(self._sum[-n:], self._n[-n:], strict=True)]
