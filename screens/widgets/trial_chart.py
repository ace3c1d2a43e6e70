"""A sweep's objective against one setting: a block per trial on the braille canvas, complete trials in one
colour and pruned ones (at their last reported value) in another. A list of words (a method, a batch shape) is
spread evenly along x, each named under its column.

`trial_rows` is the pure part; `TrialChart` styles its roles like `LineChart` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.safe_text import visible_line
from screens.widgets.braille import AXIS_WIDTH, Canvas, Row, Scale
from screens.widgets.line_chart import rows_text
from slmtui.sweeps import ParamAxis

ROLES = ("axis", "complete", "pruned")


def _x_labels(axis: ParamAxis, x: Scale, plot_w: int) -> str:
    """The x axis's labels: each choice of a list under its column, else the range's two ends."""
    if not axis.ticks:
        left, right = x.label(x.lo), x.label(x.hi)
        return left + right.rjust(max(1, plot_w - len(left)))
    line = [" "] * plot_w
    for index, tick in enumerate(axis.ticks):
        text = visible_line(tick)
        start = min(max(0, x.dot(index, plot_w * 2 - 1) // 2 - len(text) // 2), max(0, plot_w - len(text)))
        if all(c == " " for c in line[max(0, start - 1):start + len(text)]):  # a label never overwrites another
            line[start:start + len(text)] = text
    return "".join(line).rstrip()


def trial_rows(axis: ParamAxis, objective: str, width: int, height: int) -> list[Row]:
    """The chart as rows of (text, role) runs: plot rows, the x labels, the legend. No point: one line saying
    so; too small to plot in: no row."""
    if not axis.points:
        return [[(f"No complete or pruned trial with {visible_line(axis.name)} yet.", "axis")]]
    plot_w, plot_h = width - AXIS_WIDTH, height - 2
    if plot_w < 4 or plot_h < 2:
        return []
    y = Scale.fit((p[1] for p in axis.points), pad=0.08)
    x = Scale.fit((p[0] for p in axis.points), log=axis.log, pad=0.08)
    if axis.ticks:
        x = Scale(-0.5, len(axis.ticks) - 0.5)
    assert x is not None and y is not None
    canvas = Canvas(plot_w, plot_h)
    for pruned in (True, False):  # complete trials drawn last: on top where they meet
        canvas.blocks([(x.dot(px, canvas.dots_wide - 1), y.dot(py, canvas.dots_high, downward=True))
                       for px, py, was_pruned in axis.points if was_pruned == pruned],
                      "pruned" if pruned else "complete")
    labels = y.labels(plot_h)
    rows: list[Row] = [[(f"{labels.get(cy, ''):>{AXIS_WIDTH - 2}} ┤", "axis"), *canvas.row(cy)]
                       for cy in range(plot_h)]
    rows.append([(" " * AXIS_WIDTH + _x_labels(axis, x, plot_w), "axis")])
    scale = " (log)" if axis.log else ""
    rows.append([(f"{visible_line(objective)} by {visible_line(axis.name)}{scale}  ", "axis"), ("■ ", "complete"),
                 ("complete  ", ""), ("■ ", "pruned"), ("pruned", "")])
    return rows


class TrialChart(Widget):
    """Draws `axis` (one setting's trials) over the widget's size."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"trial-chart--{role}" for role in ROLES}
    DEFAULT_CSS = """
    TrialChart { height: 1fr; min-height: 5; }
    TrialChart > .trial-chart--complete { color: $primary; }
    TrialChart > .trial-chart--pruned { color: $warning; }
    TrialChart > .trial-chart--axis { color: $text-muted; }
    """

    axis: reactive[ParamAxis | None] = reactive(None, always_update=True)
    """The setting drawn and its points (None: no sweep)."""
    objective: reactive[str] = reactive("val_loss")
    """The objective's name, for the legend."""

    def render(self) -> Text:
        if self.axis is None:
            return Text("")
        rows: Sequence[Row] = trial_rows(self.axis, self.objective, self.size.width, self.size.height)
        styles = {role: self.get_component_rich_style(f"trial-chart--{role}") for role in ROLES}
        return rows_text(rows, styles)
