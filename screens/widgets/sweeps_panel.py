"""The journal's Sweeps view: one sweep's trials as they run (state, settings, objective, the step a pruned one
stopped at), the best so far, the objective against a setting, and each setting's importance.

A worker reads the sweep folders once a second while the view is shown (a stat of two files per sweep; the
study is read only when they changed); importance, seconds on a large study, is computed in a worker of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from engine.safe_text import visible_line
from screens.widgets.trial_chart import TrialChart
from screens.widgets.trial_table import TrialTable
from slmtui.sweeps import (
    SweepSnapshot,
    TrialRow,
    driver_alive,
    format_params,
    list_sweep_dirs,
    param_axis,
    param_importance,
    promoted_spec,
    read_sweep,
    sweep_token,
    sweeps_dir,
)
from slmtui.ui.workers import ReportsWorkerFailures


def summary_text(snapshot: SweepSnapshot | None, position: int, count: int) -> str:
    """The two lines above the trials: which sweep and how far it is, the best so far."""
    if snapshot is None:
        return "No sweeps yet. Start one with: slmtui sweep SWEEP.toml (see the README); its trials show here."
    tally = ", ".join(f"{n} {state}" for state, n in sorted(snapshot.counts().items())) or "none yet"
    which = f"[{position}/{count}] " if count > 1 else ""
    head = (f"{which}{visible_line(snapshot.name)} · {snapshot.status} · {len(snapshot.trials)}/"
            f"{snapshot.trials_wanted} trials: {tally}")
    best = snapshot.best
    if best is None or best.value is None:
        return f"{head}\nNo complete trial yet ({snapshot.direction} {snapshot.objective})."
    return (f"{head}\nBest {snapshot.objective} {best.value:.4f} (trial {best.number}): "
            f"{visible_line(format_params(best.params))}")


def importance_text(importance: dict[str, float] | None, complete: int) -> str:
    """Each setting's share of the objective's variation as a bar, largest first."""
    if importance is None:
        return "Importance: measuring…"
    if not importance:
        return f"Importance shows once two trials complete with different settings ({complete} complete)."
    lines = ["Importance (PED-ANOVA)"]
    for name, share in importance.items():
        lines.append(f"{visible_line(name)[:10]:<10} {'█' * round(share * 12):<12} {share:.2f}")
    return "\n".join(lines)


class SweepsPanel(ReportsWorkerFailures, Vertical):
    """The sweeps under HOME/sweeps, one shown at a time (newest first)."""

    POLL_SECONDS: ClassVar[float] = 1.0

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "promote", "Promote", id="sweeps.promote",
                tooltip="Open New run with the best trial's settings on the full data"),
        Binding("s", "next_sweep", "Sweep", id="sweeps.next", tooltip="Show the next (older) sweep"),
        Binding("g", "next_param", "Chart", id="sweeps.chart", tooltip="Chart the objective against the next setting"),
    ]

    sweeps: reactive[tuple[SweepSnapshot, ...]] = reactive(tuple, always_update=True, init=False)
    """Every sweep, newest first, as last read."""
    chosen: reactive[int] = reactive(0, init=False)
    """Which sweep is shown (an index into `sweeps`)."""
    param: reactive[str] = reactive("", init=False)
    """The setting the chart shows the objective against."""
    importance: reactive[dict[str, float] | None] = reactive(None, always_update=True, init=False)
    """The shown sweep's importance (None while it is measured)."""

    @dataclass
    class SweepsLoaded(Message):
        """The sweep folders were read."""

        sweeps: tuple[SweepSnapshot, ...]
        token: object

    @dataclass
    class ImportanceMeasured(Message):
        """A sweep's parameter importance was computed."""

        sweep_id: str
        complete: int
        importance: dict[str, float]

    @dataclass
    class PromotionReady(Message):
        """The best trial's spec, ready for New run."""

        spec: dict[str, object]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._token: object = None
        self._timer: Timer | None = None
        self._importance_of: tuple[str, int] | None = None
        self._read: dict[str, tuple[object, SweepSnapshot]] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="sweeps-summary")
        yield TrialTable(id="sweep-trials")
        with Horizontal(id="sweeps-lower"):
            yield TrialChart(id="sweep-chart")
            yield Static("", id="sweep-importance")

    def on_mount(self) -> None:
        self._timer = self.set_interval(self.POLL_SECONDS, self.check_sweeps, pause=True)
        self.check_sweeps()

    @property
    def root(self) -> Path:
        """HOME/sweeps."""
        return sweeps_dir(self.screen.store.home)  # type: ignore[attr-defined]

    @property
    def shown(self) -> SweepSnapshot | None:
        """The sweep on show."""
        return self.sweeps[self.chosen] if 0 <= self.chosen < len(self.sweeps) else None

    @property
    def current_trial(self) -> TrialRow | None:
        """The trial under the table's cursor."""
        return self.query_one(TrialTable).current_trial

    def pause(self, paused: bool) -> None:
        """Stop polling while the view is hidden."""
        if self._timer is not None:
            self._timer.pause() if paused else self._timer.resume()

    # ------------------------------------------------------------------ loading

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweeps-load", name="Reading the sweeps")
    def check_sweeps(self) -> None:
        """Re-read the sweeps whose folder changed, or whose driver ended (killed, it writes nothing more)."""
        dirs = list_sweep_dirs(self.root)
        tokens = {d.name: (sweep_token(d), driver_alive(d)) for d in dirs}
        token = tuple(tokens.items())
        if token == self._token:
            return
        for d in dirs:  # only the worker (one at a time: exclusive) touches the cache
            if self._read.get(d.name, (None,))[0] != tokens[d.name]:
                self._read[d.name] = (tokens[d.name], read_sweep(d))
        sweeps = tuple(self._read[d.name][1] for d in reversed(dirs))
        if not get_current_worker().is_cancelled:
            self.post_message(self.SweepsLoaded(sweeps, token))

    def on_sweeps_panel_sweeps_loaded(self, message: SweepsLoaded) -> None:
        shown = self.shown
        self._token = message.token
        self.sweeps = message.sweeps
        if shown is not None:  # keep the same sweep on show when a new one starts
            self.chosen = next((i for i, s in enumerate(self.sweeps) if s.id == shown.id), 0)

    def watch_sweeps(self) -> None:
        self._show()

    def watch_chosen(self) -> None:
        self.importance = None
        self._importance_of = None
        self._show()

    def watch_param(self) -> None:
        self._draw_chart()

    def _show(self) -> None:
        shown = self.shown
        self.query_one("#sweeps-summary", Static).update(
            Content(summary_text(shown, self.chosen + 1, len(self.sweeps))))
        self.query_one(TrialTable).trials = shown.trials if shown else ()
        self.refresh_bindings()  # promote and next-sweep come and go with the sweeps
        if shown is not None and self.param not in shown.space:
            self.param = next(iter(shown.space), "")
        self._draw_chart()
        self._measure_importance()

    def _draw_chart(self) -> None:
        shown, chart = self.shown, self.query_one(TrialChart)
        chart.objective = shown.objective if shown else ""
        chart.axis = param_axis(shown, self.param) if shown is not None and self.param else None

    def _measure_importance(self) -> None:
        shown = self.shown
        if shown is None:
            self.query_one("#sweep-importance", Static).update("")
            return
        complete = shown.counts().get("complete", 0)
        if self._importance_of != (shown.id, complete):
            self._importance_of = (shown.id, complete)
            self._importance(shown.dir, complete)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweeps-importance", name="Measuring importance")
    def _importance(self, sweep_dir: Path, complete: int) -> None:
        self.post_message(self.ImportanceMeasured(sweep_dir.name, complete, param_importance(sweep_dir)))

    def on_sweeps_panel_importance_measured(self, message: ImportanceMeasured) -> None:
        shown = self.shown
        if shown is not None and shown.id == message.sweep_id:
            self.importance = message.importance

    def watch_importance(self) -> None:
        shown = self.shown
        complete = shown.counts().get("complete", 0) if shown else 0
        self.query_one("#sweep-importance", Static).update(Content(importance_text(self.importance, complete)))

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_sweep":
            return len(self.sweeps) > 1
        if action == "promote":
            return self.shown is not None and self.shown.best is not None
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_run()

    def action_open_run(self) -> None:
        """Make the highlighted trial's run the active one and show it in the Monitor."""
        trial = self.current_trial
        if trial is None or not trial.run_id:
            self.notify("This trial has no run yet.", severity="warning", timeout=4)
            return
        setattr(self.app, "active_run", trial.run_id)  # noqa: B010 - the ShellHost protocol has no setter
        self.app.action_show_screen("monitor")  # type: ignore[attr-defined]

    def action_next_sweep(self) -> None:
        """Show the next sweep (older), wrapping round."""
        if self.sweeps:
            self.chosen = (self.chosen + 1) % len(self.sweeps)

    def action_next_param(self) -> None:
        """Chart the objective against the next searched setting."""
        shown = self.shown
        if shown is None or not shown.space:
            return
        names = list(shown.space)
        self.param = names[(names.index(self.param) + 1) % len(names)] if self.param in names else names[0]

    def action_promote(self) -> None:
        """Open New run with the best trial's settings on the full data (the sweep's budget left out)."""
        shown = self.shown
        if shown is not None and shown.best is not None:
            self._promote(shown.dir, shown.best)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweeps-promote", name="Reading the base spec")
    def _promote(self, sweep_dir: Path, best: TrialRow) -> None:
        from slmtui.sweep_spec import SweepError

        try:
            spec = promoted_spec(sweep_dir, best)
        except SweepError as exc:  # its frozen base spec (or a file it names) is gone
            self.app.call_from_thread(self.notify, str(exc), severity="warning", timeout=8)
            return
        self.post_message(self.PromotionReady(spec))

    def on_sweeps_panel_promotion_ready(self, message: PromotionReady) -> None:
        self.app.open_new_run(message.spec)  # type: ignore[attr-defined]
