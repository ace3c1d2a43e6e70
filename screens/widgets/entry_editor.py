"""The journal entry editor: a modal with the kind, run, step and a multi-line text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from engine.safe_text import visible, visible_line
from slmtui.ui.shell import ShellHost
from slmtui.ui.workers import ReportsWorkerFailures, explain_failure


@dataclass(frozen=True)
class EntryDraft:
    """What the editor hands back: the fields of a journal entry as the user left them."""

    text: str
    kind: str
    run: str | None
    step: int | None


def parse_step(text: str) -> int | None:
    """The step typed in the editor: blank means none; raises ValueError unless a whole number ≥ 0."""
    text = text.strip()
    if not text:
        return None
    step = int(text)
    if step < 0:
        raise ValueError(text)
    return step


class EntryEditor(ReportsWorkerFailures, ModalScreen[EntryDraft | None]):
    """Edits a draft; ctrl+s saves (dismisses with the draft), escape cancels (dismisses with None).

    With a `save` function the editor writes the draft itself (in a thread) and closes only once it is written:
    an entry that cannot be saved (an unreadable store, a read-only disk) stays in the editor with the reason.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="editor.save", tooltip="Save the entry"),
        Binding("escape", "cancel", "Cancel", id="editor.cancel", tooltip="Close without saving"),
    ]

    def __init__(self, title: str, draft: EntryDraft, kinds: tuple[str, ...],
                 save: Callable[[EntryDraft], object] | None = None) -> None:
        super().__init__()
        self._title = title
        self._draft = draft
        self._kinds = kinds
        self._save = save
        self._saving: EntryDraft | None = None
        """The draft being written, while a write is in flight."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="editor"):
            yield Label(self._title, classes="dialog-title")
            with Horizontal(id="editor-fields"):
                yield Select(
                    [(kind, kind) for kind in self._kinds], value=self._draft.kind, allow_blank=False,
                    id="editor-kind", tooltip="What kind of entry this is",
                )
                yield Input(
                    visible_line(self._draft.run or ""), placeholder="run id (optional)", id="editor-run",
                    tooltip="The run this entry is about",
                )
                yield Input(
                    "" if self._draft.step is None else str(self._draft.step), placeholder="step",
                    id="editor-step", tooltip="The training step this entry is about (optional)",
                )
            # An entry that holds control characters is edited (and saved) with them visible, never raw.
            yield TextArea(visible(self._draft.text), id="editor-text", soft_wrap=True, tab_behavior="focus")
            yield Static("", id="editor-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (esc)", id="editor-cancel")
                yield Button("Save (ctrl+s)", id="editor-save", variant="primary")

    def on_mount(self) -> None:
        text = self.query_one("#editor-text", TextArea)
        text.focus()
        text.move_cursor(text.document.end)

    def current_draft(self) -> EntryDraft:
        """The draft as the fields show it now; raises ValueError with a sentence when a field is wrong."""
        text = self.query_one("#editor-text", TextArea).text.strip()
        if not text:
            raise ValueError("Write something first, or press escape to cancel.")
        step_text = self.query_one("#editor-step", Input).value
        try:
            step = parse_step(step_text)
        except ValueError:
            raise ValueError(f"The step must be a whole number, not {step_text.strip()!r}.") from None
        kind = self.query_one("#editor-kind", Select).value
        run = self.query_one("#editor-run", Input).value.strip() or None
        return EntryDraft(text=text, kind=str(kind), run=run, step=step)

    def action_save(self) -> None:
        """Hand the draft back, unless a field needs fixing first."""
        try:
            draft = self.current_draft()
        except ValueError as exc:
            self.query_one("#editor-error", Static).update(Content(visible(str(exc))))
            return
        if self._save is None:
            self.dismiss(draft)
        elif self._saving is None:  # one write at a time: a second ctrl+s while saving would add the entry twice
            self._saving = draft
            self.query_one("#editor-error", Static).update("Saving…")
            self.run_worker(partial(self._save, draft), thread=True, exclusive=True, exit_on_error=False,
                            group="editor-save", name="Saving the entry")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The write finished: close on success, else keep the text and say why it was not saved."""
        if event.worker.group != "editor-save" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        event.prevent_default()  # said here, in the editor, rather than in a toast
        saved, self._saving = self._saving, None
        if event.state == WorkerState.SUCCESS:
            self.dismiss(saved)
            return
        message = explain_failure(event.worker, cast(ShellHost, self.app).home)
        self.query_one("#editor-error", Static).update(f"Not saved: {message} Your text is still here.")

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "editor-save":
            self.action_save()
        else:
            self.action_cancel()
