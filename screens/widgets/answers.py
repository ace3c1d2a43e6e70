"""Form controls for answering questions by keyboard: a checkbox whose key shows in the footer, and a
toggle for which way a metric is better."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Checkbox, RadioButton


class AnswerCheckbox(Checkbox):
    """A compact checkbox that shows "space Toggle" in the footer while it has focus (styled in
    `themes/checklist.tcss`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_button", "Toggle", id="answer.toggle", tooltip="Tick or untick this answer"),
    ]

    def __init__(self, label: str | Content, value: bool = False, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None, tooltip: str | None = None) -> None:
        super().__init__(label, value, name=name, id=id, classes=classes, compact=True, tooltip=tooltip)

    @property
    def _button(self) -> Content:
        # An empty box when unticked, so the state reads without colour (monochrome terminals, screenshots).
        self.BUTTON_INNER = "X" if self.value else " "
        return super()._button


class AnswerRadioButton(RadioButton):
    """A radio button whose unpicked state is an empty circle, readable without colour."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "●" if self.value else " "
        return super()._button


class DirectionToggle(Widget, can_focus=True):
    """Shows whether higher or lower is better; space, enter or a click flips it (styled in
    `themes/checklist.tcss`)."""


    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,enter", "flip", "Flip", key_display="space", id="direction.flip",
                tooltip="Switch between higher is better and lower is better"),
    ]

    direction: reactive[str] = reactive("higher")
    """"higher" or "lower": which way of the metric is better."""

    @dataclass
    class Changed(Message):
        """The user flipped the direction."""

        toggle: DirectionToggle
        direction: str

        @property
        def control(self) -> DirectionToggle:
            return self.toggle

    def __init__(self, direction: str = "higher", *, name: str | None = None, id: str | None = None,
                 tooltip: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.set_reactive(DirectionToggle.direction, direction)
        if tooltip:
            self.tooltip = tooltip

    def render(self) -> str:
        return "▲ higher" if self.direction == "higher" else "▼ lower"

    def action_flip(self) -> None:
        """Flip the direction (and tell the parent)."""
        self.direction = "lower" if self.direction == "higher" else "higher"
        self.post_message(self.Changed(self, self.direction))

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.action_flip()
