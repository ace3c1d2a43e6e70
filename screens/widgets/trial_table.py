"""The trial table of the Sweeps view: one row per trial; the settings column takes the width left, and the run
column shows only where there is room for it (`enter` opens the run either way)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import DataTable

from engine.safe_text import visible_line
from slmtui.sweeps import TrialRow, format_params

#: (label, width); the settings column's width is what the others leave.
FIXED = (("#", 3), ("State", 8), ("Objective", 9), ("Pruned", 6))
RUN_WIDTH = 30
SETTINGS_MIN = 24
CELL_PADDING = 2


def trial_cells(trial: TrialRow) -> tuple[Text, ...]:
    """One trial's cells: number, state, objective, pruned step, settings, run."""
    style = {"running": "bold", "failed": "bold"}.get(trial.state, "")
    return (Text(str(trial.number)), Text(trial.state, style=style),
            Text("" if trial.value is None else f"{trial.value:.4f}"),
            Text("" if trial.pruned_step is None else str(trial.pruned_step)),
            Text(visible_line(format_params(trial.params)), no_wrap=True, overflow="ellipsis"),
            Text(visible_line(trial.run_id or ""), no_wrap=True, overflow="ellipsis"))


def column_widths(width: int) -> list[tuple[str, int]]:
    """The columns for a table `width` cells wide: the fixed ones, the settings, the run where it fits."""
    fixed = sum(w + CELL_PADDING for _, w in FIXED)
    left = width - fixed - CELL_PADDING - 2  # the vertical scrollbar
    with_run = left - RUN_WIDTH - CELL_PADDING >= SETTINGS_MIN + 16
    settings = max(SETTINGS_MIN, left - (RUN_WIDTH + CELL_PADDING if with_run else 0))
    return [*FIXED, ("Settings", settings), *((("Run", RUN_WIDTH),) if with_run else ())]


class TrialTable(DataTable[Text]):
    """Shows `trials`; keeps the cursor on the same trial when they are reloaded."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open run", id="sweeps.open", tooltip="Watch the trial's run in the Monitor"),
    ]

    trials: reactive[tuple[TrialRow, ...]] = reactive(tuple, always_update=True)
    """The trials to show, in number order."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._columns: list[tuple[str, int]] = []

    @property
    def current_trial(self) -> TrialRow | None:
        """The trial under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return next((t for t in self.trials if str(t.number) == key), None)

    def on_resize(self) -> None:
        if column_widths(self.size.width) != self._columns:
            self.watch_trials(self.trials)

    def watch_trials(self, trials: Sequence[TrialRow]) -> None:
        keep = self.current_trial
        columns = column_widths(self.size.width or 120)
        self.clear(columns=columns != self._columns)
        if columns != self._columns:
            self._columns = columns
            for label, width in columns:
                self.add_column(label, width=width, key=label.lower())
        for trial in trials:
            self.add_row(*trial_cells(trial)[:len(columns)], key=str(trial.number))
        if keep is not None and any(t.number == keep.number for t in trials):
            self.move_cursor(row=self.get_row_index(str(keep.number)))
