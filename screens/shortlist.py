"""The Shortlist screen: candidate base models side by side, their memory verdict here, and quick evaluations.

Candidates come from the catalog or any hub id or local folder (typed in the add box). Each row shows the
parameters, context length, licence, gated or not, the memory verdict for the chosen method on this GPU (or a
GPU picked from the catalog when there is none), and the latest quick evaluation on the chosen dataset.
`e` evaluates every candidate (one engine process each, in a worker); `enter` opens New run with the
highlighted model; `p` opens the playground.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static
from textual.worker import get_current_worker

from engine.safe_text import visible, visible_line
from screens.widgets.select_value import still_chosen
from slmtui import evals, shortlist
from slmtui.shortlist import GpuTarget, ShortlistRow
from slmtui.ui.shell import ShellHost, ShellScreen
from slmtui.ui.themes import stylesheet

ADD_IDLE = "add: catalog name, hub id or folder  (a)"
ADD_TYPING = "a catalog name, a hub id (owner/name) or a folder, then enter"
COLUMNS = ("model", "params", "context", "licence", "gated", "fit", "loss", "acc", "tok/s", "peak GiB")


def format_params(params: float | None) -> str:
    """135M, 1.5B, 107k."""
    if params is None:
        return "?"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if params >= scale:
            return f"{params / scale:.3g}{suffix}"
    return f"{params:.0f}"


def format_context(tokens: int | None) -> str:
    """32k, 512."""
    if tokens is None:
        return "?"
    return f"{tokens // 1024}k" if tokens >= 1024 and tokens % 1024 == 0 else f"{tokens:,}"


def format_number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def row_cells(row: ShortlistRow) -> tuple[str, ...]:
    """One table row: what a person needs to choose a base model (names and licences as plain one-line text)."""
    c, fit, r = row.candidate, row.fit, row.result
    gated = "?" if c.gated is None else ("yes" if c.gated else "no")
    fits = fit.verdict + (f" ×{fit.max_micro_batch}" if fit.max_micro_batch else "")
    return tuple(visible_line(cell) for cell in (c.name if c.source in ("catalog", "hub") else f"{c.name} ({c.source})", format_params(c.params),
            format_context(c.context_length), c.license or "?", gated, fits,
            format_number(r.metric("loss") if r else None, ".3f"),
            format_number(r.metric("accuracy") if r else None, ".2f"),
            format_number(r.metric("tokens_per_s") if r else None, ",.0f"),
            format_number(r.metric("mem_peak_gib") if r else None, ".2f")))


class ShortlistScreen(ShellScreen):
    """Base models to try on your data, with their quick evaluations."""

    SCREEN_NAME = "Shortlist"
    CSS_PATH: ClassVar = [stylesheet("shortlist.tcss")]
    POLL_SECONDS: ClassVar[float] = 1.0
    """How often the store is checked for changes (results written by `slmtui eval` elsewhere)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="shortlist.add", tooltip="Type a catalog name, a hub id or a folder to add"),
        Binding("d,delete", "remove", "Remove", id="shortlist.remove", tooltip="Remove the highlighted model"),
        Binding("e", "evaluate", "Evaluate", id="shortlist.evaluate",
                tooltip="Evaluate every shortlisted model on a representative subset of the data"),
        Binding("x", "stop", "Stop", id="shortlist.stop", tooltip="Stop the evaluation in progress"),
        Binding("m", "next_method", "Method", id="shortlist.method", tooltip="Judge memory for the next method"),
        Binding("p", "playground", "Playground", id="shortlist.playground",
                tooltip="Base and fine-tuned answers side by side"),
        Binding("enter", "choose", "New run", id="shortlist.choose",
                tooltip="Open New run with the highlighted model"),
        Binding("escape", "focus_table", "Table", show=False, id="shortlist.table"),
    ]

    rows: reactive[tuple[ShortlistRow, ...]] = reactive(tuple, always_update=True, init=False)
    """The shortlist as last loaded."""
    target: reactive[GpuTarget | None] = reactive(None, init=False)
    """The GPU the memory verdicts are against."""
    method_kind: reactive[str] = reactive("lora", init=False)
    """The training method the verdicts are for."""
    status: reactive[str] = reactive("e evaluates every model on a representative subset of the dataset below; "
                                     "enter opens New run with the highlighted one.", init=False)
    """What the evaluation is doing (or did)."""
    evaluating: reactive[bool] = reactive(False, init=False)
    """Whether an evaluation is running."""

    @dataclass
    class RowsLoaded(Message):
        """The shortlist, its verdicts and results were read."""

        rows: tuple[ShortlistRow, ...]
        target: GpuTarget
        method: str
        token: object
        data: str = ""
        subset: int = 64

    @dataclass
    class ModelAdded(Message):
        """A model was added to the shortlist."""

        model: str

    @dataclass
    class ModelRemoved(Message):
        """A model was removed from the shortlist."""

        model: str

    @dataclass
    class AddRefused(Message):
        """What was typed names no model; `reason` is one sentence."""

        reason: str

    @dataclass
    class EvaluationProgressed(Message):
        """An evaluation's engine reported a step (`phase`: loading, scoring, generating)."""

        model: str
        phase: str
        done: int
        total: int

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, type(self)) and message.model == self.model and message.phase == self.phase

    @dataclass
    class EvaluationFinished(Message):
        """Every shortlisted model was evaluated (or failed, with why)."""

        results: list[Any]
        failures: dict[str, str]

    def __init__(self, target: GpuTarget | None = None) -> None:
        super().__init__()
        self._fixed_target = target
        self._token: object = None
        self._poll_timer: Timer | None = None

    @classmethod
    def for_host(cls, host: ShellHost) -> ShortlistScreen:
        return cls()

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="shortlist-bar"):
            names = [m for _, m in shortlist.catalog_choices()] + [label.split(" ")[0] for label, _ in
                                                                   shortlist.catalog_choices()]
            yield Input(placeholder=ADD_IDLE, id="shortlist-add",
                        suggester=SuggestFromList(names, case_sensitive=False), tooltip="Enter adds it")
            yield Select([(m, m) for m in shortlist.METHODS], value="lora", allow_blank=False, id="shortlist-method",
                         tooltip="The method the memory verdicts are for (m cycles)")
        yield Static("", id="shortlist-target")
        table: DataTable[str] = DataTable(id="shortlist-table", cursor_type="row", zebra_stripes=True)
        yield table
        with Horizontal(id="shortlist-evalbar"):
            yield Input(placeholder="dataset to evaluate on (file, folder or hub id)", id="shortlist-data")
            yield Input("64", placeholder="rows", type="integer", id="shortlist-subset",
                        tooltip="Examples per model, chosen representatively")
        yield Static("", id="shortlist-status")

    def on_body_mounted(self) -> None:
        self.watch_status(self.status)
        table = self.query_one("#shortlist-table", DataTable)
        table.add_columns(*COLUMNS)
        table.focus()
        self._poll_timer = self.set_interval(self.POLL_SECONDS, self.check_store)
        self.load(probe=True)

    def on_screen_suspend(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.pause()

    def on_screen_resume(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.resume()
            self.check_store()

    # ------------------------------------------------------------------ loading

    def check_store(self) -> None:
        """Reload when the store changed (an evaluation finished, another process wrote)."""
        if self.store.change_token() != self._token:
            self.load(probe=False)

    @work(thread=True, exclusive=True, exit_on_error=False, group="shortlist-load", name="Reading the shortlist")
    def load(self, probe: bool) -> None:
        """Read the shortlist, the settings and the results; ask NVML for the GPU on the first load."""
        token = self.store.change_token()
        target = self._fixed_target or (self.target if self.target is not None and not probe else None)
        if target is None:
            target = shortlist.gpu_target(self.store)
        method = shortlist.method(self.store)
        data = shortlist.evaluation_data(self.store, self.host.home)
        rows = tuple(shortlist.rows(self.store, target, data))
        subset = self.store.setting(shortlist.SUBSET_KEY, 64)
        if not get_current_worker().is_cancelled:
            self.post_message(self.RowsLoaded(rows, target, method, token, data, subset))

    def _fill_settings(self, data: str, method: str, subset: Any) -> None:
        self.query_one("#shortlist-data", Input).value = data
        self.query_one("#shortlist-method", Select).value = method
        self.query_one("#shortlist-subset", Input).value = str(subset)

    def on_shortlist_screen_rows_loaded(self, message: RowsLoaded) -> None:
        if self._token is None:  # the first load fills the fields from the settings
            self._fill_settings(message.data, message.method, message.subset)
        self._token = message.token
        self.target = message.target
        self.method_kind = message.method
        self.rows = message.rows

    def watch_rows(self, rows: tuple[ShortlistRow, ...]) -> None:
        table = self.query_one("#shortlist-table", DataTable)
        keep = self.highlighted
        lines = [row_cells(row) for row in rows]
        table.clear(columns=True)
        # Widths set here, from the cells: the table's own auto-width lags when rows are replaced quickly.
        for i, name in enumerate(COLUMNS):
            table.add_column(name, width=max([len(name), *(len(cells[i]) for cells in lines)]))
        for row, cells in zip(rows, lines, strict=True):
            table.add_row(*(Text(cell) for cell in cells), key=row.candidate.model)
        if keep is not None and any(r.candidate.model == keep for r in rows):
            table.move_cursor(row=table.get_row_index(keep))
        self._describe_target()
        self.refresh_bindings()  # remove and choose need a row

    def watch_target(self) -> None:
        self._describe_target()

    def watch_status(self, status: str) -> None:
        self.query_one("#shortlist-status", Static).update(Content(visible(status)))

    def _describe_target(self) -> None:
        target = self.target
        if target is None:
            return
        where = (f"{target.name}, {target.capacity_gib:.1f} GiB" if target.here else
                 f"{target.name} {target.capacity_gib:g} GiB (no GPU here: the target GPU)")
        count = len(self.rows)
        # An empty table says how to fill it (the first thing a newcomer meets here).
        models = (f"{count} model{'s' if count != 1 else ''}" if count else
                  "No models yet: a adds one, e.g. qwen2.5-0.5b")
        self.query_one("#shortlist-target", Static).update(Content(visible_line(
            f"{models} · fit: {self.method_kind}, micro-batch 1 (×largest) on {where}")))
        self.query_one("#shortlist-target", Static).tooltip = target.reason or None

    @property
    def highlighted(self) -> str | None:
        """The model under the table's cursor."""
        table = self.query_one("#shortlist-table", DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row].candidate.model

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("remove", "choose"):
            return self.highlighted is not None
        if action == "stop":
            return self.evaluating
        if action == "evaluate":
            return not self.evaluating
        return True

    def action_focus_table(self) -> None:
        self.set_focus(self.query_one("#shortlist-table", DataTable))

    @on(DataTable.RowSelected, "#shortlist-table")
    def _row_selected(self) -> None:
        self.action_choose()  # enter on the table

    def action_add(self) -> None:
        """Type a model to add."""
        # At once, not on the next idle (as `focus()` does): keys typed right after `a` belong to the box.
        self.set_focus(self.query_one("#shortlist-add", Input))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if event.widget.id == "shortlist-add":
            event.widget.placeholder = ADD_TYPING  # type: ignore[attr-defined]

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        if event.widget.id == "shortlist-add":
            event.widget.placeholder = ADD_IDLE  # type: ignore[attr-defined]

    @on(Input.Submitted, "#shortlist-add")
    def _add_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._add(event.value)
        event.input.value = ""
        self.action_focus_table()

    @work(thread=True, exit_on_error=False, group="shortlist-write", name="Adding the model")
    def _add(self, text: str) -> None:
        try:
            model = shortlist.add(self.store, text)
        except shortlist.ShortlistError as exc:
            self.post_message(self.AddRefused(str(exc)))
            return
        self.post_message(self.ModelAdded(model))

    def on_shortlist_screen_add_refused(self, message: AddRefused) -> None:
        self.notify(message.reason, severity="warning", timeout=6)

    def on_shortlist_screen_model_added(self, message: ModelAdded) -> None:
        self.notify(f"Added {message.model}.", timeout=3)
        self.load(probe=False)

    def action_remove(self) -> None:
        """Remove the highlighted model."""
        if self.highlighted is not None:
            self._remove(self.highlighted)

    @work(thread=True, exit_on_error=False, group="shortlist-write", name="Removing the model")
    def _remove(self, model: str) -> None:
        shortlist.remove(self.store, model)
        self.post_message(self.ModelRemoved(model))

    def on_shortlist_screen_model_removed(self, message: ModelRemoved) -> None:
        self.notify(f"Removed {message.model}.", timeout=3)
        self.load(probe=False)

    def action_next_method(self) -> None:
        """Judge the memory for the next training method."""
        order = shortlist.METHODS
        self.query_one("#shortlist-method", Select).value = order[(order.index(self.method_kind) + 1) % len(order)]

    @on(Select.Changed, "#shortlist-method")
    def _method_chosen(self, event: Select.Changed) -> None:
        if still_chosen(event) and str(event.value) != self.method_kind:
            self.method_kind = str(event.value)
            self._save_setting(shortlist.METHOD_KEY, self.method_kind)

    @work(thread=True, exit_on_error=False, group="shortlist-settings", name="Saving the setting")
    def _save_setting(self, key: str, value: Any) -> None:
        self.store.set_setting(key, value)
        self.load(probe=False)

    # ------------------------------------------------------------------ evaluation

    def action_evaluate(self) -> None:
        """Evaluate every shortlisted model on a representative subset of the dataset."""
        data = self.query_one("#shortlist-data", Input).value.strip()
        if not data:
            self.notify("Type the dataset to evaluate on first.", severity="warning")
            self.query_one("#shortlist-data", Input).focus()
            return
        if not self.rows:
            self.notify("Add a model first (a).", severity="warning")
            return
        subset_text = self.query_one("#shortlist-subset", Input).value.strip()
        subset = int(subset_text) if subset_text.isdigit() else 64
        self.evaluating = True
        self.refresh_bindings()
        self.status = f"Evaluating {len(self.rows)} model(s) on {subset or 'all'} rows of {data}..."
        self._evaluate([r.candidate.model for r in self.rows], data, subset)

    @work(thread=True, exclusive=True, exit_on_error=False, group="shortlist-eval", name="Evaluating the shortlist")
    def _evaluate(self, models: list[str], data: str, subset: int) -> None:
        self.store.set_setting(shortlist.DATA_KEY, data)
        self.store.set_setting(shortlist.SUBSET_KEY, subset)
        worker = get_current_worker()
        metrics = evals.checklist_metrics(self.store)
        requests = [evals.EvalRequest(model=m, data=data, subset=subset, metrics=metrics) for m in models]

        def progressed(model: str, event: dict[str, Any]) -> None:
            if event.get("type") == "progress":
                self.post_message(self.EvaluationProgressed(model, str(event.get("phase")), int(event.get("done", 0)),
                                                            int(event.get("total", 0))))
            elif event.get("type") == "started":
                self.post_message(self.EvaluationProgressed(model, "loaded", 0, 0))

        outcome = evals.evaluate_models(requests, self.store, on_event=progressed,
                                        should_stop=lambda: worker.is_cancelled)
        self.post_message(self.EvaluationFinished(outcome.results, outcome.failures))

    def on_shortlist_screen_evaluation_progressed(self, message: EvaluationProgressed) -> None:
        counts = f" {message.done}/{message.total}" if message.total else ""
        self.status = f"{message.model}: {message.phase}{counts}"

    def on_shortlist_screen_evaluation_finished(self, message: EvaluationFinished) -> None:
        self.evaluating = False
        self.refresh_bindings()
        done = len(message.results)
        parts = [f"Evaluated {done} model{'s' if done != 1 else ''}."]
        if len(message.results) > 1:
            best = evals.rank(message.results)[0]
            name = best.model.rstrip("/").rsplit("/", 1)[-1]
            parts.append(f"Best by {evals.primary_metric(message.results)}: {name}.")
        for model, why in message.failures.items():
            parts.append(f"{model}: {why}")
        self.status = " ".join(parts)
        self.load(probe=False)

    def action_stop(self) -> None:
        """Stop the evaluation in progress (the engine process is ended)."""
        self.workers.cancel_group(self, "shortlist-eval")
        self.evaluating = False
        self.status = "Stopped the evaluation."
        self.refresh_bindings()

    # ------------------------------------------------------------------ choosing and the playground

    def action_choose(self) -> None:
        """Open New run with the highlighted model (and the dataset evaluated on)."""
        model = self.highlighted
        if model is None:
            return
        data = self.query_one("#shortlist-data", Input).value.strip()
        spec: dict[str, Any] = {"model": {"name": model}}
        if data:
            spec["data"] = {"path": data}
        self.host.open_new_run(spec)

    def action_playground(self) -> None:
        """Open the playground on the highlighted run (or the newest trained one) against its base."""
        from engine.paths import runs_dir
        from screens.playground import PlaygroundScreen
        from slmtui.playground import default_pair

        pair = default_pair("", self.highlighted, [r.candidate.model for r in self.rows],
                            runs_dir(self.host.home, create=False))
        if pair is None:
            self.notify("Train a run, or shortlist two models, to compare answers.", severity="warning")
            return
        self.app.push_screen(PlaygroundScreen(pair))
