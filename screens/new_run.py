"""The New run screen: edit a run spec with live validation, its memory estimate and its data report, then
save it or launch it (full or pilot). Opened over any screen (key n), prefilled from a spec dict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Checkbox, Header, Input, Label, Select, Static
from textual.worker import get_current_worker

from engine.paths import runs_dir
from engine.protocol import GIB
from engine.safe_text import visible, visible_line
from engine.spec import RunSpec, SpecError, SpecProblem
from screens.widgets.dialogs import ConfirmDialog, PathDialog
from slmtui.data_report import saved_spec_data
from slmtui.data_service import DataCheckFailed, DataRequest, DataSummary, check_data
from slmtui.fit import FitError, SpecEstimate, catalog_gpus, estimate_spec
from slmtui.gpu import Inventory, Nvml
from slmtui.launch import LaunchCheck, check_launch, launch_run
from slmtui.new_run import (
    FIELDS,
    PILOT_FRACTION,
    SECTIONS,
    FormField,
    RunNotFound,
    apply_form,
    default_raw,
    default_spec_path,
    estimable,
    last_run_raw,
    merge,
    save_spec,
    validate,
    value_text,
)
from slmtui.target_gpu import DEFAULT_TARGET_GPU, set_target_gpu, target_gpu
from slmtui.ui.footer import FittingFooter
from slmtui.ui.themes import stylesheet
from slmtui.ui.workers import ReportsWorkerFailures

#: Quiet time after the last keystroke before the memory estimate is recomputed (seconds).
ESTIMATE_DEBOUNCE_S = 0.25
#: Quiet time before the data check (a subprocess that tokenises the whole dataset) is started again.
DATA_DEBOUNCE_S = 1.0
#: The fields the data check reads: while one has a problem there is no data report.
DATA_CHECK_FIELDS = frozenset({"data.path", "model.name", "data.max_length", "data.shape", "data.overlength",
                               "data.scrub_types", "data.phone_regions"})


def _control_id(field: FormField) -> str:
    return "f-" + field.path.replace(".", "-")


def _error_id(field: FormField) -> str:
    return "e-" + field.path.replace(".", "-")


def _choices(options: list[str]) -> list[tuple[Content, str]]:
    """A choice field's options; a bad value read from a spec file shows as typed, never as markup."""
    return [(Content(visible_line(c)), c) for c in options]


class NewRunScreen(ReportsWorkerFailures, Screen[None]):
    """A spec editor over the current screen. `spec` prefills it (a raw spec dict, e.g. an OOM's suggested fix
    or `{"model": {"name": ...}}` from the shortlist), laid over the defaults (the demo's model and data when
    HOME/demo is built, and the data settings saved on the Data screen)."""

    CSS_PATH: ClassVar = [stylesheet("new_run.tcss")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "launch", "Launch", id="new_run.launch", tooltip="Start the run (detached)"),
        Binding("ctrl+o", "pilot", "Pilot", id="new_run.pilot",
                tooltip=f"Start a pilot run on {PILOT_FRACTION:.0%} of the data, to predict the full run's time"),
        Binding("ctrl+s", "save", "Save", id="new_run.save", tooltip="Write the spec as TOML"),
        Binding("ctrl+l", "load_last", "Last run", id="new_run.last", tooltip="Fill in the last run's spec"),
        Binding("escape", "close", "Close", id="new_run.close", tooltip="Close without launching"),
    ]

    problems: reactive[tuple[SpecProblem, ...]] = reactive(tuple, init=False, always_update=True)
    """The problems of the spec as typed, each with the key it is about."""
    estimate: reactive[SpecEstimate | None] = reactive(None, init=False)
    """The memory estimate of the spec as typed (None while it cannot be made)."""
    data_summary: reactive[DataSummary | None] = reactive(None, init=False)
    """The data report's key numbers for the dataset, model and length as typed."""

    @dataclass
    class EstimateUpdated(Message):
        """The memory estimate was recomputed (`error`: why there is none)."""

        estimate: SpecEstimate | None
        error: str | None

    @dataclass
    class DataChecked(Message):
        """The data check finished (`error`: the engine's one sentence)."""

        request: DataRequest
        summary: DataSummary | None
        error: str | None

    @dataclass
    class SpecSaved(Message):
        """The spec was written as TOML."""

        path: Path

    @dataclass
    class Launched(Message):
        """A run was started from this screen (`notes`: what the pre-launch checks said)."""

        run_id: str
        pilot: bool
        notes: tuple[str, ...] = ()

    @dataclass
    class LaunchRefused(Message):
        """The pre-launch checks refused (a forceable refusal asks whether to launch anyway)."""

        spec: RunSpec
        pilot: bool
        check: LaunchCheck

    def __init__(self, spec: dict[str, Any] | None = None, nvml: Nvml | None = None) -> None:
        super().__init__()
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide"), (160, "-huge")]
        self._prefill = spec or {}
        self._nvml = nvml
        self._base: dict[str, Any] = {}
        self._saved_data: dict[str, Any] = {}
        self.raw: dict[str, Any] = {}
        self.spec: RunSpec | None = None
        self._inventory: Inventory | None = None
        self._estimate_timer: Timer | None = None
        self._data_timer: Timer | None = None
        self._data_request: DataRequest | str | None = "unset"

    @property
    def home(self) -> Path | None:
        """The console's HOME (None outside the console: engine.paths decides)."""
        home = getattr(self.app, "home", None)
        return home if isinstance(home, Path) else None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        store = getattr(self.app, "store", None)
        self._saved_data = saved_spec_data(store) if store is not None else {}
        self._base = merge(default_raw(self.home, self._saved_data), self._prefill)
        self._target = target_gpu(store) if store is not None else DEFAULT_TARGET_GPU
        yield Header(icon="≡")
        with Horizontal(id="nr-main"):
            with VerticalScroll(id="nr-form"):
                for title, group in SECTIONS:
                    yield Label(title, classes="nr-section")
                    for field in group:
                        with Horizontal(classes="nr-row"):
                            yield Label(field.label, classes="nr-label")
                            yield self._control(field, value_text(self._base, field))
                        yield Static("", id=_error_id(field), classes="nr-error")
            with VerticalScroll(id="nr-side"):
                yield Label("Problems", classes="nr-section")
                yield Static("", id="nr-problems")
                yield Label("Memory", classes="nr-section")
                yield Select([(f"{n} ({m:g} GiB)", f"cat:{n}") for n, m in catalog_gpus()], value=f"cat:{self._target}",
                             allow_blank=False, id="nr-gpu", tooltip="The GPU to estimate for", compact=True)
                yield Static("Estimating...", id="nr-estimate")
                yield Label("Data", classes="nr-section")
                yield Static("", id="nr-data")
        yield FittingFooter()

    def _control(self, field: FormField, value: str | bool) -> Input | Select[str] | Checkbox:
        tip = f"{field.path}: {field.help}" if field.help else field.path
        if field.kind == "bool":
            return Checkbox(field.states[bool(value)], bool(value), id=_control_id(field), tooltip=tip, compact=True)
        if field.kind == "choice":
            options = list(field.choices)
            if value and value not in options:  # a bad value from a spec file stays visible, and is flagged
                options.append(str(value))
            return Select(_choices(options), value=str(value) if value else options[0], allow_blank=False,
                          id=_control_id(field), tooltip=tip, compact=True)
        # A value read from a spec file is shown (and then used) with its control characters visible.
        return Input(visible_line(value), id=_control_id(field), tooltip=tip, placeholder=field.placeholder, compact=True)

    def on_mount(self) -> None:
        self.title = "New run"
        self.sub_title = "edit, check, launch"
        self._revalidate()
        self._read_gpus()
        self.query_one(f"#{_control_id(FIELDS[1])}", Input).focus()

    # ------------------------------------------------------------------ editing and validation

    def form_values(self) -> dict[str, str | bool]:
        """Every field's current text (switches as bools), keyed by field path."""
        values: dict[str, str | bool] = {}
        for field in FIELDS:
            control = self.query_one(f"#{_control_id(field)}")
            if isinstance(control, Checkbox):
                values[field.path] = control.value
            elif isinstance(control, Select):
                values[field.path] = str(control.value)
            elif isinstance(control, Input):
                values[field.path] = control.value
        return values

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _edited(self, event: Message) -> None:
        control = getattr(event, "control", None)
        if control is not None and str(control.id or "").startswith("f-"):
            self._revalidate()

    def _revalidate(self) -> None:
        for field in FIELDS:
            if field.kind == "bool":  # a switch says what its state means, not only an X
                box = self.query_one(f"#{_control_id(field)}", Checkbox)
                box.label = field.states[box.value]
        self.raw = apply_form(self._base, self.form_values())
        self.spec, problems = validate(self.raw)
        self.problems = tuple(problems)
        self._schedule_estimate()
        self._schedule_data_check()

    def watch_problems(self, problems: tuple[SpecProblem, ...]) -> None:
        by_field: dict[str, list[str]] = {}
        for problem in problems:
            by_field.setdefault(problem.field, []).append(problem.message)
        for field in FIELDS:
            label = self.query_one(f"#{_error_id(field)}", Static)
            text = " ".join(by_field.get(field.path, ()))
            label.update(Content(visible(text)))  # problems quote what was typed: plain text, never markup
            label.display = bool(text)
            self.query_one(f"#{_control_id(field)}").set_class(bool(text), "nr-invalid")
        panel = self.query_one("#nr-problems", Static)
        panel.set_class(bool(problems), "nr-has-problems")
        panel.update(Content(visible("\n".join(f"• {p.message}" for p in problems) if problems
                                     else "None: ready to launch.")))

    def refill(self, raw: dict[str, Any]) -> None:
        """Show another spec (the last run's, a suggested fix) in every field and check it."""
        self._base = merge(default_raw(self.home, self._saved_data), raw)
        with self.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            for field in FIELDS:
                control = self.query_one(f"#{_control_id(field)}")
                value = value_text(self._base, field)
                if isinstance(control, Checkbox):
                    control.value = bool(value)
                elif isinstance(control, Select):
                    options = list(field.choices) + ([str(value)] if value and value not in field.choices else [])
                    control.set_options(_choices(options))
                    control.value = str(value) if value else options[0]
                elif isinstance(control, Input):
                    control.value = visible_line(value)
        self._revalidate()

    # ------------------------------------------------------------------ memory estimate

    @work(thread=True, exclusive=True, exit_on_error=False, group="new-run-gpus", name="Reading the GPUs")
    def _read_gpus(self) -> None:
        nvml = self._nvml if self._nvml is not None else Nvml()
        try:
            inv = nvml.snapshot()
        finally:
            nvml.close()
        self.app.call_from_thread(self._gpus_read, inv)

    def _gpus_read(self, inv: Inventory) -> None:
        self._inventory = inv
        here = [(f"GPU {g.index} here ({g.memory_free / GIB:.1f} GiB free)", f"gpu:{g.index}") for g in inv.gpus
                if isinstance(g.memory_free, int)]
        if here:
            select = self.query_one("#nr-gpu", Select)
            with self.prevent(Select.Changed):
                select.set_options([*here, *((f"{n} ({m:g} GiB)", f"cat:{n}") for n, m in catalog_gpus())])
                select.value = here[0][1]
            self._schedule_estimate()
        elif inv.error:
            self.query_one("#nr-gpu", Select).tooltip = f"No GPU here: {inv.error}"

    @on(Select.Changed, "#nr-gpu")
    def _gpu_changed(self, event: Select.Changed) -> None:
        self._schedule_estimate()
        if isinstance(event.value, str) and event.value.startswith("cat:"):
            self._save_target(event.value[4:])

    @work(thread=True, exclusive=True, exit_on_error=False, group="new-run-target", name="Saving the target GPU")
    def _save_target(self, name: str) -> None:
        store = getattr(self.app, "store", None)
        if store is not None:
            set_target_gpu(store, name)

    def gpu_target(self) -> tuple[str, float]:
        """(name, GiB) the estimate is judged against: a GPU here (free memory) or a catalog GPU."""
        kind, _, name = str(self.query_one("#nr-gpu", Select).value).partition(":")
        if kind == "gpu" and self._inventory is not None:
            gpu = next(g for g in self._inventory.gpus if str(g.index) == name)
            assert isinstance(gpu.memory_free, int)
            return f"GPU {name} ({gpu.name}, free)", gpu.memory_free / GIB
        return name, dict(catalog_gpus())[name]

    def _schedule_estimate(self) -> None:
        if self._estimate_timer is not None:
            self._estimate_timer.stop()
        self._estimate_timer = self.set_timer(ESTIMATE_DEBOUNCE_S, self._start_estimate)

    def _start_estimate(self) -> None:
        spec = estimable(self.raw)
        if spec is None:
            self.post_message(self.EstimateUpdated(None, "Fix the model, method, batch or length to see it."))
            return
        gpu, capacity = self.gpu_target()
        self._estimate(spec, gpu, capacity)

    @work(thread=True, exclusive=True, exit_on_error=False, group="new-run-estimate", name="Estimating memory")
    def _estimate(self, spec: RunSpec, gpu: str, capacity: float) -> None:
        try:
            self.post_message(self.EstimateUpdated(estimate_spec(spec, gpu, capacity), None))
        except FitError as exc:
            self.post_message(self.EstimateUpdated(None, str(exc)))

    def on_new_run_screen_estimate_updated(self, message: EstimateUpdated) -> None:
        self.estimate = message.estimate
        panel = self.query_one("#nr-estimate", Static)
        panel.remove_class("fits", "tight", "exceeds")
        if message.estimate is None:
            panel.update(Content(visible(message.error or "")))
            return
        est = message.estimate
        panel.add_class(est.verdict)
        parts = sorted(((v, k) for k, v in est.estimate.breakdown.items() if v >= 0.05), reverse=True)[:4]
        panel.update(Content(visible(f"{est.sentence()}\n" + ", ".join(f"{k} {v:.1f}" for v, k in parts) + " GiB")))

    # ------------------------------------------------------------------ data report

    def data_request(self) -> DataRequest | None:
        """What the data check should read, or None while the dataset or model fields have problems."""
        if any(p.field in DATA_CHECK_FIELDS for p in self.problems):
            return None
        data = self.raw.get("data", {})
        model = str(self.raw.get("model", {}).get("name", ""))
        if not data.get("path") or not model:
            return None
        from engine.catalog import load_catalog

        entry = load_catalog().model(model)
        mapping = tuple(sorted((str(k), str(v)) for k, v in (data.get("map") or {}).items()))
        return DataRequest(path=str(Path(str(data["path"])).expanduser()) if str(data["path"]).startswith("~")
                           else str(data["path"]), tokenizer=entry.hub_id if entry is not None else model, preview=0,
                           max_length=int(data.get("max_length", 1024)), shape=str(data.get("shape", "auto")),
                           format=str(data.get("format", "auto")), split=str(data.get("split_name", "train")),
                           overlength=str(data.get("overlength", "truncate")), map=mapping,
                           scrub=str(data.get("scrub", "auto")),
                           scrub_types=tuple(str(t) for t in data.get("scrub_types") or ()),
                           phone_regions=tuple(str(r) for r in data.get("phone_regions") or ()))

    def _schedule_data_check(self) -> None:
        request = self.data_request()
        if request == self._data_request:
            return
        self._data_request = request
        if self._data_timer is not None:
            self._data_timer.stop()
        panel = self.query_one("#nr-data", Static)
        if request is None:
            panel.update("Give a dataset and a model without problems to see its report.")
            return
        panel.update("Checking the data...")
        self._data_timer = self.set_timer(DATA_DEBOUNCE_S, lambda: self._check_data(request))

    @work(thread=True, exclusive=True, exit_on_error=False, group="new-run-data", name="Checking the data")
    def _check_data(self, request: DataRequest) -> None:
        from slmtui.engine_proc import EngineCancelled

        worker = get_current_worker()
        try:
            summary = check_data(request, home=self.home, cancelled=lambda: worker.is_cancelled)
        except EngineCancelled:
            return
        except DataCheckFailed as exc:
            self.post_message(self.DataChecked(request, None, str(exc)))
            return
        self.post_message(self.DataChecked(request, summary, None))

    def on_new_run_screen_data_checked(self, message: DataChecked) -> None:
        if message.request != self._data_request:
            return  # an answer for what the fields said a while ago
        self.data_summary = message.summary
        panel = self.query_one("#nr-data", Static)
        panel.update(Content(visible("\n".join(message.summary.lines()) if message.summary
                                     else f"Data check: {message.error}")))

    # ------------------------------------------------------------------ actions

    def _valid_spec(self) -> RunSpec | None:
        if self.spec is None:
            count = len(self.problems)
            self.notify(f"Fix the {count} problem{'s' if count != 1 else ''} first (listed on the right).",
                        severity="warning")
            self.app.bell()
        return self.spec

    def action_launch(self) -> None:
        """Start the run as edited (after the disk and GPU checks)."""
        spec = self._valid_spec()
        if spec is not None:
            self._launch(spec, pilot=False, force=False)

    def action_pilot(self) -> None:
        """Start a pilot run on a representative slice of the data, to predict the full run's time."""
        spec = self._valid_spec()
        if spec is not None:
            self._launch(spec, pilot=True, force=False)

    def _snapshot(self) -> Inventory:
        nvml = self._nvml if self._nvml is not None else Nvml()
        try:
            return nvml.snapshot()
        finally:
            nvml.close()

    @work(thread=True, exclusive=True, exit_on_error=False, group="new-run-launch", name="Launching the run")
    def _launch(self, spec: RunSpec, pilot: bool, force: bool) -> None:
        runs = runs_dir(self.home)
        check = check_launch(spec, runs, self._snapshot, force=force, pilot=pilot)
        if check.refusal is not None:
            self.post_message(self.LaunchRefused(spec, pilot, check))
            return
        info = launch_run(spec, runs, home=self.home, pilot=PILOT_FRACTION if pilot else None)
        overridden = tuple(f"Started anyway: {refusal.reason}." for refusal in check.overridden)
        self.post_message(self.Launched(info.id, pilot, check.notes + overridden))

    def on_new_run_screen_launch_refused(self, message: LaunchRefused) -> None:
        refusal = message.check.refusal
        assert refusal is not None
        if not refusal.forceable:
            self.notify(refusal.sentence(), severity="error", timeout=10)
            return

        def answered(go: bool | None) -> None:
            if go:
                self._launch(message.spec, pilot=message.pilot, force=True)

        self.app.push_screen(ConfirmDialog("It may not fit", refusal.sentence("launch anyway"), "Launch anyway"),
                             answered)

    def on_new_run_screen_launched(self, message: Launched) -> None:
        if hasattr(self.app, "active_run"):
            self.app.active_run = message.run_id
        kind = "Pilot run" if message.pilot else "Run"
        notes = " ".join(message.notes)
        self.app.notify(f"{kind} {message.run_id} started; it keeps training if the console closes. {notes}".strip())
        app = self.app
        self.dismiss()
        if hasattr(app, "action_show_screen"):
            app.action_show_screen("Monitor")  # the Monitor follows the active run

    def action_save(self) -> None:
        """Write the spec as TOML to a path (asked for, HOME/specs/NAME.toml by default)."""
        spec = self._valid_spec()
        if spec is None:
            return
        home = self.home or Path.home()

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._save(spec, path)

        self.app.push_screen(PathDialog("Save the spec as TOML", default_spec_path(home, spec)), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="new-run-save", name="Saving the spec")
    def _save(self, spec: RunSpec, path: Path) -> None:
        written = save_spec(spec, path)
        self.post_message(self.SpecSaved(written))

    def on_new_run_screen_spec_saved(self, message: SpecSaved) -> None:
        self.notify(f"Spec written to {message.path}; start it with: slmtui train {message.path}")

    def action_load_last(self) -> None:
        """Fill the form with the last run's spec."""
        try:
            run_id, raw = last_run_raw(runs_dir(self.home))
        except (RunNotFound, SpecError) as exc:
            self.notify(str(exc), severity="warning")
            return
        self.refill(raw)
        self.notify(f"Filled in the spec of run {run_id}.")

    def action_close(self) -> None:
        """Close the editor without launching."""
        self.dismiss()
