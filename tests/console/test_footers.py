"""Footers that fit, the key-help screen (`f1`, `?`) and every key in the command palette, on every screen of
the real console at 80×24, 100×30 and 120×36."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from console_helpers import wait_for
from rich.cells import cell_len
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets._footer import FooterKey

from screens.key_help import KeyHelpScreen
from slmtui.app import SlmtuiApp
from slmtui.ui.footer import FittingFooter, FooterItem, fit_items
from slmtui.ui.keys import app_key_rows, screen_key_rows
from slmtui.ui.registry import default_registry
from slmtui.ui.shell import ShellBody
from tests.run_fixtures import make_run
from tests.sweep_fixtures import make_sweep

SIZES = [(80, 24), (100, 30), (120, 36)]
RUN = "20261126-070000-base"

Opener = Callable[[Pilot[None]], Awaitable[None]]


async def _shell(pilot: Pilot[None], slug: str) -> None:
    app = pilot.app
    assert isinstance(app, SlmtuiApp)
    await wait_for(pilot, lambda: app.current_screen_name == slug and bool(app.screen.query(ShellBody))
                   and bool(app.screen.query(FittingFooter)) and bool(app.screen.query(FooterKey)),
                   what=f"the {slug} screen")


async def _journal_runs(pilot: Pilot[None]) -> None:
    from screens.journal import JournalScreen

    await _shell(pilot, "journal")
    screen = pilot.app.screen
    assert isinstance(screen, JournalScreen)
    await wait_for(pilot, lambda: bool(screen.query("#journal-table")), what="the journal's table")
    await pilot.press("r")
    await wait_for(pilot, lambda: screen.view == "runs" and screen.runs_panel is not None, what="the runs view")


async def _journal_sweeps(pilot: Pilot[None]) -> None:
    from screens.journal import JournalScreen

    await _shell(pilot, "journal")
    screen = pilot.app.screen
    assert isinstance(screen, JournalScreen)
    await wait_for(pilot, lambda: bool(screen.query("#journal-table")), what="the journal's table")
    make_sweep(screen.store.home, with_runs=False)  # every key of the view active: promote needs a best trial
    await pilot.press("w")
    await wait_for(pilot, lambda: screen.view == "sweeps" and screen.sweeps_panel is not None
                   and screen.sweeps_panel.shown is not None, what="the sweeps view")


async def _new_run(pilot: Pilot[None]) -> None:
    from screens.new_run import NewRunScreen

    await _shell(pilot, "journal")
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewRunScreen)
                   and pilot.app.screen.query(FooterKey), what="New run")


async def _playground(pilot: Pilot[None]) -> None:
    from screens.playground import PlaygroundScreen
    from slmtui.playground import run_pair

    await _shell(pilot, "shortlist")
    app = pilot.app
    assert isinstance(app, SlmtuiApp)
    app.push_screen(PlaygroundScreen(run_pair(str(app.home / "runs" / RUN), "")))
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PlaygroundScreen)
                   and pilot.app.screen.query(FooterKey), what="the playground")


def _opener(slug: str) -> Opener:
    async def open_screen(pilot: Pilot[None]) -> None:
        await _shell(pilot, slug)
    return open_screen


PLACES: dict[str, tuple[str, Opener]] = {
    **{entry.slug: (entry.slug, _opener(entry.slug)) for entry in default_registry().available()},
    "journal-runs": ("journal", _journal_runs),
    "journal-sweeps": ("journal", _journal_sweeps),
    "new-run": ("journal", _new_run),
    "playground": ("shortlist", _playground),
}


def footer_problems(screen: Screen[object]) -> list[str]:
    """Every footer key cut, squeezed or hidden under the palette key, in words."""
    footer = screen.query_one(FittingFooter)
    keys = list(footer.query(FooterKey))
    palette = [key for key in keys if key.has_class("-command-palette")]
    right = palette[0].region.x if palette else footer.region.right
    problems = []
    for key in keys:
        label = key.render().plain
        if key.region.width < cell_len(label) or key.region.width == 0:
            problems.append(f"{label.strip()!r} is squeezed to {key.region.width} cells")
        if key not in palette and key.region.right > right:
            problems.append(f"{label.strip()!r} runs to column {key.region.right}, past {right}")
        if key.region.right > screen.size.width:
            problems.append(f"{label.strip()!r} runs off the screen")
    return problems


async def _footer_at(home: Path, place: str, size: tuple[int, int]) -> tuple[list[str], list[str]]:
    start, opener = PLACES[place]
    app = SlmtuiApp(home=home, start_screen=start)
    async with app.run_test(size=size) as pilot:
        await opener(pilot)
        await pilot.pause()
        screen = app.screen
        labels = [key.description for key in screen.query(FooterKey)]
        problems = footer_problems(screen)
    return labels, problems


@pytest.mark.parametrize("place", list(PLACES))
async def test_no_footer_key_is_cut_at_80x24(home: Path, place: str) -> None:
    make_run(home / "runs", RUN)
    labels, problems = await _footer_at(home, place, (80, 24))
    assert not problems, f"{place} at 80×24: {problems}"
    assert "Keys" in labels and "palette" in labels, labels  # the way to every key always shows
    assert len(labels) >= 4, labels


@pytest.mark.parametrize("size", SIZES[1:], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_footer_fits_at_100_and_120_columns(home: Path, size: tuple[int, int]) -> None:
    make_run(home / "runs", RUN)
    for place in PLACES:
        labels, problems = await _footer_at(home, place, size)
        assert not problems, f"{place} at {size}: {problems}"
        assert "Keys" in labels


def test_fit_items_keeps_the_key_help_key_and_the_first_keys_in_their_order() -> None:
    from textual.binding import Binding

    def item(key: str, description: str, action: str = "x") -> FooterItem:
        return FooterItem(Binding(key, action, description), key, True, "")

    items = [item("a", "Add"), item("e", "Edit"), item("d", "Delete"), item("ctrl+t", "Theme"),
             item("f1", "Keys", "key_help")]
    assert [i.binding.description for i in fit_items(items, 100)] == ["Add", "Edit", "Delete", "Theme", "Keys"]
    assert [i.binding.description for i in fit_items(items, 24)] == ["Add", "Edit", "Keys"]
    assert [i.binding.description for i in fit_items(items, 9)] == ["Keys"]  # 9 cells: " f1 Keys "


async def test_f1_and_question_mark_list_every_key_of_the_screen_and_the_app(home: Path) -> None:
    make_run(home / "runs", RUN)
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        await _journal_runs(pilot)
        journal = app.screen
        shown = {key.description for key in journal.query(FooterKey)}
        rows = screen_key_rows(journal)
        ids = {row.binding_id for row in rows}
        assert {"runs.archived", "runs.delete", "journal.export", "runs.first"} <= ids  # hidden ones too
        assert any(row.description not in shown for row in rows)  # the footer had no room for some
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyHelpScreen), what="the key help")
        help_screen = app.screen
        assert isinstance(help_screen, KeyHelpScreen) and help_screen.screen_name == "Journal"
        assert [r.binding_id for r in help_screen.screen_rows] == [r.binding_id for r in rows]
        assert {"app.quit", "app.theme", "app.new_run", "app.keys", "screen.journal"} <= {
            r.binding_id for r in help_screen.app_rows}
        archived = next(r for r in help_screen.screen_rows if r.binding_id == "runs.archived")
        assert archived.keys == ["h"] and archived.description == "Archived"
        await pilot.press("f1")  # closes it again
        await wait_for(pilot, lambda: app.screen is journal, what="back to the journal")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyHelpScreen), what="the key help by ?")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is journal, what="back again")


async def test_key_help_shows_a_dialogs_own_keys(home: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        await _shell(pilot, "journal")
        await pilot.press("a")  # the entry editor, a dialog with a text area
        await wait_for(pilot, lambda: len(app.screen_stack) == 2, what="the editor")
        await pilot.press("f1")  # priority: works inside the text area
        await wait_for(pilot, lambda: isinstance(app.screen, KeyHelpScreen), what="the key help")
        assert isinstance(app.screen, KeyHelpScreen)
        assert {r.binding_id for r in app.screen.screen_rows} == {"editor.save", "editor.cancel"}


async def test_every_key_of_the_screen_is_a_palette_command_that_runs(home: Path) -> None:
    from screens.journal import JournalScreen

    make_run(home / "runs", RUN)
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        await _shell(pilot, "journal")
        screen = app.screen
        assert isinstance(screen, JournalScreen)
        await wait_for(pilot, lambda: bool(screen.query("#journal-table")), what="the journal's table")
        titles = [command.title for command in app.get_system_commands(screen)]
        for row in screen_key_rows(screen):
            if app._check_action_state(row.action, row.node) is True:
                assert f"Journal: {row.description}" in titles, row.binding_id
        assert "Keys: every key of this screen" in titles
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"journal: runs")
        palette = app.screen
        await wait_for(pilot, lambda: any("Journal: Runs" in str(o.prompt) for o in
                                          palette.query_one("CommandList").options),  # type: ignore[attr-defined]
                       what="the Runs command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.view == "runs", what="the runs view, from the palette")
        assert {row.binding_id for row in app_key_rows(app)} >= {"app.keys", "app.palette"}


async def test_question_mark_types_into_a_text_field_and_f1_still_helps(home: Path) -> None:
    from textual.widgets import Input

    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        await _shell(pilot, "journal")
        journal = app.screen
        await wait_for(pilot, lambda: bool(journal.query("#journal-table")), what="the journal's table")
        await pilot.press("slash")  # the text filter
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the filter field")
        field = app.focused
        assert isinstance(field, Input)
        await pilot.press("w", "h", "y", "question_mark")
        await pilot.pause()
        assert field.value == "why?" and app.screen is journal
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyHelpScreen), what="the key help from the field")
