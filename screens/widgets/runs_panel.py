"""The journal's Runs view: the run table, the highlighted run's facts and journal entries beside it, a spec
diff or loss overlay of two marked runs, tag, archive and delete, and a GGUF export of a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.safe_text import visible, visible_line
from screens.widgets.journal_table import first_line, format_time
from screens.widgets.run_table import RunTable, run_facts
from slmtui.run_compare import (
    Curves,
    RunActionError,
    RunRow,
    delete_run,
    env_differences,
    folder_size,
    human_size,
    load_curves,
    load_rows,
    parse_tags,
    runs_token,
    spec_diff,
)
from slmtui.store import JournalEntry
from slmtui.ui.workers import ReportsWorkerFailures

if TYPE_CHECKING:
    from slmtui.store import Store


class RunsPanel(ReportsWorkerFailures, Vertical):
    """Every run in the index (kept current with the run folders by a worker), newest first."""

    POLL_SECONDS: ClassVar[float] = 2.0
    """How often the run folders are checked for changes (a cheap stat of each summary and event file)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "mark", "Mark", id="runs.mark", tooltip="Mark the run for a diff or an overlay (two at most)"),
        Binding("c", "diff", "Diff", id="runs.diff", tooltip="Compare the specs of the two marked runs"),
        Binding("o", "overlay", "Overlay", id="runs.overlay", tooltip="The two marked runs' loss curves on one chart"),
        Binding("t", "tag", "Tag", id="runs.tag", tooltip="Set the highlighted run's tags"),
        Binding("v", "archive", "Archive", id="runs.archive", tooltip="Archive the highlighted run, or bring it back"),
        Binding("d,delete", "delete_run", "Delete run", id="runs.delete", tooltip="Delete the run's folder (asks)"),
        Binding("h", "show_archived", "Archived", id="runs.archived", tooltip="Show or hide archived runs"),
        Binding("g", "export_gguf", "GGUF", id="runs.gguf",
                tooltip="Export the highlighted run as a GGUF file and Ollama Modelfile, checked in llama.cpp (asks where)"),
    ]

    rows: reactive[tuple[RunRow, ...]] = reactive(tuple, always_update=True, init=False)
    """Every run, as last loaded."""
    entries: reactive[tuple[JournalEntry, ...]] = reactive(tuple, always_update=True, init=False)
    """The journal's entries, newest first (set by the journal screen)."""
    show_archived: reactive[bool] = reactive(False, init=False)
    """Whether archived runs are listed."""
    current: reactive[RunRow | None] = reactive(None, init=False)
    """The run under the cursor."""

    @dataclass
    class RunsLoaded(Message):
        """The run index was reconciled with the run folders and read."""

        rows: tuple[RunRow, ...]
        token: object

    @dataclass
    class CurvesLoaded(Message):
        """Loss curves of the marked runs were read from their event files."""

        curves: list[Curves]

    @dataclass
    class DeleteSized(Message):
        """A run's folder was measured, before asking whether to delete it."""

        row: RunRow
        size: int

    @dataclass
    class RunDeleted(Message):
        """A run's folder was deleted and the run left the index."""

        run_id: str
        size: int

    @dataclass
    class RunChanged(Message):
        """A run's tags or archived state were saved."""

        run_id: str
        what: str

    @dataclass
    class GgufExported(Message):
        """A run was exported as GGUF; `lines` say what was written and how the parity check went."""

        run_id: str
        lines: tuple[str, ...]
        passed: bool

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._token: object = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-count")
        yield RunTable(id="runs-table")
        with Horizontal(id="runs-lower"):
            yield Static("", id="run-facts")
            yield Static("", id="run-entries")

    def on_mount(self) -> None:
        # One reconcile at start (derived journal entries appear even if the runs are never shown); the
        # folders are polled only while the runs are on screen (the journal calls `pause(False)`).
        self._timer = self.set_interval(self.POLL_SECONDS, self.check_runs, pause=True)
        self.check_runs()

    @property
    def store(self) -> Store:
        """The journal screen's store."""
        return self.screen.store  # type: ignore[attr-defined]

    @property
    def runs_dir(self) -> Path:
        """Where the runs live (HOME/runs unless $SLMTUI_RUNS says otherwise)."""
        from slmtui.home import runs_dir

        return runs_dir(self.store.home)

    def pause(self, paused: bool) -> None:
        """Stop polling the run folders while the screen is hidden."""
        if self._timer is not None:
            self._timer.pause() if paused else self._timer.resume()

    # ------------------------------------------------------------------ loading

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-load", name="Reading the runs")
    def check_runs(self, force: bool = False) -> None:
        """Reconcile and reload the runs when a run folder changed (or when `force`)."""
        token = runs_token(self.runs_dir)
        if token == self._token and not force:
            return
        rows = tuple(load_rows(self.store, self.runs_dir))
        if not get_current_worker().is_cancelled:  # a newer check started meanwhile: it reports instead
            self.post_message(self.RunsLoaded(rows, token))

    def on_runs_panel_runs_loaded(self, message: RunsLoaded) -> None:
        if message.token == self._token and message.rows == self.rows:  # two checks raced on the same state
            return
        self._token = message.token
        self.rows = message.rows

    def watch_rows(self) -> None:
        self._show()

    def watch_show_archived(self) -> None:
        self._show()

    def _show(self) -> None:
        table = self.query_one(RunTable)
        shown = tuple(r for r in self.rows if self.show_archived or not r.archived)
        table.marked = tuple(m for m in table.marked if any(r.id == m for r in shown))
        table.runs = shown
        hidden = len(self.rows) - len(shown)
        others = sum(not r.comparable for r in shown)
        text = f"{len(shown)} run{'s' if len(shown) != 1 else ''}" + (f", {hidden} archived hidden (h)" if hidden else "")
        text += f"; {others} from another environment (≠)" if others else ""
        self.query_one("#runs-count", Static).update(text + ".  space marks two runs: c diff, o overlay.")

    def on_run_table_run_highlighted(self, message: RunTable.RunHighlighted) -> None:
        self.current = message.row

    def watch_current(self) -> None:
        self.query_one("#run-facts", Static).update(Content(visible(run_facts(self.current))))
        self._show_entries()

    def watch_entries(self) -> None:
        self._show_entries()

    def _show_entries(self) -> None:
        row = self.current
        mine = [e for e in self.entries if row is not None and e.run == row.id]
        lines = [f"{format_time(e.created, year=False)} {visible_line(e.kind):<11} {visible_line(first_line(e.text, 60))}"
                 for e in mine[:20]]
        title = f"{len(mine)} journal entr{'y' if len(mine) == 1 else 'ies'} about this run" if row else ""
        self.query_one("#run-entries", Static).update(Content("\n".join([title, *lines])))

    # ------------------------------------------------------------------ actions

    def _marked_rows(self) -> list[RunRow] | None:
        marked = self.query_one(RunTable).marked
        rows = [r for r in self.rows if r.id in marked]
        if len(rows) != 2:
            self.notify("Mark two runs first (space on each).", severity="warning", timeout=4)
            return None
        return sorted(rows, key=lambda r: r.id)

    def action_mark(self) -> None:
        """Mark or unmark the highlighted run."""
        self.query_one(RunTable).toggle_mark()

    def action_diff(self) -> None:
        """Show what differs between the two marked runs' specs and environments."""
        from screens.widgets.run_dialogs import RunDiffScreen

        rows = self._marked_rows()
        if rows is None:
            return
        a, b = rows
        changes = spec_diff(a.spec, b.spec)
        env = env_differences(a.record.fingerprint if a.record else {}, b.record.fingerprint if b.record else {})
        self.app.push_screen(RunDiffScreen(a.id, b.id, changes, env))

    def action_overlay(self) -> None:
        """Read the two marked runs' loss curves (in a worker), then draw them together."""
        rows = self._marked_rows()
        if rows is not None:
            self._load_curves([r.dir for r in rows])

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-curves", name="Reading the loss curves")
    def _load_curves(self, dirs: list[Path]) -> None:
        self.post_message(self.CurvesLoaded([load_curves(d) for d in dirs]))

    def on_runs_panel_curves_loaded(self, message: CurvesLoaded) -> None:
        from screens.widgets.run_dialogs import RunOverlayScreen

        self.app.push_screen(RunOverlayScreen(message.curves))

    def action_tag(self) -> None:
        """Ask for the highlighted run's tags."""
        from screens.widgets.run_dialogs import TagDialog

        row = self.current
        if row is None:
            return

        def chosen(text: str | None) -> None:
            if text is not None:
                self._save_meta(row.id, tags=parse_tags(text))

        self.app.push_screen(TagDialog(row.id, row.tags), chosen)

    def action_archive(self) -> None:
        """Archive the highlighted run (hidden unless h), or unarchive it."""
        if self.current is not None:
            self._save_meta(self.current.id, archived=not self.current.archived)

    def action_show_archived(self) -> None:
        """Show or hide the archived runs."""
        self.show_archived = not self.show_archived

    @work(thread=True, exit_on_error=False, group="runs-write", name="Saving the run")
    def _save_meta(self, run_id: str, tags: list[str] | None = None, archived: bool | None = None) -> None:
        self.store.set_run_meta(run_id, tags=tags, archived=archived)
        what = "tags" if tags is not None else ("archived" if archived else "unarchived")
        self.post_message(self.RunChanged(run_id, what))

    def on_runs_panel_run_changed(self, message: RunChanged) -> None:
        done = {"tags": "Saved the tags of", "archived": "Archived", "unarchived": "Brought back"}[message.what]
        self.notify(f"{done} {message.run_id}.", timeout=3)
        self.check_runs(force=True)

    def action_delete_run(self) -> None:
        """Measure the highlighted run's folder, then ask before deleting it."""
        if self.current is not None:
            self._size_for_delete(self.current)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-size", name="Measuring the run folder")
    def _size_for_delete(self, row: RunRow) -> None:
        self.post_message(self.DeleteSized(row, folder_size(row.dir)))

    def on_runs_panel_delete_sized(self, message: DeleteSized) -> None:
        from screens.widgets.dialogs import ConfirmDialog

        row = message.row
        question = (f"Delete the run {row.id} and its folder ({human_size(message.size)}: checkpoints, adapter, "
                    f"events)?\n\n{row.dir}\n\nIts journal entries are kept.")

        def answer(yes: bool | None) -> None:
            if yes:
                self._delete(row)

        self.app.push_screen(ConfirmDialog("Delete run", question, confirm_label="Delete"), answer)

    @work(thread=True, exit_on_error=False, group="runs-write", name="Deleting the run")
    def _delete(self, row: RunRow) -> None:
        try:
            size = delete_run(self.store, row.dir)
        except RunActionError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", timeout=6)
            return
        self.post_message(self.RunDeleted(row.id, size))

    def on_runs_panel_run_deleted(self, message: RunDeleted) -> None:
        self.notify(f"Deleted {message.run_id} ({human_size(message.size)} freed).", timeout=5)
        self.check_runs(force=True)

    def action_export_gguf(self) -> None:
        """Ask for a folder, then export the highlighted run there as an f16 GGUF (in a worker)."""
        from screens.widgets.dialogs import PathDialog
        from slmtui.model_export import default_gguf_dir

        row = self.current
        if row is None:
            return
        note = ("Merges the run's adapter and writes one f16 GGUF file and an Ollama Modelfile into this new folder, "
                "then checks them in llama.cpp against the merged model (when llama-cpp-python is installed). "
                "For q8_0: slmtui export RUN OUT --format gguf --quant q8_0.")

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._export_gguf(row, path)

        self.app.push_screen(PathDialog(f"Export {row.id} as GGUF", default_gguf_dir(self.store.home, row.id), note),
                             chosen)

    @work(thread=True, exit_on_error=False, group="runs-export", name="Exporting the run as GGUF")
    def _export_gguf(self, row: RunRow, out: Path) -> None:
        from slmtui.engine_proc import EngineCancelled, EngineError
        from slmtui.model_export import export_gguf, gguf_lines

        self.app.call_from_thread(self.notify, f"Exporting {row.id} to {out}: a minute or more.", timeout=6)
        worker = get_current_worker()
        try:
            result = export_gguf(row.dir, out, home=self.store.home, cancelled=lambda: worker.is_cancelled)
        except EngineCancelled:
            return
        except EngineError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", timeout=10)
            return
        passed = bool(result["parity"].get("passed", True))
        self.post_message(self.GgufExported(row.id, tuple(gguf_lines(result)), passed))

    def on_runs_panel_gguf_exported(self, message: GgufExported) -> None:
        self.notify("\n".join(message.lines), title=f"GGUF export of {message.run_id}",
                    severity="information" if message.passed else "warning", timeout=20)
        self.check_runs(force=True)
