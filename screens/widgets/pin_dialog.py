"""The "pin a note" prompt of the monitor: one line of text about the step the run is at."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input, Label, Static

from engine.safe_text import visible_line
from screens.widgets.dialogs import FieldDialog


class PinNoteDialog(FieldDialog[str | None]):
    """Asks for the note's text; dismisses with it (enter) or None (escape, or empty text)."""

    FIELD_ID = "pin-text"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="pin.cancel", tooltip="Close without pinning"),
    ]

    def __init__(self, run_id: str, step: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.step = step

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="pin-dialog"):
            yield Label(f"Pin an aha note to step {self.step:,}", classes="dialog-title")
            yield Static(Content(visible_line(f"Run {self.run_id}. It goes to the journal and shows as a marker on the chart.")))
            yield Input(placeholder="what did you notice?", id="pin-text", tooltip="Enter pins it; escape cancels")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        """Close without a note."""
        self.dismiss(None)
