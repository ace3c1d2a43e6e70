"""The key-help screen (`f1` or `?` anywhere): every key of the screen beneath and of the app, with what it does
and the binding id a `keymap.toml` line uses to change it."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from slmtui.ui.keys import KeyRow

#: Where the keymap lives, as the help says it (the real path is under HOME).
KEYMAP_HINT = "Change a key in HOME/keymap.toml: one `id = \"key\"` line per key (see the README)."


def keys_table(rows: list[KeyRow]) -> Table:
    """Key, what it does, and its id, one row per binding."""
    table = Table(box=None, padding=(0, 2, 0, 0), show_header=True, header_style="bold", expand=True)
    table.add_column("key", no_wrap=True)
    table.add_column("does", ratio=1)
    table.add_column("id", no_wrap=True, style="dim")
    for row in rows:
        does = Text.assemble((row.description, "bold"))
        if row.tooltip and row.tooltip != row.description:
            does.append(f": {row.tooltip}")
        table.add_row(row.keys_text, does, row.binding_id)
    return table


class KeyHelpScreen(ModalScreen[None]):
    """Lists the keys in two parts, this screen's and everywhere's; scrolls when they do not fit."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="keys.close", tooltip="Back to the screen"),
    ]

    def __init__(self, screen_name: str, screen_rows: list[KeyRow], app_rows: list[KeyRow]) -> None:
        super().__init__()
        self.screen_name = screen_name
        self.screen_rows = screen_rows
        self.app_rows = app_rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="key-help"):
            yield Label(f"Keys: {self.screen_name}", classes="dialog-title")
            with VerticalScroll(id="key-help-scroll"):
                if self.screen_rows:
                    yield Static(keys_table(self.screen_rows), id="key-help-screen")
                yield Label("Everywhere", classes="key-help-part")
                yield Static(keys_table(self.app_rows), id="key-help-app")
            yield Static(KEYMAP_HINT + "  Esc closes.", classes="key-help-hint")

    def on_mount(self) -> None:
        self.query_one("#key-help-scroll").focus()
