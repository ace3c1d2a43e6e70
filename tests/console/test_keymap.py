"""The user's keymap, HOME/keymap.toml: read, checked, applied with `App.set_keymap`, and used."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_helpers import wait_for
from textual.widgets._footer import FooterKey

from screens.key_help import KeyHelpScreen
from screens.widgets.entry_editor import EntryEditor
from slmtui.app import SlmtuiApp
from slmtui.ui.keymap import known_binding_ids, read_keymap, unknown_ids
from slmtui.ui.shell import ShellBody


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "keymap"), [
    ('"journal.add" = "f5"\n', {"journal.add": "f5"}),
    ('journal.add = "f5"\napp.theme = "ctrl+e"\n', {"journal.add": "f5", "app.theme": "ctrl+e"}),
    ('"journal.delete" = "d, x"\n', {"journal.delete": "d,x"}),
    ('"app.keys" = "?"\n', {"app.keys": "?"}),
    ("", {}),
])
def test_a_good_keymap_is_read_whole(tmp_path: Path, text: str, keymap: dict[str, str]) -> None:
    assert read_keymap(write(tmp_path / "keymap.toml", text)) == (keymap, None)


@pytest.mark.parametrize(("text", "kept", "words"), [
    ('journal.add = "f5\n', {}, "is not valid TOML"),
    ('journal.add = 5\n"app.theme" = "f6"\n', {"app.theme": "f6"}, "gives journal.add no key it can use"),
    ('journal.add = ""\n', {}, "gives journal.add no key"),
    ('journal.add = "ctrl e"\n', {}, "gives journal.add no key"),
])
def test_a_bad_keymap_is_one_sentence_and_keeps_its_good_lines(tmp_path: Path, text: str,
                                                                kept: dict[str, str], words: str) -> None:
    keymap, problem = read_keymap(write(tmp_path / "keymap.toml", text))
    assert keymap == kept
    assert problem is not None and words in problem and problem.count(". ") == 0 and "\n" not in problem


def test_no_keymap_is_no_problem(tmp_path: Path) -> None:
    assert read_keymap(tmp_path / "keymap.toml") == ({}, None)


def test_unknown_ids_are_named_and_known_ones_are_every_binding_of_the_console() -> None:
    known = known_binding_ids()
    assert {"app.quit", "app.keys", "journal.add", "runs.archived", "editor.save", "new_run.launch",
            "monitor.stop", "keys.close", "screen.journal"} <= known
    assert unknown_ids({"journal.add": "f5"}, known) is None
    problem = unknown_ids({"journal.addd": "f5", "journal.add": "f6"}, known)
    assert problem is not None and "journal.addd" in problem and "journal.add," not in problem


async def test_a_remapped_key_works_and_the_old_one_does_not(home: Path) -> None:
    write(home / "keymap.toml", 'journal.add = "f5"\n')
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal" and app.screen.query(ShellBody)
                       and app.screen.query("#journal-table"), what="the journal")
        journal = app.screen
        await wait_for(pilot, lambda: any(k.description == "Add" for k in journal.query(FooterKey)),
                       what="the footer")
        add = next(k for k in journal.query(FooterKey) if k.description == "Add")
        assert add.key == "f5" and add.key_display == "f5"
        assert next(k.description for k in journal.query(FooterKey)) == "Add"  # rebound, it keeps its place
        await pilot.press("a")
        await pilot.pause()
        assert app.screen is journal, "a no longer adds an entry"
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, EntryEditor), what="the editor, by f5")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is journal, what="back to the journal")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyHelpScreen), what="the key help")
        assert isinstance(app.screen, KeyHelpScreen)
        assert next(r for r in app.screen.screen_rows if r.binding_id == "journal.add").keys == ["f5"]
        await pilot.pause(0.3)
        assert not app._notifications, [str(n.message) for n in app._notifications]


async def test_a_bad_keymap_is_one_notification_and_the_defaults_work(home: Path) -> None:
    write(home / "keymap.toml", "journal.add = [\n")
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal" and app.screen.query("#journal-table"),
                       what="the journal")
        messages = [str(n.message) for n in app._notifications]
        assert len(messages) == 1 and "is not valid TOML" in messages[0], messages
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, EntryEditor), what="the editor, by a")


async def test_an_unknown_id_is_one_notification_and_the_rest_applies(home: Path) -> None:
    write(home / "keymap.toml", 'journal.ad = "f6"\n"app.theme" = "f7"\n')
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal", what="the journal")
        await wait_for(pilot, lambda: app._notifications, timeout=20, what="the keymap's notification")
        messages = [str(n.message) for n in app._notifications]
        assert len(messages) == 1 and "journal.ad," in messages[0] and "f1 lists every key" in messages[0]
        theme = app.theme
        await pilot.press("f7")
        await wait_for(pilot, lambda: app.theme != theme, what="the theme, by f7")
