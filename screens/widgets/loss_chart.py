"""A loss chart drawn in braille dots: train loss (smoothed, raw behind it), validation loss, pinned notes.

`chart_rows` is the pure part (data in, rows of role-tagged text out); `LossChart` styles the roles with its
component classes, whose colours come from the theme (themes/monitor.tcss).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from slmtui.monitor_data import smooth
from slmtui.series import Point

_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
#: Which role wins a cell several draw into (higher wins).
_PRIORITY = {"": 0, "marker": 1, "raw": 2, "train": 3, "val": 4}
AXIS_WIDTH = 8
Row = list[tuple[str, str]]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.1e}"
    return f"{value:.3g}"


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.bits = [[0] * width for _ in range(height)]
        self.role = [[""] * width for _ in range(height)]

    def dot(self, px: int, py: int, role: str) -> None:
        cx, cy = px // 2, py // 4
        if 0 <= cx < self.width and 0 <= cy < self.height:
            self.bits[cy][cx] |= _BITS[px % 2][py % 4]
            if _PRIORITY[role] >= _PRIORITY[self.role[cy][cx]]:
                self.role[cy][cx] = role

    def line(self, points: Sequence[tuple[int, int]], role: str) -> None:
        if len(points) == 1:
            self.dot(*points[0], role)
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            n = max(abs(x1 - x0), abs(y1 - y0), 1)
            for i in range(n + 1):
                self.dot(x0 + (x1 - x0) * i // n, y0 + (y1 - y0) * i // n, role)


def chart_rows(train: Sequence[Point], val: Sequence[Point], markers: Sequence[int], width: int, height: int,
               *, log_scale: bool = False, smoothing: float = 0.0, x_max: int | None = None) -> list[Row]:
    """The chart as `height` rows of (text, role) runs, `width` cells wide (y labels included).

    Roles: "axis", "train", "raw" (unsmoothed train, behind the smoothed line), "val", "marker", "".
    """
    plot_w, plot_h = max(width - AXIS_WIDTH, 1), max(height - 1, 1)
    raw = [p.mean for p in train]
    smoothed = smooth(raw, smoothing)
    val_values = [p.mean for p in val]
    values = [v for v in (*raw, *smoothed, *val_values) if math.isfinite(v) and (v > 0 or not log_scale)]
    if not values:
        note = "waiting for the first step" if not train else "no value to plot on a log scale"
        return [[(" " * AXIS_WIDTH, "axis"), (note.center(plot_w)[:plot_w], "axis")]] + \
               [[(" " * width, "")] for _ in range(height - 1)]
    scale = math.log10 if log_scale else (lambda v: v)
    lo, hi = scale(min(values)), scale(max(values))
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad
    last_step = max([p.last_step for p in train] + [p.last_step for p in val] + [1])
    x_top = max(x_max or 0, last_step, 1)
    px_w, px_h = plot_w * 2, plot_h * 4

    def px(step: int) -> int:
        return min(px_w - 1, round(step / x_top * (px_w - 1)))

    def py(value: float) -> int:
        return min(px_h - 1, max(0, round((hi - scale(value)) / (hi - lo) * (px_h - 1))))

    canvas = _Canvas(plot_w, plot_h)
    for step in markers:
        if 0 <= step <= x_top:
            for y in range(0, px_h, 2):
                canvas.dot(px(step), y, "marker")
    usable = [(p.step, v) for p, v in zip(train, raw, strict=True) if v > 0 or not log_scale]
    if smoothing > 0:
        canvas.line([(px(s), py(v)) for s, v in usable], "raw")
        usable = [(p.step, v) for p, v in zip(train, smoothed, strict=True) if v > 0 or not log_scale]
    canvas.line([(px(s), py(v)) for s, v in usable], "train")
    val_points = [(px(p.step), py(p.mean)) for p in val if p.mean > 0 or not log_scale]
    canvas.line(val_points, "val")
    for x, y in val_points:  # each evaluation stands out as a small block of dots
        for dx in (0, 1):
            for dy in (-1, 0, 1):
                canvas.dot(x + dx, y + dy, "val")

    labels = {0: hi, plot_h // 2: (hi + lo) / 2, plot_h - 1: lo}
    rows: list[Row] = []
    for cy in range(plot_h):
        label = ""
        if cy in labels:
            value = 10 ** labels[cy] if log_scale else labels[cy]
            label = _fmt(value)
        row: Row = [(f"{label:>{AXIS_WIDTH - 1}}┤" if label else " " * (AXIS_WIDTH - 1) + "│", "axis")]
        for cx in range(plot_w):
            bits, role = canvas.bits[cy][cx], canvas.role[cy][cx]
            if role == "marker" and bits:
                row.append(("┊", "marker"))
            else:
                row.append((chr(0x2800 + bits) if bits else " ", role))
        rows.append(row)
    left, right = "0", f"{x_top:,}"
    middle = f"{x_top // 2:,}"
    axis = [" "] * plot_w
    for pos, text in ((0, left), (plot_w // 2 - len(middle) // 2, middle), (plot_w - len(right), right)):
        for i, ch in enumerate(text):
            if 0 <= pos + i < plot_w:
                axis[pos + i] = ch
    rows.append([(" " * (AXIS_WIDTH - 1) + "└", "axis"), ("".join(axis), "axis")])
    return rows[:height]


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
            parts = [scale, f"{smoothing} {self.smoothing:g}" if smoothing else "", "⠿ train", f"● {val}", "┊ note"]
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
