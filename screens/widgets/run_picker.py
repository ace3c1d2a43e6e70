"""The monitor's run list: every run, newest first, with its status and step; enter (or a click) picks one."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from engine.safe_text import visible_line
from slmtui.runs import RunInfo

_MARK = {"running": "▶", "completed": "✓", "stopped": "■", "failed": "✗", "oom": "✗", "crashed": "✗",
         "imported": "↓"}


def run_label(run: RunInfo) -> Text:
    """One line per run: a status mark, the id, the step."""
    total = f"/{run.total_steps:,}" if run.total_steps else ""
    return Text.assemble(f"{_MARK.get(run.status, '?')} ", (visible_line(run.id), "bold" if run.status == "running" else ""),
                         f"\n  {run.status} {run.step:,}{total}")


class RunPicker(OptionList):
    """Runs to watch; the chosen one is highlighted."""

    runs: reactive[tuple[RunInfo, ...]] = reactive(())
    """Every run, newest first."""

    @dataclass
    class RunChosen(Message):
        """The user picked a run."""

        run_id: str

    def watch_runs(self, old: tuple[RunInfo, ...], runs: tuple[RunInfo, ...]) -> None:
        if [run.id for run in old] == [run.id for run in runs]:  # the same runs (a step moved): relabel in place
            for before, run in zip(old, runs, strict=True):
                if before != run:
                    self.replace_option_prompt(run.id, run_label(run))
            return
        highlighted = self.highlighted_option.id if self.highlighted_option is not None else None
        self.clear_options()
        self.add_options([Option(run_label(run), id=run.id) for run in runs])
        ids = [run.id for run in runs]
        if highlighted in ids:
            self.highlighted = ids.index(highlighted)

    def show_run(self, run_id: str) -> None:
        """Highlight `run_id` (without choosing it again)."""
        ids = [run.id for run in self.runs]
        if run_id in ids:
            self.highlighted = ids.index(run_id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.RunChosen(event.option.id))
