"""The Checklist screen: should we fine-tune at all? A scrolling form answered by keyboard, with a live verdict.

Every control carries the dotted path of its answer as its `name` (`alternatives.rag.score`), so one handler
per control type turns a change into `Checklist.set(path, value)`. Each question is a boxed field whose border
names it and whose placeholder is its hint; the reasons and the data steps are checkboxes. The form scrolls
(to the focused field: Tab, shift+Tab and the arrows go through every answer) and the verdict stays docked
beneath it. The screen owns the answers; the verdict panel only renders what is handed down. Loading and saving
run in workers (group "checklist").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.validation import Function
from textual.widgets import Input, Label, RadioSet, Select, Static
from textual.worker import Worker, WorkerState

from screens.widgets.answers import AnswerCheckbox, AnswerRadioButton, DirectionToggle
from screens.widgets.verdict_panel import VerdictPanel
from slmtui import checklist as ck
from slmtui.checklist import Baseline, Checklist, ChecklistError, Verdict
from slmtui.store import Store
from slmtui.ui.shell import ShellHost, ShellScreen
from slmtui.ui.themes import stylesheet

PLATFORMS = ["local workstation", "on-premises cluster", "AWS", "Microsoft Azure", "Google Cloud Platform",
             "Databricks", "Google Colab", "Lambda", "RunPod"]


def _is_number(text: str) -> bool:
    try:
        ck.parse_number(text)
    except ChecklistError:
        return False
    return True


def _field(path: str, value: str, title: str, hint: str, *, classes: str = "", **kw: Any) -> Input:
    """A boxed text answer: `title` on its border, `hint` inside it until something is typed."""
    field = Input(value, placeholder=hint, name=path, classes=f"field {classes}".strip(), **kw)
    field.border_title = title
    return field


def _number_field(path: str, value: float | None, title: str, hint: str = "e.g. 0.72") -> Input:
    return _field(path, ck.format_number(value), title, hint, classes="number",
                  validators=[Function(_is_number, "type a number, e.g. 0.85 or 85%")],
                  tooltip="A number, e.g. 0.85 or 85%; empty for none")


def _choice(option: ck.Option, value: bool, path: str) -> AnswerCheckbox:
    """A checkbox whose label is the option's, followed by its hint."""
    label = Content.assemble(option.label, ("  " + option.hint, "dim")) if option.hint else option.label
    return AnswerCheckbox(label, value, name=path, tooltip=option.hint or None)


def _select(path: str, title: str, options: list[tuple[str, str]], value: str, prompt: str,
            tooltip: str) -> Select[str]:
    select: Select[str] = Select(options, value=value or Select.NULL, prompt=prompt, name=path, compact=True,
                                 tooltip=tooltip)
    select.border_title = title
    return select


class _Form(VerticalScroll, inherit_bindings=False):
    """The scrolling form; without the container's arrow-key bindings, so the arrows move between answers."""


class ChecklistScreen(ShellScreen):
    """Answers the questions before fine-tuning; autosaves each change and keeps the verdict live.

    The shell paints first and the form (a hundred-odd controls) a frame later, so the saved answers are read
    only once the form is mounted.
    """

    SCREEN_NAME = "Checklist"
    CSS_PATH: ClassVar = [stylesheet("checklist.tcss")]
    SAVE_DELAY: ClassVar[float] = 0.4
    """Seconds of quiet after an edit before the answers are saved."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "next_field", "Next", key_display="↓", id="checklist.next",
                tooltip="Go to the next answer (Tab works too)"),
        Binding("up", "previous_field", "Previous", key_display="↑", id="checklist.previous",
                tooltip="Go to the previous answer (shift+Tab works too)"),
        Binding("ctrl+s", "save", "Save", id="checklist.save", tooltip="Save the answers now (they autosave too)"),
    ]

    verdict: reactive[Verdict | None] = reactive(None)
    """The verdict of the current answers (None until they are loaded)."""
    baseline: reactive[Baseline | None] = reactive(None)
    """The best score among the alternatives tried: what every run is compared with."""
    save_state: reactive[str] = reactive("")
    """What the last save did, for the verdict panel's border."""

    @dataclass
    class Loaded(Message):
        """The saved answers were read from the store."""

        checklist: Checklist

    @dataclass
    class Saved(Message):
        """The answers are on disk (the dict written, with `verdict` and `baseline`)."""

        answers: dict[str, Any]

    def __init__(self, store: Store | None = None, *, save_delay: float | None = None, name: str | None = None,
                 id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        if store is not None:
            self.store = store
        self.checklist = Checklist()
        self.loaded = False
        """True once the saved answers are on screen (changes before that are not saved)."""
        self._save_delay = self.SAVE_DELAY if save_delay is None else save_delay
        self._save_timer: Timer | None = None

    @classmethod
    def for_host(cls, host: ShellHost) -> ChecklistScreen:
        return cls(host.store)

    # ------------------------------------------------------------------ layout

    def compose_body(self) -> ComposeResult:
        """The scrolling form, and the verdict docked beneath it."""
        cl = self.checklist
        with _Form(id="checklist-form", can_focus=False):
            yield Label("1  What drives fine-tuning? Pick at least one reason", classes="section -first")
            for d in ck.DRIVERS:
                yield _choice(d, cl.drivers[d.key], f"drivers.{d.key}")
            yield _field("drivers_note", cl.drivers_note, "note", "what should change for the users")

            yield Label("2  Alternatives tried first, and how they did", classes="section")
            for a in ck.ALTERNATIVES:
                ans = cl.alternatives[a.key]
                with Vertical(classes="alternative"):
                    yield AnswerCheckbox(f"{a.label}: tried", ans.tried, name=f"alternatives.{a.key}.tried",
                                         tooltip=a.hint)
                    with Horizontal(classes="pair"):
                        yield _number_field(f"alternatives.{a.key}.score", ans.score, "score")
                        yield _field(f"alternatives.{a.key}.note", ans.note, "note", a.hint)
            yield _select("baseline_metric", "scores are on", [(m.label, m.key) for m in ck.METRICS],
                          cl.baseline_metric, "the first metric with a target",
                          "The metric the alternatives' scores (and the baseline) are measured on")

            yield Label("3  Success metrics: a target each", classes="section")
            for m in ck.METRICS:
                ans_m = cl.metrics[m.key]
                with Horizontal(classes="pair metric"):
                    yield _number_field(f"metrics.{m.key}.target", ans_m.target, f"{m.label} target", "none")
                    toggle = DirectionToggle(ans_m.direction, name=f"metrics.{m.key}.direction",
                                             tooltip="Which way is better (space flips it)")
                    toggle.border_title = "better"
                    yield toggle
                    yield Static(m.hint, classes="hint")

            yield Label("4  Data", classes="section")
            route = RadioSet(name="data.route", tooltip="Own data, or an existing dataset")
            route.border_title = "route"
            with route:
                for r in ck.DATA_ROUTES:
                    yield AnswerRadioButton(r.label, cl.data.route == r.key, name=r.key, tooltip=r.hint)
            for path, title, hint in (("data.source", "where it comes from", "a path or a dataset id"),
                                      ("data.relevance", "why it is relevant", "does it look like the real task?"),
                                      ("data.quality", "how good it is", "labels checked? noise? balance?")):
                yield _field(path, getattr(cl.data, path.split(".")[1]), title, hint)
            yield Label("steps done", classes="subsection")
            for step in ck.DATA_STEPS:
                yield _choice(step, cl.data.steps[step.key], f"data.steps.{step.key}")

            yield Label("5  Compute and tracking", classes="section")
            yield _field("compute.platform", cl.compute.platform, "platform", "e.g. local workstation, AWS",
                         suggester=SuggestFromList(PLATFORMS, case_sensitive=False))
            yield _field("compute.gpu", cl.compute.gpu, "GPU", "e.g. 1x L4 24 GB: start small, scale up")
            with Horizontal(classes="pair"):
                yield _select("tracking.tool", "experiment tracking", [(t.label, t.key) for t in ck.TRACKERS],
                              cl.tracking.tool, "not chosen", "Where losses, metrics and notes of every run are kept")
                yield _field("tracking.note", cl.tracking.note, "tracking note", "where it lives, who reads it")

            yield Label("6  Your call", classes="section")
            with Horizontal(classes="pair"):
                yield _select("decision.override", "decision", [("go", "go"), ("not yet", "not yet")],
                              cl.decision.override, "follow the verdict",
                              "Overrule the computed verdict (say why in the note)")
                yield _field("decision.note", cl.decision.note, "why", "the reason for your call")
        yield VerdictPanel().data_bind(ChecklistScreen.verdict, ChecklistScreen.baseline,
                                       ChecklistScreen.save_state)

    # ------------------------------------------------------------------ loading and saving

    def on_body_mounted(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="checklist", name="Loading the checklist")
    def _load(self) -> None:
        self.post_message(self.Loaded(ck.load(self.store)))

    def on_checklist_screen_loaded(self, message: Loaded) -> None:
        self.checklist = message.checklist
        self._show(message.checklist)
        self.loaded = True
        self._recompute()
        if self.focused is None:
            self.focus_next()  # the first answer, so the focus is on screen from the start

    def _show(self, cl: Checklist) -> None:
        """Put the answers into the controls without taking the changes for the user's."""
        # The radio set must hear its buttons change to track which is pressed; its echo is a no-op change.
        with self.prevent(AnswerCheckbox.Changed, Input.Changed, Select.Changed):
            for box in self.query(AnswerCheckbox):
                box.value = bool(self._answer(box.name))
            for inp in self.query(Input):
                value = self._answer(inp.name)
                inp.value = ck.format_number(value) if "number" in inp.classes else str(value)
            for select in self.query(Select):
                value = self._answer(select.name)
                select.value = value if value else Select.NULL
            for toggle in self.query(DirectionToggle):
                toggle.direction = str(self._answer(toggle.name))
            for button in self.query(AnswerRadioButton):
                button.value = button.name == cl.data.route

    def _answer(self, path: str | None) -> Any:
        node: Any = self.checklist
        for part in (path or "").split("."):
            node = node[part] if isinstance(node, dict) else getattr(node, part)
        return node

    def _changed(self, path: str | None, value: Any) -> None:
        if not self.loaded or not path or self._answer(path) == value:
            return
        try:
            self.checklist.set(path, value)
        except ChecklistError as exc:
            self.notify(str(exc), severity="error")
            return
        self._recompute()
        self._schedule_save()

    def _recompute(self) -> None:
        verdict, baseline = ck.verdict(self.checklist), ck.baseline(self.checklist)
        if (verdict, baseline) != (self.verdict, self.baseline):
            self.verdict, self.baseline = verdict, baseline

    def _schedule_save(self) -> None:
        if self._save_timer is not None:
            self._save_timer.stop()
        self.save_state = "editing"
        if self._save_delay <= 0:
            self.action_save()
        else:
            self._save_timer = self.set_timer(self._save_delay, self.action_save)

    def action_save(self) -> None:
        """Save the answers now (in a worker)."""
        if self._save_timer is not None:
            self._save_timer.stop()
            self._save_timer = None
        if not self.loaded:
            return
        self.checklist.updated = time.time()
        self.save_state = "saving"
        self._write(ck.to_dict(self.checklist))

    @work(thread=True, exclusive=True, exit_on_error=False, group="checklist", name="Saving the checklist")
    def _write(self, answers: dict[str, Any]) -> None:
        self.store.save_checklist(answers)
        self.post_message(self.Saved(answers))

    def on_checklist_screen_saved(self, message: Saved) -> None:
        self.save_state = "saved"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app reports failures (one place); the panel keeps saying the answers are not on disk.
        if event.worker.group == "checklist" and event.state == WorkerState.ERROR:
            self.save_state = f"not saved: {event.worker.error}"

    def on_screen_suspend(self) -> None:
        if self._save_timer is not None:
            self.action_save()

    def on_unmount(self) -> None:
        # Closing the console must not lose the last edits still waiting for the autosave pause; no worker
        # can run any more, so this one small write happens here.
        if self._save_timer is not None and self.loaded:
            self._save_timer.stop()
            self.checklist.updated = time.time()
            self.store.save_checklist(ck.to_dict(self.checklist))

    # ------------------------------------------------------------------ controls

    @on(AnswerCheckbox.Changed)
    def _checkbox_changed(self, event: AnswerCheckbox.Changed) -> None:
        self._changed(event.checkbox.name, event.value)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        value: Any = event.value
        if "number" in event.input.classes:
            try:
                value = ck.parse_number(event.value)
            except ChecklistError:
                return  # the input shows itself invalid; the answer keeps its last good value
        self._changed(event.input.name, value)

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.focus_next()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        self._changed(event.select.name, "" if event.value is Select.NULL else str(event.value))

    @on(RadioSet.Changed)
    def _route_changed(self, event: RadioSet.Changed) -> None:
        self._changed(event.radio_set.name, event.pressed.name or "")

    @on(DirectionToggle.Changed)
    def _direction_changed(self, event: DirectionToggle.Changed) -> None:
        self._changed(event.toggle.name, event.direction)

    def action_next_field(self) -> None:
        """Focus the next answer."""
        self.focus_next()

    def action_previous_field(self) -> None:
        """Focus the previous answer."""
        self.focus_previous()
