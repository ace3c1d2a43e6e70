"""Small modal dialogs shared by screens: a yes/no confirmation, a one-field prompt and a path prompt."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, TypeVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from engine.safe_text import visible, visible_line


class ConfirmDialog(ModalScreen[bool]):
    """Asks one question; dismisses with True (y, or the confirm button) or False (n, escape). The title and
    the question are plain text (they often name a run, a folder or an entry), never markup."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Confirm"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Cancel"),
    ]

    def __init__(self, title: str, question: str, confirm_label: str = "Yes") -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content(visible_line(self._title)), classes="dialog-title")
            yield Static(Content(visible(self._question)), id="confirm-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (n)", id="confirm-no")
                yield Button(f"{self._confirm_label} (y)", id="confirm-yes", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        """Close the dialog with `answer`."""
        self.dismiss(answer)


ResultT = TypeVar("ResultT")


class FieldDialog(ModalScreen[ResultT]):
    """A dialog around one text field: the field has the focus from the start, with the cursor after its text,
    and takes the keys typed before it had it (typed straight after the key that opened the dialog, or sent
    together over a slow link), which would otherwise reach the dialog while nothing in it has the focus."""

    FIELD_ID: ClassVar[str]

    @property
    def field(self) -> Input:
        """The dialog's text field."""
        return self.query_one(f"#{self.FIELD_ID}", Input)

    def on_mount(self) -> None:
        self.field.focus()
        self.field.cursor_position = len(self.field.value)

    async def on_key(self, event: events.Key) -> None:
        # A printable key the field did not take (it takes those it has) belongs in it; enter is the field's
        # own binding once it has the focus, and submits it when nothing has the focus yet.
        if event.is_printable and event.character:
            event.stop()
            self.field.focus()
            self.field.insert_text_at_cursor(event.character)
        elif event.key == "enter" and self.focused is None:
            event.stop()
            self.field.focus()
            await self.field.action_submit()


class PathDialog(FieldDialog[Path | None]):
    """Asks for a file path, prefilled with a default; dismisses with the path (enter) or None (escape)."""

    FIELD_ID = "path-input"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="path.cancel", tooltip="Close without doing anything"),
    ]

    def __init__(self, title: str, default: Path, note: str = "") -> None:
        super().__init__()
        self._title = title
        self._default = default
        self._note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content(visible_line(self._title)), classes="dialog-title")
            if self._note:
                yield Static(Content(visible(self._note)))
            yield Input(str(self._default), id="path-input", tooltip="Where to write; enter to confirm")
            yield Static("", id="path-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (esc)", id="path-cancel")
                yield Button("Write (enter)", id="path-ok", variant="primary")

    def _submit(self) -> None:
        text = self.query_one("#path-input", Input).value.strip()
        if not text:
            self.query_one("#path-error", Static).update("Type a file path, or press escape.")
            return
        self.dismiss(Path(text).expanduser())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "path-ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without a path."""
        self.dismiss(None)
