"""The Data screen: pick a dataset, check it with the engine (in a worker), read the report, and save the
settings for the next run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Input, Label, Select, Static

from engine.safe_text import visible, visible_line
from screens.widgets.data_report_view import DataReportView
from slmtui.data_report import (
    OVERLENGTH,
    load_options,
    recent_paths,
    remember_path,
    request_from_fields,
    save_options,
)
from slmtui.data_service import DataCheckFailed, DataRequest, map_text, run_data_check
from slmtui.scrub_report import scrub_warning
from slmtui.ui.shell import ShellScreen
from slmtui.ui.themes import stylesheet

_now = time.monotonic
"""The clock the status line's timings read (tests pin it for snapshots)."""


class DataScreen(ShellScreen):
    """Check, map and scrub a dataset before training on it."""

    SCREEN_NAME = "Data"
    CSS_PATH: ClassVar = [stylesheet("data.tcss")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "check", "Check", id="data.check", tooltip="Run the data check with these options"),
        Binding("ctrl+s", "save", "Save settings", id="data.save", tooltip="Keep these data settings for the next run"),
        Binding("ctrl+n", "next_part", "Next part", id="data.next", tooltip="Show the next part of the report"),
        Binding("escape", "focus_report", "Report", show=False, id="data.report"),
        Binding("e", "edit_path", "Edit path", id="data.path", tooltip="Type the dataset's path or hub id"),
    ]

    checking: reactive[bool] = reactive(False, init=False)
    """Whether a check is running."""
    report: reactive[dict[str, Any] | None] = reactive(None, init=False, always_update=True)
    """The last report (handed to the report view)."""

    @dataclass
    class SettingsLoaded(Message):
        """The saved data settings and recent datasets were read from the store."""

        options: DataRequest
        recent: list[str]

    @dataclass
    class CheckFinished(Message):
        """The engine's data check returned a report."""

        options: DataRequest
        report: dict[str, Any]
        recent: list[str]

    @dataclass
    class CheckFailed(Message):
        """The check could not run or could not read the dataset (one sentence)."""

        error: str

    @dataclass
    class SettingsSaved(Message):
        """The data settings were written to the store for the next run."""

        options: DataRequest

    def __init__(self) -> None:
        super().__init__()
        # Under 120 columns the tokenizer and the column map each get a row: on one they cut their hints.
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
        self._started = 0.0
        self._ticker: Timer | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="data-source", classes="data-row"):
            yield Label("Dataset", classes="data-label")
            yield Input(placeholder="file, save_to_disk folder, or hub id", id="data-path",
                        tooltip="The dataset to check; enter runs the check")
            yield Select([], prompt="recent", id="data-recent", tooltip="Datasets checked lately")
        with Horizontal(id="data-options"):  # one row from 120 columns, two below (see data.tcss)
            with Horizontal(id="data-limits", classes="data-row"):
                yield Label("Tokenizer", classes="data-label")
                yield Input(placeholder="the demo's", id="data-tokenizer", tooltip="Tokenizer folder or hub id")
                yield Label("Max len", classes="data-label-short")
                yield Input("1024", id="data-max-length", type="integer", tooltip="Token limit per row")
                yield Select([(p, p) for p in OVERLENGTH], value="truncate", allow_blank=False,
                             id="data-overlength", tooltip="What a run does with rows over the limit")
            with Horizontal(id="data-mapping", classes="data-row"):
                yield Label("Map", classes="data-label-short")
                yield Input(placeholder="prompt=question,response=answer", id="data-map",
                            tooltip="FIELD=COLUMN pairs when the columns have other names")
        yield Static("Loading the saved settings…", id="data-status")
        yield DataReportView(id="data-report").data_bind(report=DataScreen.report)

    def on_body_mounted(self) -> None:
        # The report, not a text field, takes focus: the screen keys (1-6, n) must keep working on arrival.
        self.action_focus_report()
        self._load_settings()

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-settings", name="Reading the data settings")
    def _load_settings(self) -> None:
        self.post_message(self.SettingsLoaded(load_options(self.store), recent_paths(self.store)))

    def on_data_screen_settings_loaded(self, message: SettingsLoaded) -> None:
        self._fill(message.options)
        self._set_recent(message.recent)
        self._status("Press ctrl+r (or enter in the dataset field) to check the dataset.")

    def _fill(self, options: DataRequest) -> None:
        self.query_one("#data-path", Input).value = visible_line(options.path)
        self.query_one("#data-tokenizer", Input).value = visible_line(options.tokenizer)
        self.query_one("#data-max-length", Input).value = str(options.max_length)
        self.query_one("#data-overlength", Select).value = options.overlength
        self.query_one("#data-map", Input).value = visible_line(map_text(options.map))

    def _set_recent(self, recent: list[str]) -> None:
        self.query_one("#data-recent", Select).set_options([(Content(visible_line(p)), p) for p in recent])

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#data-status", Static)
        status.update(Content(visible(text)))  # it may quote a path or an engine message: plain text
        status.set_class(error, "-error")

    def options(self) -> DataRequest:
        """The options as typed; raises `DataCheckFailed` with what to fix."""
        return request_from_fields(
            self.query_one("#data-path", Input).value, self.query_one("#data-tokenizer", Input).value,
            self.query_one("#data-max-length", Input).value, str(self.query_one("#data-overlength", Select).value),
            self.query_one("#data-map", Input).value)

    # ------------------------------------------------------------------ actions

    def action_check(self) -> None:
        """Check the dataset with the options shown."""
        try:
            options = self.options()
        except DataCheckFailed as exc:
            self._status(str(exc), error=True)
            return
        self.checking = True
        self._started = _now()
        self._check(options)

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-check", name="Checking the data")
    def _check(self, options: DataRequest) -> None:
        try:
            report = run_data_check(options, home=self.store.home)
        except DataCheckFailed as exc:
            self.post_message(self.CheckFailed(str(exc)))
            return
        self.post_message(self.CheckFinished(options, report, remember_path(self.store, options.path)))

    def watch_checking(self, checking: bool) -> None:
        if checking:
            self._tick()
            self._ticker = self.set_interval(0.5, self._tick)
        elif self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _tick(self) -> None:
        self._status(f"Checking… {_now() - self._started:.0f} s (the engine loads the tokenizer and "
                     "reads every row).")

    def on_data_screen_check_finished(self, message: CheckFinished) -> None:
        self.checking = False
        self.report = message.report
        self._set_recent(message.recent)
        r = message.report
        self._status(f"Checked {r.get('rows', 0):,} rows in {_now() - self._started:.0f} s: "
                     f"{r.get('invalid_rows_total', 0):,} invalid, {r.get('pii_rows', 0):,} with personal data, "
                     f"{r.get('over_max_length', 0):,} over the limit"
                     + ("; scrubbing changed many trained responses (see the warning)" if scrub_warning(r) else "")
                     + ".  ctrl+s keeps these settings for the next run.")

    def on_data_screen_check_failed(self, message: CheckFailed) -> None:
        self.checking = False
        self._status(message.error, error=True)

    def action_save(self) -> None:
        """Keep the settings shown for the next run."""
        try:
            options = self.options()
        except DataCheckFailed as exc:
            self._status(str(exc), error=True)
            return
        self._save(options)

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-settings", name="Saving the data settings")
    def _save(self, options: DataRequest) -> None:
        save_options(self.store, options)
        self.post_message(self.SettingsSaved(options))

    def on_data_screen_settings_saved(self, message: SettingsSaved) -> None:
        self.notify(f"Saved the data settings for the next run ({message.options.path}).", timeout=4)

    def action_next_part(self) -> None:
        """Show the next part of the report."""
        self.query_one(DataReportView).next_tab()

    def action_edit_path(self) -> None:
        """Move to the dataset field."""
        self.query_one("#data-path", Input).focus()

    def action_focus_report(self) -> None:
        """Leave the fields for the report's tabs."""
        self.query_one("#report-tabs").query_one("Tabs").focus()

    @on(Input.Submitted, "#data-path")
    def _path_submitted(self) -> None:
        self.action_check()

    @on(Select.Changed, "#data-recent")
    def _recent_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#data-path", Input).value = event.value
