"""A loss chart on the braille canvas (`braille.py`): train loss (smoothed, raw behind it), validation loss,
pinned notes.

`chart_rows` is the pure part (data in, rows of role-tagged text out); `LossChart` styles the roles with its
component classes, whose colours come from the theme (themes/monitor.tcss).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from screens.widgets.braille import AXIS_WIDTH, RULE_GLYPH, Canvas, Row, Scale
from slmtui.monitor_data import smooth
from slmtui.series import Point


def chart_rows(train: Sequence[Point], val: Sequence[Point], markers: Sequence[int], width: int, height: int,
               *, log_scale: bool = False, smoothing: float = 0.0, x_max: int | None = None) -> list[Row]:
    """The chart as `height` rows of (text, role) runs, `width` cells wide (y labels included).

    Roles: "axis", "train", "raw" (unsmoothed train, behind the smoothed line), "val", "marker", "".
    """
    plot_w, plot_h = max(width - AXIS_WIDTH, 1), max(height - 1, 1)
    raw = [p.mean for p in train]
    smoothed = smooth(raw, smoothing)
    y = Scale.fit([*raw, *smoothed, *(p.mean for p in val)], log=log_scale, pad=0.05)
    if y is None:
        note = "waiting for the first step" if not train else "no value to plot on a log scale"
        return [[(" " * AXIS_WIDTH, "axis"), (note.center(plot_w)[:plot_w], "axis")]] + \
               [[(" " * width, "")] for _ in range(height - 1)]
    x_top = max([x_max or 0, 1] + [p.last_step for p in train] + [p.last_step for p in val])
    x = Scale(0, x_top)
    canvas = Canvas(plot_w, plot_h)

    def dots(points: Sequence[Point], values: Sequence[float]) -> list[tuple[int, int]]:
        return [(x.dot(p.step, canvas.dots_wide), y.dot(v, canvas.dots_high, downward=True))
                for p, v in zip(points, values, strict=True) if y.plottable(v)]

    for step in markers:
        if 0 <= step <= x_top:
            canvas.rule(x.dot(step, canvas.dots_wide), "marker")
    if smoothing > 0:
        canvas.line(dots(train, raw), "raw")
    canvas.line(dots(train, smoothed), "train")
    val_dots = dots(val, [p.mean for p in val])
    canvas.line(val_dots, "val")
    canvas.blocks(val_dots, "val")  # each evaluation stands out

    labels = y.labels(plot_h)
    rows = [[(f"{labels[cy]:>{AXIS_WIDTH - 1}}┤" if cy in labels else " " * (AXIS_WIDTH - 1) + "│", "axis"),
             *canvas.row(cy)] for cy in range(plot_h)]
    rows.append([(" " * (AXIS_WIDTH - 1) + "└", "axis"), (_step_axis(x_top, plot_w), "axis")])
    return rows[:height]


def _step_axis(x_top: int, width: int) -> str:
    """The x axis under the plot: 0, the middle step and the last, in thousands."""
    left, middle, right = "0", f"{x_top // 2:,}", f"{x_top:,}"
    axis = [" "] * width
    for pos, text in ((0, left), (width // 2 - len(middle) // 2, middle), (width - len(right), right)):
        for i, ch in enumerate(text):
            if 0 <= pos + i < width:
                axis[pos + i] = ch
    return "".join(axis)


class LossChart(Widget):
    """Train and validation loss against the step, with pinned notes as dotted vertical markers."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "loss-chart--axis", "loss-chart--train", "loss-chart--raw", "loss-chart--val", "loss-chart--marker",
    }
    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 6; }
    """

    train: reactive[tuple[Point, ...]] = reactive((), always_update=True)
    """Train loss buckets."""
    val: reactive[tuple[Point, ...]] = reactive((), always_update=True)
    """Validation loss, one point per evaluation."""
    markers: reactive[tuple[int, ...]] = reactive(())
    """Steps with a pinned note."""
    log_scale: reactive[bool] = reactive(False)
    """Plot the loss on a log scale."""
    smoothing: reactive[float] = reactive(0.6)
    """Exponential smoothing of the train loss (0: none)."""
    x_max: reactive[int | None] = reactive(None)
    """The step the x axis ends at (the run's total steps, when known)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[Row] = []
        self._rows_key: tuple[object, ...] = ()

    def legend(self) -> str:
        """The border's caption (scale, smoothing, what each mark means), in words that fit the border."""
        scale = "log" if self.log_scale else "linear"
        room = self.outer_size.width - 4  # the corners and a space each side
        for smoothing, val in (("smoothing", "validation"), ("smooth", "val"), ("", "val")):
            parts = [scale, f"{smoothing} {self.smoothing:g}" if smoothing else "", "⠿ train", f"● {val}",
                     f"{RULE_GLYPH} note"]
            text = " · ".join(part for part in parts if part)
            if len(text) <= room:
                break
        return text

    def watch_log_scale(self) -> None:
        self.border_subtitle = self.legend()

    def watch_smoothing(self) -> None:
        self.border_subtitle = self.legend()

    def on_resize(self) -> None:
        self.border_subtitle = self.legend()

    def rows(self) -> list[Row]:
        """The current picture (computed once per change of data or size)."""
        key = (self.train, self.val, self.markers, self.log_scale, self.smoothing, self.x_max, self.size)
        if key != self._rows_key:
            self._rows_key = key
            self._rows = chart_rows(self.train, self.val, self.markers, self.size.width, self.size.height,
                                    log_scale=self.log_scale, smoothing=self.smoothing, x_max=self.x_max)
        return self._rows

    def render_line(self, y: int) -> Strip:
        rows = self.rows()
        if y >= len(rows):
            return Strip.blank(self.size.width, self.rich_style)
        base = self.rich_style
        styles: dict[str, Style] = {"": base}
        segments = []
        for text, role in rows[y]:
            if role not in styles:
                styles[role] = base + self.get_component_rich_style(f"loss-chart--{role}", partial=True)
            segments.append(Segment(text, styles[role]))
        return Strip(segments).adjust_cell_length(self.size.width, base)
