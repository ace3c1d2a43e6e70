"""The one-field dialogs take what is typed straight after the key that opens them, before their field has the
focus (over a slow link keys arrive together); enter submits it, escape still cancels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_helpers import wait_for
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from screens.widgets.dialogs import FieldDialog, PathDialog
from screens.widgets.pin_dialog import PinNoteDialog
from screens.widgets.run_dialogs import TagDialog


class DialogHost(App[None]):
    """Opens a dialog and sends keys in the same breath, as a terminal delivers keys typed ahead."""

    def __init__(self, dialog: FieldDialog[Any], keys: list[tuple[str, str | None]]) -> None:
        super().__init__()
        self.dialog, self.keys = dialog, keys
        self.results: list[object] = []

    def compose(self) -> ComposeResult:
        yield Static("host")

    def open_and_type(self) -> None:
        self.push_screen(self.dialog, self.results.append)
        for key, character in self.keys:  # posted before the dialog has mounted, let alone focused its field
            self.post_message(events.Key(key, character))


def keys_of(text: str) -> list[tuple[str, str | None]]:
    names = {" ": "space", ",": "comma", ".": "full_stop"}
    return [(names.get(c, c), c) for c in text]


@pytest.mark.parametrize(("dialog", "typed", "expected"), [
    (TagDialog("run-a", ()), "baseline, r8", "baseline, r8"),
    (TagDialog("run-b", ("old",)), " new", "old new"),
    (PinNoteDialog("run-c", 12), "loss jumps", "loss jumps"),
    (PathDialog("Export to", Path("/tmp/out")), ".csv", Path("/tmp/out.csv")),
], ids=["tags", "tags-appended", "pin", "path"])
async def test_keys_typed_ahead_land_in_the_field_and_enter_submits(dialog: FieldDialog[Any], typed: str,
                                                                   expected: object) -> None:
    app = DialogHost(dialog, [*keys_of(typed), ("enter", "\r")])
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_and_type()
        await wait_for(pilot, lambda: app.results, what="the dialog's answer")
    assert app.results == [expected]


async def test_escape_typed_ahead_still_cancels() -> None:
    app = DialogHost(TagDialog("run-a", ("kept",)), [*keys_of("abc"), ("escape", "\x1b")])
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_and_type()
        await wait_for(pilot, lambda: app.results, what="the dialog's answer")
    assert app.results == [None]


async def test_a_key_typed_once_the_field_has_the_focus_goes_in_once() -> None:
    app = DialogHost(TagDialog("run-a", ()), [])
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_and_type()
        await pilot.pause()
        assert isinstance(app.focused, Input)
        await pilot.press("x", "y")
        assert app.focused.value == "xy"
