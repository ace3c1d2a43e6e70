"""The journal screen: every entry with its time, run and step; add, edit, delete, filter, export; the Runs
view (r): every run with its settings and metrics, diffs, overlays, tags, archive and delete; and the Sweeps view
(w): each sweep's trials, the best, the objective against a setting, importance, promotion to New run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Input, Select, Static
from textual.worker import get_current_worker

from screens.widgets.journal_table import PAGE_ROWS, EntryDetail, JournalTable
from screens.widgets.runs_panel import RunsPanel
from screens.widgets.sweeps_panel import SweepsPanel
from slmtui.journal_export import journal_markdown, write_text_atomic
from slmtui.journal_index import JournalIndex
from slmtui.store import JOURNAL_KINDS, JournalEntry
from slmtui.ui.shell import ShellScreen
from slmtui.ui.themes import stylesheet

if TYPE_CHECKING:
    from screens.widgets.entry_editor import EntryDraft


class JournalScreen(ShellScreen):
    """The iteration journal. Entries written by any process show up within about a second."""

    SCREEN_NAME = "Journal"
    CSS_PATH: ClassVar = [stylesheet("journal.tcss")]
    POLL_SECONDS: ClassVar[float] = 1.0
    """How often the store's change token is checked for writes by other processes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="journal.add", tooltip="Write a new entry"),
        Binding("e", "edit", "Edit", id="journal.edit", tooltip="Edit the highlighted entry"),
        Binding("d,delete", "delete", "Delete", id="journal.delete", tooltip="Delete the highlighted entry"),
        Binding("slash", "search", "Filter", id="journal.search", tooltip="Filter entries by text"),
        Binding("k", "next_kind", "Kind", id="journal.kind", tooltip="Show only the next kind of entry"),
        Binding("x", "export", "Export", id="journal.export", tooltip="Write the shown entries as Markdown"),
        Binding("r", "toggle_runs", "Runs", id="journal.runs", tooltip="Switch between the entries and the runs"),
        Binding("w", "toggle_sweeps", "Sweeps", id="journal.sweeps",
                tooltip="Switch between the entries and the sweeps"),
        Binding("escape", "focus_table", "Table", show=False, id="journal.table"),
    ]
    ENTRY_ACTIONS: ClassVar[frozenset[str]] = frozenset({"edit", "delete", "search", "next_kind"})
    """Actions that only make sense in the entries view."""

    index: reactive[JournalIndex] = reactive(JournalIndex((), ()), init=False, always_update=True)
    """Every entry in the store, as last loaded."""
    kind_filter: reactive[str] = reactive("", init=False)
    """Show only this kind ("" for every kind)."""
    text_filter: reactive[str] = reactive("", init=False)
    """Show only entries containing this text."""
    matches: reactive[tuple[JournalEntry, ...]] = reactive(tuple, always_update=True, init=False)
    """The entries passing both filters, newest first (handed to the table)."""
    current: reactive[JournalEntry | None] = reactive(None)
    """The highlighted entry (handed to the detail pane)."""
    view: reactive[str] = reactive("entries", init=False)
    """Which view is shown: "entries", "runs" or "sweeps"."""

    @dataclass
    class EntriesLoaded(Message):
        """The store's entries were read (first load, or a change by this or another process)."""

        index: JournalIndex
        token: object

    @dataclass
    class EntryAdded(Message):
        """An entry was written from this screen."""

        entry: JournalEntry

    @dataclass
    class EntryUpdated(Message):
        """An entry was edited from this screen."""

        entry: JournalEntry

    @dataclass
    class EntryDeleted(Message):
        """An entry was deleted from this screen."""

        entry_id: int

    @dataclass
    class JournalExported(Message):
        """Entries were written to a Markdown file."""

        path: Path
        count: int

    def __init__(self) -> None:
        super().__init__()
        self._token: object = None
        self._select_after_load: int | None = None
        self._poll_timer: Timer | None = None
        self._can_edit = False

    def compose_body(self) -> ComposeResult:
        with ContentSwitcher(initial="journal-entries", id="journal-views"), Vertical(id="journal-entries"):
            yield from self._compose_entries()

    def _compose_entries(self) -> ComposeResult:
        with Horizontal(id="journal-filters"):
            yield Select(
                [("every kind", ""), *((kind, kind) for kind in JOURNAL_KINDS)], value="", allow_blank=False,
                id="journal-kind", tooltip="Show one kind of entry (k cycles)",
            )
            yield Input(placeholder="filter by text  (/)", id="journal-search", tooltip="Type to filter; esc returns")
            yield Static("", id="journal-count")
        yield JournalTable(id="journal-table").data_bind(matches=JournalScreen.matches)
        yield EntryDetail(id="journal-detail").data_bind(entry=JournalScreen.current)

    def on_body_mounted(self) -> None:
        self.query_one(JournalTable).focus()
        self._poll_timer = self.set_interval(self.POLL_SECONDS, self.check_store)
        self.check_store()
        self._reconcile_runs()

    @work(thread=True, exclusive=True, exit_on_error=False, group="journal-reconcile", name="Indexing the runs")
    def _reconcile_runs(self) -> None:
        """Index run folders and derive their journal entries (the poll then shows them); the Runs view, built
        on first use, keeps doing it while it is shown."""
        from slmtui.home import runs_dir
        from slmtui.reconcile import reconcile

        reconcile(self.store, runs_dir(self.store.home))

    @property
    def runs_panel(self) -> RunsPanel | None:
        """The Runs view, once it was first shown."""
        panels = self.query(RunsPanel)
        return panels.first() if panels else None

    @property
    def sweeps_panel(self) -> SweepsPanel | None:
        """The Sweeps view, once it was first shown."""
        panels = self.query(SweepsPanel)
        return panels.first() if panels else None

    def on_screen_suspend(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.pause()
            for panel in (self.runs_panel, self.sweeps_panel):
                if panel is not None:
                    panel.pause(True)

    def on_screen_resume(self) -> None:
        # (ShellScreen's own handler runs too: Textual calls the handler of every class in the MRO.)
        if self._poll_timer is not None:
            self._poll_timer.resume()
            self.check_store()
            if self.runs_panel is not None:
                self.runs_panel.pause(self.view != "runs")
            if self.sweeps_panel is not None:
                self.sweeps_panel.pause(self.view != "sweeps")

    # ------------------------------------------------------------------ loading and filtering

    @work(thread=True, exclusive=True, exit_on_error=False, group="journal-load", name="Reading the journal")
    def check_store(self) -> None:
        """Reload the entries when the store changed since the last load (by any process)."""
        token = self.store.change_token()
        if token == self._token:
            return
        index = JournalIndex.build(self.store.entries())
        if not get_current_worker().is_cancelled:  # a newer check started meanwhile: it reports instead
            self.post_message(self.EntriesLoaded(index, token))

    def on_journal_screen_entries_loaded(self, message: EntriesLoaded) -> None:
        if message.token == self._token:  # two checks raced on the same state
            return
        self._token = message.token
        self.index = message.index

    def watch_index(self) -> None:
        self._apply_filters()
        if self.runs_panel is not None:
            self.runs_panel.entries = self.index.entries

    def watch_view(self, view: str) -> None:
        self.query_one(ContentSwitcher).current = f"journal-{view}"
        if self.runs_panel is not None:
            self.runs_panel.pause(view != "runs")
        if self.sweeps_panel is not None:
            self.sweeps_panel.pause(view != "sweeps")
        if view == "runs":
            self.query_one(RunsPanel).check_runs()
        elif view == "sweeps":
            self.query_one(SweepsPanel).check_sweeps()
        self.action_focus_table()
        self.refresh_bindings()

    def watch_kind_filter(self) -> None:
        self._apply_filters()

    def watch_text_filter(self) -> None:
        self._apply_filters()

    def _apply_filters(self) -> None:
        table = self.query_one(JournalTable)
        table.limit = PAGE_ROWS
        self.matches = self.index.filter(self.kind_filter, self.text_filter)
        if self._select_after_load is not None and table.select_entry(self._select_after_load):
            self._select_after_load = None
        self._update_count()

    def _update_count(self) -> None:
        total, matched = len(self.index.entries), len(self.matches)
        text = f"{matched:,} of {total:,}" if matched != total else f"{total:,} entr{'y' if total == 1 else 'ies'}"
        self.query_one("#journal-count", Static).update(text)

    @on(Select.Changed, "#journal-kind")
    def _kind_chosen(self, event: Select.Changed) -> None:
        self.kind_filter = str(event.value)

    @on(Input.Changed, "#journal-search")
    def _text_typed(self, event: Input.Changed) -> None:
        self.text_filter = event.value

    @on(Input.Submitted, "#journal-search")
    def _search_done(self) -> None:
        self.action_focus_table()

    def on_journal_table_entry_highlighted(self, message: JournalTable.EntryHighlighted) -> None:
        self.current = message.entry
        can_edit = message.entry is not None
        if can_edit != self._can_edit:  # the footer re-renders on refresh_bindings: only when edit/delete come or go
            self._can_edit = can_edit
            self.refresh_bindings()

    def on_journal_table_entry_chosen(self, message: JournalTable.EntryChosen) -> None:
        self.current = message.entry
        self.action_edit()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.ENTRY_ACTIONS and self.view != "entries":
            return False
        if action in ("edit", "delete"):
            return self.current is not None
        return True

    async def action_toggle_runs(self) -> None:
        """Show the runs, or back to the entries."""
        if self.runs_panel is None:  # built on first use: the entries view stays as light as it can be
            panel = RunsPanel(id="journal-runs")
            await self.query_one(ContentSwitcher).mount(panel)
            panel.entries = self.index.entries
        self.view = "entries" if self.view == "runs" else "runs"

    async def action_toggle_sweeps(self) -> None:
        """Show the sweeps, or back to the entries."""
        if self.sweeps_panel is None:
            await self.query_one(ContentSwitcher).mount(SweepsPanel(id="journal-sweeps"))
        self.view = "entries" if self.view == "sweeps" else "sweeps"

    def action_focus_table(self) -> None:
        """Leave the filter fields for the table (of the view shown)."""
        table = {"runs": "#runs-table", "sweeps": "#sweep-trials"}.get(self.view, "#journal-table")
        self.query_one(table).focus()

    def action_search(self) -> None:
        """Type a text filter."""
        self.query_one("#journal-search", Input).focus()

    def action_next_kind(self) -> None:
        """Cycle the kind filter: every kind, then each kind in turn."""
        order = ("", *JOURNAL_KINDS)
        following = order[(order.index(self.kind_filter) + 1) % len(order)] if self.kind_filter in order else ""
        self.query_one("#journal-kind", Select).value = following

    def action_add(self) -> None:
        """Open the editor on a blank entry (of the filtered kind, about the active run)."""
        from screens.widgets.entry_editor import (  # the editor (TextArea) loads on first use
            EntryDraft,
            EntryEditor,
        )

        run = self.host.active_run
        if self.view == "runs" and self.runs_panel is not None and self.runs_panel.current is not None:
            run = self.runs_panel.current.id
        if self.view == "sweeps" and self.sweeps_panel is not None and self.sweeps_panel.current_trial is not None:
            run = self.sweeps_panel.current_trial.run_id or run
        draft = EntryDraft(text="", kind=self.kind_filter or "note", run=run, step=None)
        self.app.push_screen(EntryEditor("New journal entry", draft, JOURNAL_KINDS, save=self._write_new))

    def action_edit(self) -> None:
        """Open the editor on the highlighted entry."""
        from screens.widgets.entry_editor import EntryDraft, EntryEditor

        entry = self.current
        if entry is None:
            return
        draft = EntryDraft(text=entry.text, kind=entry.kind, run=entry.run, step=entry.step)

        def save(result: EntryDraft) -> None:
            if result != draft:
                self._write_update(entry.id, result)

        self.app.push_screen(EntryEditor(f"Edit entry {entry.id}", draft, JOURNAL_KINDS, save=save))

    def action_delete(self) -> None:
        """Delete the highlighted entry, after asking."""
        from screens.widgets.dialogs import ConfirmDialog

        entry = self.current
        if entry is None:
            return
        question = f"Delete this {entry.kind} entry for good?\n\n{entry.text.strip()[:200]}"

        def answer(yes: bool | None) -> None:
            if yes:
                self._delete_entry(entry.id)

        self.app.push_screen(ConfirmDialog("Delete entry", question, confirm_label="Delete"), answer)

    def action_export(self) -> None:
        """Ask where, then write the entries shown (after filters) as Markdown."""
        from screens.widgets.dialogs import PathDialog

        entries = self.matches
        note = f"Writes the {len(entries):,} entries shown, oldest first."

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._export(path, tuple(reversed(entries)))

        self.app.push_screen(PathDialog("Export the journal to Markdown", self.host.home / "journal.md", note), chosen)

    # ------------------------------------------------------------------ writes (in workers)

    # The editor runs these in its own thread worker and stays open, with the reason, when they raise.

    def _write_new(self, draft: EntryDraft) -> None:
        entry = self.store.add_entry(draft.text, kind=draft.kind, run=draft.run, step=draft.step)
        self.post_message(self.EntryAdded(entry))

    def _write_update(self, entry_id: int, draft: EntryDraft) -> None:
        entry = self.store.update_entry(entry_id, text=draft.text, kind=draft.kind, run=draft.run, step=draft.step)
        self.post_message(self.EntryUpdated(entry))

    @work(thread=True, exit_on_error=False, group="journal-write", name="Deleting the entry")
    def _delete_entry(self, entry_id: int) -> None:
        self.store.delete_entry(entry_id)
        self.post_message(self.EntryDeleted(entry_id))

    @work(thread=True, exclusive=True, exit_on_error=False, group="journal-export", name="Exporting the journal")
    def _export(self, path: Path, entries: tuple[JournalEntry, ...]) -> None:
        write_text_atomic(path, journal_markdown(self.store, entries))
        self.post_message(self.JournalExported(path, len(entries)))

    def on_journal_screen_entry_added(self, message: EntryAdded) -> None:
        self._select_after_load = message.entry.id
        self.notify(f"Added a {message.entry.kind} entry.", timeout=3)
        self.check_store()

    def on_journal_screen_entry_updated(self, message: EntryUpdated) -> None:
        self._select_after_load = message.entry.id
        self.notify("Saved the entry.", timeout=3)
        self.check_store()

    def on_journal_screen_entry_deleted(self, message: EntryDeleted) -> None:
        self.notify("Deleted the entry.", timeout=3)
        self.check_store()

    def on_journal_screen_journal_exported(self, message: JournalExported) -> None:
        self.notify(f"Wrote {message.count:,} entries to {message.path}.", timeout=6)
