"""The console's shell: tabs, screen keys, the command palette, themes remembered in the store."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from console_helpers import wait_for
from textual.app import ComposeResult
from textual.command import CommandList, CommandPalette
from textual.widgets import Static, Tab

from slmtui.app import SlmtuiApp, shortened_path
from slmtui.store import Store
from slmtui.ui.registry import ScreenRegistry, default_registry
from slmtui.ui.shell import NavTabs, ShellScreen
from slmtui.ui.themes import load_themes, next_theme_name, parse_themes

REPO = Path(__file__).resolve().parents[2]
TAB_NAMES = ["Checklist", "Shortlist", "Data", "GPUs", "Monitor", "Journal"]


class FakeChecklist(ShellScreen):
    """A stand-in second screen, so switching between two working screens can be tested."""

    SCREEN_NAME = "Checklist"

    def compose_body(self) -> ComposeResult:
        yield Static("checklist body", id="fake-body")


def two_screen_registry() -> ScreenRegistry:
    registry = default_registry()
    registry.register("Checklist", "1", lambda host: FakeChecklist(), "A test checklist")
    return registry


async def test_every_screen_name_is_a_tab_and_only_working_ones_are_enabled(home: Path) -> None:
    app = SlmtuiApp(home=home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "checklist", what="the first screen")
        tabs = app.screen.query_one(NavTabs)
        labels = [str(tab.label) for tab in tabs.query(Tab)]
        assert [label.split(" ", 1)[1] for label in labels] == TAB_NAMES
        assert [label.split(" ", 1)[0] for label in labels] == ["1", "2", "3", "4", "5", "6"]
        assert tabs.active == "tab-checklist"
        disabled = {tab.id for tab in tabs.query(Tab) if tab.disabled}
        assert disabled == {f"tab-{entry.slug}" for entry in app.registry if not entry.available}
        assert not {"tab-monitor", "tab-journal", "tab-shortlist", "tab-checklist"} & disabled
        assert "HOME" in app.sub_title and str(home.name) in app.sub_title


async def test_the_checklist_runs_inside_the_shell_on_the_apps_store(home: Path) -> None:
    from screens.checklist import ChecklistScreen

    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal")
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, ChecklistScreen) and app.screen.loaded,
                       what="the checklist loaded")
        screen = app.screen
        assert isinstance(screen, ChecklistScreen) and screen.store is app.store
        assert screen.query_one(NavTabs).active == "tab-checklist"
        assert screen.query("#checklist-form") and screen.query("VerdictPanel")


async def test_keys_and_clicks_switch_screens(home: Path) -> None:
    registry = ScreenRegistry([replace(e, factory=None) if e.slug == "data" else e for e in two_screen_registry()])
    app = SlmtuiApp(home=home, registry=registry)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "checklist", what="the first screen")
        await pilot.press("6")
        await wait_for(pilot, lambda: app.current_screen_name == "journal")
        assert app.screen.query_one(NavTabs).active == "tab-journal"
        await pilot.press("3")  # Data has no factory in this registry: nothing happens
        await pilot.pause()
        assert app.current_screen_name == "journal"
        await pilot.press("1")
        await wait_for(pilot, lambda: app.current_screen_name == "checklist")
        assert app.screen.query_one("#fake-body", Static)
        await pilot.click("#tab-journal")
        await wait_for(pilot, lambda: app.current_screen_name == "journal", what="a click on the tab")


async def test_start_screen_and_active_run_from_the_command_line(home: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="Journal", start_run="20261126-070000-demo")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal")
        assert "run 20261126-070000-demo" in app.sub_title
        app.active_run = None
        assert "run" not in app.sub_title


async def test_unknown_start_screen_warns_and_opens_the_first_screen(home: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="Nowhere")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "checklist")
        assert any("Nowhere" in str(n.message) for n in app._notifications)


async def test_the_palette_lists_the_screens_and_opens_them(home: Path) -> None:
    app = SlmtuiApp(home=home, registry=two_screen_registry())
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "checklist")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"screen")
        palette = app.screen
        await wait_for(pilot, lambda: palette.query_one(CommandList).option_count >= 2, what="screen hits")
        prompts = [str(opt.prompt) for opt in palette.query_one(CommandList).options]
        assert any("Screen: Journal" in p for p in prompts) and any("Screen: Checklist" in p for p in prompts)
        await pilot.press(*" journal", "enter")
        await wait_for(pilot, lambda: app.current_screen_name == "journal", what="the palette's choice")


async def test_theme_key_switches_theme_and_the_store_remembers_it(home: Path) -> None:
    dark, light = (theme.name for theme in load_themes()[:2])
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal")
        assert app.theme == dark
        await pilot.press("ctrl+t")
        assert app.theme == light
        await wait_for(pilot, lambda: Store(home).setting("theme") == light, what="the theme saved")
    again = SlmtuiApp(home=home)
    async with again.run_test(size=(100, 30)) as pilot:
        assert again.theme == light
        assert again.current_theme.dark is False


@pytest.mark.parametrize("damage", ["not JSON", "a folder", "wrong shape"])
async def test_an_unreadable_store_is_one_sentence_not_a_crash(damage: str, home: Path) -> None:
    """Was: a store that is a folder (`IsADirectoryError`) or JSON of the wrong shape (`AttributeError`) killed
    the console at start."""
    home.mkdir(parents=True, exist_ok=True)
    if damage == "a folder":
        (home / "slmtui.json").mkdir()
    else:
        (home / "slmtui.json").write_text("{not json" if damage == "not JSON" else '{"meta": "x"}')
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: any("cannot be read" in str(n.message) for n in app._notifications),
                       what="the store error")
        assert app.is_running


def test_themes_toml_defines_a_dark_and_a_light_theme() -> None:
    themes = load_themes()
    assert {theme.dark for theme in themes} == {True, False}
    names = [theme.name for theme in themes]
    assert next_theme_name(names[-1]) == names[0] and next_theme_name("nope") == names[0]
    with pytest.raises(ValueError, match="unknown keys"):
        parse_themes({"x": {"primary": "#000000", "primry": "#111111"}})
    with pytest.raises(ValueError, match="primary"):
        parse_themes({"x": {"dark": True}})


def test_colours_live_only_in_themes() -> None:
    colour = re.compile(r"#[0-9a-fA-F]{6}\b|\b(rgb|hsl)\(|\bcolor:\s*(red|green|blue|white|black|yellow)\b")
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("slmtui", "screens")
        for path in (REPO / folder).rglob("*")
        if path.suffix in (".py", ".tcss") and colour.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_a_long_path_keeps_its_start_and_last_folders() -> None:
    path = "/check/work/main/tmp/pytest-of-root/pytest-313/test_every_screen_and_dialog0/home"
    short = shortened_path(path, 30)
    assert len(short) == 30 and short.startswith("/check") and short.endswith("dialog0/home") and "…" in short
    assert shortened_path("/tmp/home", 30) == "/tmp/home"


async def test_the_run_stays_in_the_header_at_80_columns_under_a_long_home(tmp_path: Path) -> None:
    home = tmp_path / "a-home-folder-with-a-rather-long-name-that-would-push-the-run-out-of-the-header"
    app = SlmtuiApp(home=home, start_screen="Journal", start_run="20261126-070000-demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal")
        assert app.sub_title.startswith("run 20261126-070000-demo") and "…" in app.sub_title
        assert len("slmtui — " + app.sub_title) <= 80 - 16  # the icon and the clock keep their cells


def test_home_paths_are_shown_from_the_users_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from slmtui.app import _display_path

    monkeypatch.setenv("HOME", str(tmp_path))
    assert _display_path(tmp_path) == "~" and _display_path(tmp_path / "slmtui") == "~/slmtui"
    assert _display_path(Path("/elsewhere/home")) == "/elsewhere/home"
