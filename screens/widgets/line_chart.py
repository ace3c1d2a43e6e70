"""A line chart of several named series of (x, y) points, drawn on the braille canvas: a y axis with its
range, the x range below, a legend, optional markers (dotted vertical lines at given x). Colours come from the
component classes `line-chart--series-N` and `line-chart--marker` (styled in the theme's stylesheets), so a
chart of two runs' losses or of a sweep's trials looks the same.

`series_rows` is the pure part (data in, rows of role-tagged text out); `LineChart` styles the roles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.safe_text import visible_line
from screens.widgets.braille import AXIS_WIDTH, Canvas, Row, Scale, format_value

#: Series past this many reuse the colours from the first.
COLOURS = 4


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend and its points (x increasing)."""

    name: str
    points: Sequence[tuple[float, float]]


def series_rows(series: Sequence[Series], width: int, height: int, *, log_y: bool = False,
                markers: Sequence[float] = (), empty_text: str = "") -> list[Row]:
    """The chart as rows of (text, role) runs: `height - 2` rows of plot, the x range, the legend.

    Roles: "axis", "series-N" (N below `COLOURS`), "marker", "". No plottable point: `empty_text` alone; a
    size too small to plot in: no row.
    """
    plot_w, plot_h = width - AXIS_WIDTH, height - 2
    y = Scale.fit((v for s in series for _, v in s.points), log=log_y)
    if y is None:
        return [[(empty_text, "axis")]]
    if plot_w < 4 or plot_h < 2:
        return []
    xs = [px for s in series for px, v in s.points if y.plottable(v)]
    x_lo, x_hi = min(xs), max(xs)
    x = Scale(x_lo, x_hi if x_hi > x_lo else x_lo + 1)
    canvas = Canvas(plot_w, plot_h)
    for at in markers:
        if x.lo <= at <= x.hi:
            canvas.rule(x.dot(at, canvas.dots_wide), "marker")
    for index, line in enumerate(series):
        canvas.line([(x.dot(px, canvas.dots_wide), y.dot(v, canvas.dots_high, downward=True))
                     for px, v in line.points if y.plottable(v)], f"series-{index % COLOURS}")
    labels = y.labels(plot_h)
    rows = [[(f"{labels.get(cy, ''):>{AXIS_WIDTH - 2}} ┤", "axis"), *canvas.row(cy)] for cy in range(plot_h)]
    left, right = format_value(x.lo), format_value(x.hi)
    rows.append([(" " * AXIS_WIDTH + left + right.rjust(max(1, plot_w - len(left))), "axis")])
    legend: Row = [(" " * AXIS_WIDTH, "")]
    for index, line in enumerate(series):
        log_note = "  (log y)" if log_y and index == len(series) - 1 else ""
        legend += [("━━ ", f"series-{index % COLOURS}"), (visible_line(line.name) + log_note + "   ", "")]
    return [*rows, legend]


class LineChart(Widget):
    """Draws `series` over the widget's size; `log_y` plots the y values on a log scale."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"line-chart--series-{i}" for i in range(COLOURS)), "line-chart--axis", "line-chart--marker",
    }
    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 6; }
    LineChart > .line-chart--series-0 { color: $primary; }
    LineChart > .line-chart--series-1 { color: $accent; }
    LineChart > .line-chart--series-2 { color: $success; }
    LineChart > .line-chart--series-3 { color: $secondary; }
    LineChart > .line-chart--axis { color: $text-muted; }
    LineChart > .line-chart--marker { color: $success; }
    """

    series: reactive[tuple[Series, ...]] = reactive(tuple, always_update=True)
    """The lines to draw (at most four get their own colour; more reuse them)."""
    log_y: reactive[bool] = reactive(False)
    """Plot y on a log scale (non-positive values are left out)."""
    markers: reactive[tuple[float, ...]] = reactive(())
    """x values to mark with a dotted vertical line."""
    empty_text: reactive[str] = reactive("No points yet.")
    """What the chart says when no series has a point."""

    def render(self) -> Text:
        rows = series_rows(self.series, self.size.width, self.size.height, log_y=self.log_y,
                           markers=self.markers, empty_text=self.empty_text)
        styles = {role: self.get_component_rich_style(f"line-chart--{role}")
                  for role in ("axis", "marker", *(f"series-{i}" for i in range(COLOURS)))}
        return rows_text(rows, styles)


def rows_text(rows: Sequence[Row], styles: Mapping[str, Style]) -> Text:
    """The rows as one Text, each role in its style (the role "" in the widget's own)."""
    out = Text(no_wrap=True, overflow="crop")
    for number, row in enumerate(rows):
        if number:
            out.append("\n")
        for text, role in row:
            out.append(text, styles.get(role))
    return out
