"""The braille canvas under every chart: 2 × 4 dots per terminal cell, lines between points, vertical rules,
linear or log scales and their labels. Pure (no Textual): data in, rows of role-tagged text out, so a widget
only builds its lines and styles each role with a component class of its own.

`LossChart` (the Monitor) and `LineChart` (the runs overlay, any chart of several series) are thin over it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The bit of each dot in a braille cell, by (column 0-1, row 0-3).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_BRAILLE_BASE = 0x2800
#: What a cell owned by a rule shows (a dotted vertical line reads better than braille dots).
RULE_GLYPH = "┊"
#: The columns of the y labels and the axis line left of the plot.
AXIS_WIDTH = 8
Row = list[tuple[str, str]]


def format_value(value: float) -> str:
    """An axis label: 3 significant digits, whole numbers to 9999, scientific outside 0.01–9999."""
    if value == 0 or 0.01 <= abs(value) < 10_000:
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{value:.1e}"


@dataclass(frozen=True)
class Scale:
    """Where values go along one axis: `lo`..`hi` in plotted units (log10 of the value when `log`)."""

    lo: float
    hi: float
    log: bool = False

    @classmethod
    def fit(cls, values: Iterable[float], *, log: bool = False, pad: float = 0.0) -> Scale | None:
        """The scale spanning the plottable `values` (None if there is none), widened by `pad` of its span."""
        kept = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        if not kept:
            return None
        lo, hi = (math.log10(min(kept)), math.log10(max(kept))) if log else (min(kept), max(kept))
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        margin = (hi - lo) * pad
        return cls(lo - margin, hi + margin, log)

    def plottable(self, value: float) -> bool:
        """Whether the value has a place on this scale (a log scale has none for zero or less)."""
        return math.isfinite(value) and (value > 0 or not self.log)

    def dot(self, value: float, dots: int, *, downward: bool = False) -> int:
        """The dot (0..dots-1) of `value`; `downward` counts from `hi` (rows of a screen grow downwards)."""
        plotted = math.log10(value) if self.log else value
        offset = self.hi - plotted if downward else plotted - self.lo
        return min(dots - 1, max(0, round(offset / (self.hi - self.lo) * (dots - 1))))

    def label(self, plotted: float) -> str:
        """The value at a point of the plotted range, as an axis label."""
        return format_value(10**plotted if self.log else plotted)

    def labels(self, rows: int) -> dict[int, str]:
        """Labels for a y axis of `rows` cells: top, middle and bottom (the ends win where they meet)."""
        return {(rows - 1) // 2: self.label((self.hi + self.lo) / 2), 0: self.label(self.hi),
                rows - 1: self.label(self.lo)}


def line_dots(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """The dots of a straight segment (Bresenham), both ends included."""
    dots = []
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        dots.append((x0, y0))
        if x0 == x1 and y0 == y1:
            return dots
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


class Canvas:
    """`width` × `height` cells of braille; each cell belongs to the role that drew into it last."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.dots_wide, self.dots_high = width * 2, height * 4
        self.bits = [[0] * width for _ in range(height)]
        self.role = [[""] * width for _ in range(height)]
        self.rules: set[str] = set()

    def dot(self, px: int, py: int, role: str) -> None:
        cx, cy = px // 2, py // 4
        if 0 <= cx < self.width and 0 <= cy < self.height:
            self.bits[cy][cx] |= _DOTS[px % 2][py % 4]
            self.role[cy][cx] = role

    def line(self, points: Sequence[tuple[int, int]], role: str) -> None:
        """A polyline through `points` (dots); a single point is one dot."""
        segments = itertools.pairwise(points) if len(points) > 1 else [(p, p) for p in points]
        for (x0, y0), (x1, y1) in segments:
            for px, py in line_dots(x0, y0, x1, y1):
                self.dot(px, py, role)

    def blocks(self, points: Sequence[tuple[int, int]], role: str) -> None:
        """A block of 2 × 3 dots on each point, so single measurements stand out from a line."""
        for x, y in points:
            for dx in (0, 1):
                for dy in (-1, 0, 1):
                    self.dot(x + dx, y + dy, role)

    def rule(self, px: int, role: str) -> None:
        """A dotted vertical line at dot column `px`; its cells show `RULE_GLYPH` while the role owns them."""
        self.rules.add(role)
        for py in range(0, self.dots_high, 2):
            self.dot(px, py, role)

    def row(self, cy: int) -> Row:
        """Cell row `cy` as (text, role) runs, one per cell; an empty cell is a space with role ""."""
        out: Row = []
        for bits, role in zip(self.bits[cy], self.role[cy], strict=True):
            if not bits:
                out.append((" ", ""))
            else:
                out.append((RULE_GLYPH if role in self.rules else chr(_BRAILLE_BASE + bits), role))
        return out
