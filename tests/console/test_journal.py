"""The journal screen, driven by keys only: add, edit, delete, filter, export, and entries from elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from console_helpers import of_type, wait_for
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static, TextArea

from screens.journal import JournalIndex, JournalScreen
from screens.widgets.dialogs import ConfirmDialog, PathDialog
from screens.widgets.entry_editor import EntryEditor, parse_step
from screens.widgets.journal_table import PAGE_ROWS, JournalTable, first_line
from slmtui.app import SlmtuiApp
from slmtui.store import JournalEntry, Store
from tests.conftest import Cli


def seed(home: Path, rows: list[tuple[str, str]]) -> None:
    """Entries (kind, text), oldest first, written straight to the store."""
    Store(home).add_entries(
        [{"kind": kind, "text": text, "created": 1_790_000_000 + i * 60, "source": f"test:{i}"}
         for i, (kind, text) in enumerate(rows)]
    )


async def open_journal(pilot: Pilot[None], count: int) -> JournalScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen) and len(app.screen.index.entries) == count,
                   what=f"{count} entries loaded")
    screen = app.screen
    assert isinstance(screen, JournalScreen)
    return screen


def shown_texts(screen: JournalScreen) -> list[str]:
    return [entry.text for entry in screen.matches]


async def test_add_an_entry_with_kind_and_step_by_keys(home: Path) -> None:
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal", start_run="20261126-070000-demo")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_journal(pilot, 0)
        assert str(screen.query_one("#journal-detail", Static).render()).startswith("No entry")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, EntryEditor), what="the editor")
        await pilot.press(*"loss plateaus at 2.1", "enter", *"lr too low?")
        await pilot.press("shift+tab", *"120")  # the step field
        await pilot.press("shift+tab", "shift+tab", "enter", "down", "enter")  # the kind: note -> aha
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: of_type(messages, JournalScreen.EntryAdded), what="EntryAdded")
        await wait_for(pilot, lambda: len(screen.matches) == 1, what="the table to show it")
        assert app.screen is screen
        [stored] = Store(home).entries()
        assert (stored.kind, stored.text, stored.step, stored.run) == (
            "aha", "loss plateaus at 2.1\nlr too low?", 120, "20261126-070000-demo")
        assert of_type(messages, JournalScreen.EntryAdded)[0].entry == stored
        table = screen.query_one(JournalTable)
        assert table.row_count == 1 and table.current_entry == stored and screen.current == stored
        assert "lr too low?" in str(screen.query_one("#journal-detail", Static).render())


async def test_the_editor_refuses_empty_text_and_bad_steps_and_escape_cancels(home: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_journal(pilot, 0)
        await pilot.press("a", "ctrl+s")
        editor = app.screen
        assert isinstance(editor, EntryEditor)
        assert "Write something" in str(editor.query_one("#editor-error", Static).render())
        await pilot.press(*"text", "shift+tab", *"-3", "ctrl+s")
        assert "whole number" in str(editor.query_one("#editor-error", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen))
    assert Store(home).entries() == []


async def test_edit_the_highlighted_entry(home: Path) -> None:
    seed(home, [("note", "first"), ("data", "second")])
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_journal(pilot, 2)
        assert shown_texts(screen) == ["second", "first"]  # newest first
        await pilot.press("down", "e")
        await wait_for(pilot, lambda: isinstance(app.screen, EntryEditor))
        assert app.screen.query_one(TextArea).text == "first"
        await pilot.press(*" and more", "ctrl+s")
        await wait_for(pilot, lambda: of_type(messages, JournalScreen.EntryUpdated), what="EntryUpdated")
        await wait_for(pilot, lambda: "first and more" in shown_texts(screen))
        updated = of_type(messages, JournalScreen.EntryUpdated)[0].entry
        assert updated.text == "first and more" and updated.updated is not None and updated.kind == "note"
        assert screen.current is not None and screen.current.id == updated.id  # the cursor stays on it
        await pilot.press("enter")  # enter opens the editor too; escape leaves it unchanged
        await wait_for(pilot, lambda: isinstance(app.screen, EntryEditor))
        await pilot.press("escape")
    assert [e.text for e in Store(home).entries()] == ["first and more", "second"]
    assert len(of_type(messages, JournalScreen.EntryUpdated)) == 1


async def test_delete_asks_first(home: Path) -> None:
    seed(home, [("note", "keep me"), ("oom", "delete me")])
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_journal(pilot, 2)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "delete me" in str(app.screen.query_one("#confirm-question", Static).render())
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert len(Store(home).entries()) == 2 and not of_type(messages, JournalScreen.EntryDeleted)
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: of_type(messages, JournalScreen.EntryDeleted), what="EntryDeleted")
        await wait_for(pilot, lambda: shown_texts(screen) == ["keep me"])
    assert [e.text for e in Store(home).entries()] == ["keep me"]


async def test_filter_by_kind_and_text(home: Path) -> None:
    seed(home, [("note", "Loss spikes at step 40"), ("aha", "warmup fixes the LOSS spike"),
                ("data", "dropped 12 rows with emails"), ("note", "tried rank 8")])
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_journal(pilot, 4)
        await pilot.press("k")  # every kind -> note
        await wait_for(pilot, lambda: screen.kind_filter == "note")
        assert shown_texts(screen) == ["tried rank 8", "Loss spikes at step 40"]
        assert screen.query_one("#journal-kind", Select).value == "note"
        await pilot.press("k")  # -> aha
        await wait_for(pilot, lambda: screen.kind_filter == "aha")
        assert shown_texts(screen) == ["warmup fixes the LOSS spike"]
        await pilot.press("slash", *"xyz")
        assert screen.query_one("#journal-search", Input).has_focus
        await wait_for(pilot, lambda: shown_texts(screen) == [])
        assert str(screen.query_one("#journal-count", Static).render()) == "0 of 4"
        await pilot.press("backspace", "backspace", "backspace", *"loss", "escape")
        assert screen.query_one(JournalTable).has_focus
        for _ in range(6):  # cycle on round to every kind
            await pilot.press("k")
        await wait_for(pilot, lambda: screen.kind_filter == "")
        assert shown_texts(screen) == ["warmup fixes the LOSS spike", "Loss spikes at step 40"]
        assert screen.query_one(JournalTable).row_count == 2


async def test_export_to_markdown_at_the_default_and_a_typed_path(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # so a short "~/..." path can be typed
    seed(home, [("note", "plain note"), ("breakthrough", "val loss 1.2 with DoRA")])
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await open_journal(pilot, 2)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, PathDialog))
        assert app.screen.query_one(Input).value == str(home / "journal.md")
        await pilot.press("enter")
        await wait_for(pilot, lambda: of_type(messages, JournalScreen.JournalExported), what="JournalExported")
        text = (home / "journal.md").read_text()
        assert text.index("plain note") < text.index("val loss 1.2 with DoRA")  # oldest first
        assert "breakthrough" in text
        target = tmp_path / "out" / "filtered.md"
        await pilot.press("slash", *"dora", "escape", "x", "ctrl+u", *"~/out/filtered.md", "enter")
        await wait_for(pilot, lambda: len(of_type(messages, JournalScreen.JournalExported)) == 2)
        exported = of_type(messages, JournalScreen.JournalExported)[1]
        assert (exported.path, exported.count) == (target, 1)
        assert "val loss 1.2" in target.read_text() and "plain note" not in target.read_text()


async def test_entries_written_by_the_cli_appear_without_a_restart(home: Path, cli: Cli) -> None:
    seed(home, [("note", "before")])
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_journal(pilot, 1)
        cli("journal", "add", "written by another process", "--kind", "challenge", "--step", "7", check=True)
        await wait_for(pilot, lambda: len(screen.index.entries) == 2, timeout=10, what="the poll to pick it up")
        assert shown_texts(screen)[0] == "written by another process"
        assert screen.query_one(JournalTable).row_count == 2
        loads = of_type(messages, JournalScreen.EntriesLoaded)
        assert len(loads) == 2  # the first load and the change: unchanged polls post nothing


async def test_a_long_journal_is_shown_a_page_at_a_time(home: Path) -> None:
    count = PAGE_ROWS * 2 + 5
    seed(home, [("note", f"entry {i}") for i in range(count)])
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_journal(pilot, count)
        table = screen.query_one(JournalTable)
        assert len(screen.matches) == count and table.row_count == PAGE_ROWS
        await pilot.press("end")
        await wait_for(pilot, lambda: table.row_count == 2 * PAGE_ROWS, what="the next page")
        await pilot.press("end")
        await pilot.press("end")
        await wait_for(pilot, lambda: table.row_count == count, what="the last page")
        assert str(screen.query_one("#journal-count", Static).render()) == f"{count} entries"


def test_index_filter_and_small_helpers() -> None:
    entries = [JournalEntry(id=i, kind=k, text=t, run=r, created=float(i))
               for i, (k, t, r) in enumerate([("note", "Alpha", None), ("aha", "beta", "run-A"), ("note", "gamma", None)])]
    index = JournalIndex.build(entries)
    assert [e.id for e in index.entries] == [2, 1, 0]
    assert [e.id for e in index.filter("note", "")] == [2, 0]
    assert [e.id for e in index.filter("", "ALPHA")] == [0]
    assert [e.id for e in index.filter("", "run-a")] == [1]  # the run is searchable too
    assert index.filter("aha", "gamma") == ()
    assert parse_step(" 12 ") == 12 and parse_step("") is None
    for bad in ("x", "-1", "1.5"):
        try:
            parse_step(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    assert first_line("one\ntwo") == "one …" and first_line("x" * 100, 10) == "x" * 9 + "…"


def replace_whole(path: Path, data: bytes) -> None:
    """Put `data` in `path` in one step (written beside it, then renamed), as the store itself writes."""
    staged = path.with_name(f"{path.name}.staged")
    staged.write_bytes(data)
    os.replace(staged, path)


async def test_an_entry_that_cannot_be_saved_stays_in_the_editor_with_the_reason(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: with the store unreadable, ctrl+s closed the editor and the text was lost, and the journal's poll
    stacked one identical toast a second."""
    from textual.worker import Worker, WorkerState

    seed(home, [("note", "kept")])
    monkeypatch.setattr(JournalScreen, "POLL_SECONDS", 0.05)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await open_journal(pilot, 1)
        store_file = home / "slmtui.json"
        good = store_file.read_bytes()
        replace_whole(store_file, b"{not json")  # at once: a poll that read a half-written file would say more

        def failed_loads() -> int:
            return sum(1 for m in messages if isinstance(m, Worker.StateChanged) and m.state == WorkerState.ERROR
                       and m.worker.group == "journal-load")

        await wait_for(pilot, lambda: failed_loads() >= 4, what="the poll to fail a few times")
        toasts = [n for n in app._notifications if "cannot be read" in str(n.message)]
        assert len(toasts) == 1, [n.message for n in toasts]
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, EntryEditor), what="the editor")
        editor = app.screen
        await pilot.press(*"precious words", "ctrl+s")
        error = editor.query_one("#editor-error", Static)
        await wait_for(pilot, lambda: "Not saved" in str(error.render()), what="the reason in the editor")
        assert "cannot be read" in str(error.render()) and app.screen is editor
        assert editor.query_one("#editor-text", TextArea).text == "precious words"


        replace_whole(store_file, good)  # the user fixed the store: the same ctrl+s now saves
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen), what="the editor to close")
    assert [e.text for e in Store(home).entries()] == ["kept", "precious words"]
