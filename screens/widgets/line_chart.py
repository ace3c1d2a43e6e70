"""A small generic line chart drawn in braille dots: several named series of (x, y) points, a y axis with its
range, the x range below and a legend. Colours come from the component classes `line-chart--series-N` (styled
in the theme's stylesheets), so a chart of two runs' losses or of train against validation looks the same.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.safe_text import visible_line

_BRAILLE_BASE = 0x2800
# The bit of each dot in a braille cell, by (column 0-1, row 0-3).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_AXIS_WIDTH = 8


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend and its points (x increasing)."""

    name: str
    points: Sequence[tuple[float, float]]


def _fmt(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 10_000:
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{value:.1e}"


def _line(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """The dots of a straight segment (Bresenham)."""
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


class LineChart(Widget):
    """Draws `series` over the widget's size; `log_y` plots the y values on a log scale."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "line-chart--series-0", "line-chart--series-1", "line-chart--series-2", "line-chart--series-3",
        "line-chart--axis",
    }
    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 6; }
    LineChart > .line-chart--series-0 { color: $primary; }
    LineChart > .line-chart--series-1 { color: $accent; }
    LineChart > .line-chart--series-2 { color: $success; }
    LineChart > .line-chart--series-3 { color: $secondary; }
    LineChart > .line-chart--axis { color: $text-muted; }
    """

    series: reactive[tuple[Series, ...]] = reactive(tuple, always_update=True)
    """The lines to draw (at most four get their own colour; more reuse them)."""
    log_y: reactive[bool] = reactive(False)
    """Plot y on a log scale (non-positive values are left out)."""
    empty_text: reactive[str] = reactive("No points yet.")
    """What the chart says when no series has a point."""

    def _points(self) -> list[list[tuple[float, float]]]:
        if not self.log_y:
            return [list(s.points) for s in self.series]
        return [[(x, math.log10(y)) for x, y in s.points if y > 0] for s in self.series]

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        all_points = self._points()
        xs = [x for pts in all_points for x, _ in pts]
        ys = [y for pts in all_points for _, y in pts]
        plot_w, plot_h = width - _AXIS_WIDTH, height - 2
        if not xs or plot_w < 4 or plot_h < 2:
            return Text(self.empty_text if not xs else "", style=self.get_component_rich_style("line-chart--axis"))
        x_lo, x_hi = min(xs), max(xs)
        y_lo, y_hi = min(ys), max(ys)
        if y_hi == y_lo:
            y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
        if x_hi == x_lo:
            x_hi = x_lo + 1
        dots_w, dots_h = plot_w * 2, plot_h * 4
        cells: dict[tuple[int, int], int] = {}
        owner: dict[tuple[int, int], int] = {}
        for index, pts in enumerate(all_points):
            scaled = [(round((x - x_lo) / (x_hi - x_lo) * (dots_w - 1)),
                       round((y_hi - y) / (y_hi - y_lo) * (dots_h - 1))) for x, y in pts]
            segments = itertools.pairwise(scaled) if len(scaled) > 1 else [(scaled[0], scaled[0])]
            for (ax, ay), (bx, by) in segments:
                for dx, dy in _line(ax, ay, bx, by):
                    cell = (dx // 2, dy // 4)
                    cells[cell] = cells.get(cell, 0) | _DOTS[dx % 2][dy % 4]
                    owner[cell] = index
        styles = [self.get_component_rich_style(f"line-chart--series-{i % 4}") for i in range(max(1, len(all_points)))]
        axis = self.get_component_rich_style("line-chart--axis")
        return self._draw(cells, owner, styles, axis, (x_lo, x_hi, y_lo, y_hi), plot_w, plot_h)

    def _draw(self, cells: dict[tuple[int, int], int], owner: dict[tuple[int, int], int], styles: list[Style],
                 axis: Style, bounds: tuple[float, float, float, float], plot_w: int, plot_h: int) -> Text:
        x_lo, x_hi, y_lo, y_hi = bounds
        shown = (lambda v: 10**v) if self.log_y else (lambda v: v)
        labels = {0: _fmt(shown(y_hi)), plot_h - 1: _fmt(shown(y_lo)), (plot_h - 1) // 2: _fmt(shown((y_hi + y_lo) / 2))}
        out = Text(no_wrap=True, overflow="crop")
        for row in range(plot_h):
            out.append(f"{labels.get(row, ''):>{_AXIS_WIDTH - 2}} ┤", axis)
            for col in range(plot_w):
                bits = cells.get((col, row))
                if bits is None:
                    out.append(" ")
                else:
                    out.append(chr(_BRAILLE_BASE + bits), styles[owner[(col, row)] % len(styles)])
            out.append("\n")
        left, right = _fmt(x_lo), _fmt(x_hi)
        out.append(" " * _AXIS_WIDTH + left + right.rjust(max(1, plot_w - len(left))) + "\n", axis)
        out.append(" " * _AXIS_WIDTH)
        for index, series in enumerate(self.series):
            out.append("━━ ", styles[index % len(styles)])
            out.append(visible_line(series.name) + ("  (log y)" if self.log_y and index == len(self.series) - 1 else "") + "   ")
        return out
