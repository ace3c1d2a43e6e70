"""The Monitor: watch a run train (or look back at one that ended), and steer it.

At start the screen lists the runs and reattaches to every run still training: `summary.json` first, the event
history on the feed's thread, then the growing file (`slmtui.monitor_feed`). Redraws are coalesced: the feed
posts `RunUpdated`, which replaces any not yet handled, and each one paints a snapshot of the bounded history.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer

from engine.protocol import CHECKPOINT_COMMAND, EVAL_COMMAND, GIB, STOP_COMMAND
from screens.widgets.loss_chart import LossChart
from screens.widgets.run_panels import GenerationsPanel, MemoryPanel, MetricSparks, OomBanner, RunStats
from screens.widgets.run_picker import RunPicker
from slmtui import monitor_data
from slmtui.monitor_data import EMPTY_VIEW, RunView
from slmtui.monitor_feed import MonitorFeed
from slmtui.runs import RunInfo
from slmtui.store import JournalEntry
from slmtui.ui.shell import ShellScreen
from slmtui.ui.themes import stylesheet

SMOOTHING_STEPS = (0.0, 0.6, 0.9, 0.99)
_CONTROL_TEXT = {STOP_COMMAND: "stop after its current step", CHECKPOINT_COMMAND: "save a checkpoint now",
                 EVAL_COMMAND: "evaluate now"}


def suggested_spec(view: RunView) -> dict[str, Any] | None:
    """The OOM post-mortem's suggested spec, if the run has one."""
    post = (view.oom or {}).get("post_mortem")
    spec = post.get("suggested_spec") if isinstance(post, dict) else None
    return spec if isinstance(spec, dict) else None


class MonitorScreen(ShellScreen):
    """Loss, learning rate, gradient norm, throughput, ETA, memory and generations of one run, live."""

    SCREEN_NAME = "Monitor"
    CSS_PATH: ClassVar = [stylesheet("monitor.tcss")]
    LIST_SECONDS: ClassVar[float] = 2.0
    """How often the run list is re-read (new runs, finished ones)."""
    CLOCK_SECONDS: ClassVar[float] = 1.0
    """How often the clock is read for the figures."""
    GPU_POLL: ClassVar[bool] = True
    """Read NVML for the GPU's memory (off in snapshot tests, whose picture must not depend on the machine)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "focus_runs", "Runs", id="monitor.runs", tooltip="Pick another run from the list"),
        Binding("p", "pin", "Pin note", id="monitor.pin", tooltip="Pin an aha note to the current step"),
        Binding("s", "stop", "Stop", id="monitor.stop", tooltip="Ask the run to stop after this step"),
        Binding("c", "checkpoint", "Checkpoint", id="monitor.checkpoint", tooltip="Save a checkpoint now"),
        Binding("e", "evaluate", "Eval", id="monitor.eval", tooltip="Evaluate on the validation split now"),
        Binding("l", "toggle_log", "Log scale", id="monitor.log", tooltip="Plot the loss on a log scale"),
        Binding("m", "smoothing", "Smooth", id="monitor.smooth", tooltip="Cycle the train loss smoothing"),
        Binding("g", "toggle_generations", "Generations", id="monitor.generations",
                tooltip="Show the latest evaluation's generations in place of the chart"),
        Binding("n", "open_suggested", "Fix in New run", id="monitor.fix",
                tooltip="Open the OOM post-mortem's suggested spec in New run"),
    ]

    runs: reactive[tuple[RunInfo, ...]] = reactive((), init=False)
    """Every run, newest first (handed to the picker)."""
    selected: reactive[str | None] = reactive(None, init=False)
    """The run on show."""
    view: reactive[RunView] = reactive(EMPTY_VIEW, always_update=True, init=False)
    """The latest snapshot of the selected run (handed to every panel)."""
    markers: reactive[tuple[int, ...]] = reactive((), init=False)
    """Steps of the selected run with an aha note pinned."""
    log_scale: reactive[bool] = reactive(False, init=False)
    """Loss on a log scale."""
    smoothing: reactive[float] = reactive(0.6, init=False)
    """Train loss smoothing weight."""
    gpu: reactive[dict[str, Any] | None] = reactive(None, always_update=True, init=False)
    """The GPU reading shown beside the run's memory."""
    now: reactive[float] = reactive(0.0, init=False)
    """The clock (`slmtui.monitor_data.now`), read every `CLOCK_SECONDS`: the ETA and the stall line age with
    it, not only when an event arrives."""

    @dataclass
    class RunUpdated(Message):
        """A followed run has news; a newer one for the same run replaces it while unhandled."""

        run_id: str

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, MonitorScreen.RunUpdated) and message.run_id == self.run_id

    @dataclass
    class RunsListed(Message):
        """The runs folder was read."""

        runs: tuple[RunInfo, ...]

    @dataclass
    class NotesLoaded(Message):
        """The aha notes of a run were read from the journal."""

        run_id: str
        entries: tuple[JournalEntry, ...]

    @dataclass
    class NotePinned(Message):
        """An aha note was written to the journal."""

        entry: JournalEntry

    @dataclass
    class ControlSent(Message):
        """A command was appended to a run's control.jsonl."""

        run_id: str
        command: str

    @dataclass
    class GpuRead(Message):
        """NVML's reading of the run's GPU (or why there is none)."""

        reading: dict[str, Any] | None

    def __init__(self) -> None:
        super().__init__()
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
        self.feed = MonitorFeed(on_update=self._feed_updated)
        self._stop_feed = threading.Event()
        self._list_timer: Timer | None = None
        self._chosen_by_user = False

    def _feed_updated(self, run_id: str) -> None:
        """Called on the feed's thread."""
        self.post_message(self.RunUpdated(run_id))

    @property
    def runs_dir(self) -> Path:
        """Where the runs are (`$SLMTUI_RUNS`, else HOME/runs)."""
        from engine.paths import runs_dir

        return runs_dir(self.host.home, create=False)

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="monitor-main"):
            yield RunPicker(id="monitor-runs").data_bind(runs=MonitorScreen.runs)
            with Vertical(id="monitor-right"):
                yield OomBanner(id="monitor-oom").data_bind(view=MonitorScreen.view)
                yield LossChart(id="monitor-chart").data_bind(
                    markers=MonitorScreen.markers, log_scale=MonitorScreen.log_scale,
                    smoothing=MonitorScreen.smoothing)
                yield GenerationsPanel(id="monitor-generations").data_bind(view=MonitorScreen.view)
                with Horizontal(id="monitor-lower"):
                    yield RunStats(id="monitor-stats").data_bind(view=MonitorScreen.view, now=MonitorScreen.now)
                    with Vertical(id="monitor-side"):
                        yield MemoryPanel(id="monitor-memory").data_bind(view=MonitorScreen.view,
                                                                          gpu=MonitorScreen.gpu)
                        yield MetricSparks(id="monitor-sparks").data_bind(view=MonitorScreen.view)

    def on_body_mounted(self) -> None:
        self.watch(self.app, "active_run", self._follow_active_run, init=False)
        self._run_feed()
        self._list_timer = self.set_interval(self.LIST_SECONDS, self.list_runs)
        self.read_clock()
        self.set_interval(self.CLOCK_SECONDS, self.read_clock)
        self.list_runs()
        if self.GPU_POLL:
            self._sample_gpu()
        self.query_one(RunPicker).focus()

    def read_clock(self) -> None:
        """Read the clock (a seam: tests replace `slmtui.monitor_data.now`)."""
        self.now = monitor_data.now()

    def on_unmount(self) -> None:
        self._stop_feed.set()

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, exit_on_error=False, group="monitor-feed", name="Following the runs")
    def _run_feed(self) -> None:
        self.feed.run(self._stop_feed)

    @work(thread=True, exclusive=True, exit_on_error=False, group="monitor-runs", name="Listing the runs")
    def list_runs(self) -> None:
        """Read the runs folder (summaries and pid files only)."""
        from slmtui.runs import list_runs

        self.post_message(self.RunsListed(tuple(reversed(list_runs(self.runs_dir)))))

    @work(thread=True, exclusive=True, exit_on_error=False, group="monitor-notes", name="Reading the notes")
    def _load_notes(self, run_id: str) -> None:
        self.post_message(self.NotesLoaded(run_id, tuple(self.store.entries(kind="aha", run=run_id))))

    @work(thread=True, exit_on_error=False, group="monitor-write", name="Pinning the note")
    def _pin(self, run_id: str, step: int, text: str) -> None:
        self.post_message(self.NotePinned(self.store.add_entry(text, kind="aha", run=run_id, step=step)))

    @work(thread=True, exit_on_error=False, group="monitor-write", name="Sending the command")
    def _send(self, run_dir: Path, command: str) -> None:
        from slmtui.runs import request

        request(run_dir, command)
        self.post_message(self.ControlSent(run_dir.name, command))

    @work(thread=True, exclusive=True, exit_on_error=False, group="monitor-gpu", name="Reading the GPU")
    def _sample_gpu(self) -> None:
        from slmtui.gpu import Nvml

        nvml = Nvml()
        try:
            while not self._stop_feed.is_set():
                inventory = nvml.snapshot()
                if not inventory.gpus:
                    self.post_message(self.GpuRead({"error": inventory.error or "no GPU"}))
                    return
                device = str((self.view.started or {}).get("device", ""))
                index = int(device.split(":")[1]) if device.startswith("cuda:") else 0
                gpu = next((g for g in inventory.gpus if g.index == index), inventory.gpus[0])
                used, total = gpu.memory_used, gpu.memory_total
                if isinstance(used, int) and isinstance(total, int) and total:
                    self.post_message(self.GpuRead({"index": gpu.index, "used_gib": used / GIB,
                                                    "total_gib": total / GIB}))
                self._stop_feed.wait(2.0)
        finally:
            nvml.close()

    # ------------------------------------------------------------------ messages

    def _with_live_steps(self, runs: tuple[RunInfo, ...]) -> tuple[RunInfo, ...]:
        """The runs with the step the feed has seen where it is ahead of the summary (written every 2 s)."""
        out = []
        for run in runs:
            history = self.feed.history(run.id)
            step = history.view().step if history is not None else 0
            out.append(replace(run, step=step) if step > run.step else run)
        return tuple(out)

    def on_monitor_screen_runs_listed(self, message: RunsListed) -> None:
        self.runs = self._with_live_steps(message.runs)
        for run in message.runs:
            if run.status == "running":
                self.feed.watch(run.dir)  # reattach to every run still training
        if self.selected is None and message.runs:
            ids = [run.id for run in message.runs]
            wanted = self.host.active_run
            running = [run.id for run in message.runs if run.status == "running"]
            self.select_run(wanted if wanted in ids else (running[0] if running else ids[0]))
        elif self.selected is not None:
            self.query_one(RunPicker).show_run(self.selected)

    def on_monitor_screen_run_updated(self, message: RunUpdated) -> None:
        if message.run_id == self.selected:
            self._repaint()
            listed = next((run for run in self.runs if run.id == message.run_id), None)
            if listed is not None and listed.step != self.view.step and listed.status == "running":
                self.runs = self._with_live_steps(self.runs)  # the list says the step the figures say

    def on_monitor_screen_notes_loaded(self, message: NotesLoaded) -> None:
        if message.run_id == self.selected:
            self.markers = tuple(sorted({e.step for e in message.entries if e.step is not None}))

    def on_monitor_screen_note_pinned(self, message: NotePinned) -> None:
        entry = message.entry
        if entry.run == self.selected and entry.step is not None:
            self.markers = tuple(sorted({*self.markers, entry.step}))
        self.notify(f"Pinned to step {entry.step:,} in the journal.", timeout=3)

    def on_monitor_screen_control_sent(self, message: ControlSent) -> None:
        self.notify(f"Asked {message.run_id} to {_CONTROL_TEXT[message.command]}.", timeout=4)

    def on_monitor_screen_gpu_read(self, message: GpuRead) -> None:
        self.gpu = message.reading

    @on(RunPicker.RunChosen)
    def _run_chosen(self, message: RunPicker.RunChosen) -> None:
        self._chosen_by_user = True
        self.select_run(message.run_id)
        self.query_one(LossChart).focus()

    # ------------------------------------------------------------------ state

    def _follow_active_run(self, run_id: str | None) -> None:
        """A run made active elsewhere (launched from New run, say) is shown, even over one chosen here."""
        if run_id and run_id != self.selected:
            self.select_run(run_id)

    def select_run(self, run_id: str) -> None:
        """Show `run_id` (following it, from its first event, if not yet followed)."""
        run = next((r for r in self.runs if r.id == run_id), None)
        run_dir = run.dir if run is not None else self.runs_dir / run_id
        self.feed.watch(run_dir)
        self.selected = run_id

    def watch_selected(self, run_id: str | None) -> None:
        self.markers = ()
        self.view = EMPTY_VIEW
        chart = self.query_one(LossChart)
        chart.train, chart.val, chart.border_title = (), (), "loss"
        if run_id is None:
            return
        setattr(self.host, "active_run", run_id)  # noqa: B010 - the header shows it
        self.query_one(RunPicker).show_run(run_id)
        self._load_notes(run_id)
        self._repaint()

    def _repaint(self) -> None:
        history = self.feed.history(self.selected) if self.selected else None
        if history is None:
            return
        view = history.view()
        chart = self.query_one(LossChart)
        chart.x_max = view.total_steps
        chart.val = view.val_loss
        chart.train = view.loss
        chart.border_title = f"loss · steps {view.loss[0].step:,}–{view.loss[-1].last_step:,}" if view.loss else "loss"
        status_changed = view.status != self.view.status or (view.oom is None) != (self.view.oom is None)
        self.view = view
        if status_changed:
            self.refresh_bindings()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("stop", "checkpoint", "evaluate"):
            return self.view.status == "running" and self.view.run_id == self.selected
        if action == "pin":
            return self.selected is not None and bool(self.view.run_id)
        if action == "open_suggested":
            return suggested_spec(self.view) is not None
        return True

    def _selected_dir(self) -> Path | None:
        history = self.feed.history(self.selected) if self.selected else None
        return history.run_dir if history is not None else None

    def action_focus_runs(self) -> None:
        """Move to the run list."""
        self.query_one(RunPicker).focus()

    def action_stop(self) -> None:
        """Ask the run to stop after its current step (with a checkpoint), after a confirmation."""
        from screens.widgets.dialogs import ConfirmDialog

        run_dir = self._selected_dir()
        if run_dir is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._send(run_dir, STOP_COMMAND)

        question = f"Stop {run_dir.name} after its current step? It saves a checkpoint first."
        self.app.push_screen(ConfirmDialog("Stop the run", question, confirm_label="Stop"), answer)

    def action_checkpoint(self) -> None:
        """Ask the run to save a checkpoint after this step."""
        run_dir = self._selected_dir()
        if run_dir is not None:
            self._send(run_dir, CHECKPOINT_COMMAND)

    def action_evaluate(self) -> None:
        """Ask the run to evaluate on the validation split after this step."""
        run_dir = self._selected_dir()
        if run_dir is not None:
            self._send(run_dir, EVAL_COMMAND)

    def action_pin(self) -> None:
        """Pin an aha note to the step the run is at now."""
        from screens.widgets.pin_dialog import PinNoteDialog

        run_id, step = self.view.run_id, self.view.step
        if not run_id:
            return

        def pinned(text: str | None) -> None:
            if text:
                self._pin(run_id, step, text)

        self.app.push_screen(PinNoteDialog(run_id, step), pinned)

    def action_toggle_log(self) -> None:
        """Switch the loss axis between linear and log."""
        self.log_scale = not self.log_scale

    def action_smoothing(self) -> None:
        """Cycle the train loss smoothing: none, 0.6, 0.9, 0.99."""
        order = SMOOTHING_STEPS
        self.smoothing = order[(order.index(self.smoothing) + 1) % len(order)] if self.smoothing in order else 0.6

    def action_toggle_generations(self) -> None:
        """Show the generations where the chart is, or the chart again."""
        self.toggle_class("-generations")

    def action_open_suggested(self) -> None:
        """Open New run with the OOM post-mortem's suggested spec."""
        spec = suggested_spec(self.view)
        if spec is None:
            return
        self.host.open_new_run(spec)
