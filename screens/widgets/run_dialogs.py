"""Modal views of the Runs view: two runs' spec diff, their loss curves and a system series overlaid, and a tag
prompt."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from engine.safe_text import visible, visible_line
from screens.widgets.dialogs import FieldDialog
from screens.widgets.line_chart import LineChart, Series
from slmtui.run_compare import SYSTEM_SERIES, Curves, SpecChange


def _value(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


class RunDiffScreen(ModalScreen[None]):
    """Every setting that differs between two runs, and what differs in their environments."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="rundiff.close", tooltip="Back to the runs"),
    ]

    def __init__(self, a: str, b: str, changes: list[SpecChange], env: list[str]) -> None:
        super().__init__()
        self.a, self.b, self.changes, self.env = a, b, changes, env

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog run-dialog"):
            yield Label(Content(visible_line(f"Spec diff: {self.a}  →  {self.b}")), classes="dialog-title")
            if self.env:
                yield Static(Content(visible("Not comparable, the environments differ: " + "; ".join(self.env))),
                             id="diff-env", classes="dialog-error")
            summary = f"{len(self.changes)} setting{'s' if len(self.changes) != 1 else ''} differ."
            yield Static(summary if self.changes else "The two specs are the same.", id="diff-summary")
            table: DataTable[Text] = DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
            table.add_column("setting", key="key")
            table.add_column(Text(visible_line(self.a[-24:])), key="a")
            table.add_column(Text(visible_line(self.b[-24:])), key="b")
            for change in self.changes:
                table.add_row(Text(visible_line(change.key), style="bold"), Text(visible_line(_value(change.a))),
                              Text(visible_line(_value(change.b))), key=change.key)
            yield table
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="diff-close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    async def action_dismiss(self, result: None = None) -> None:
        """Close the diff."""
        self.dismiss(None)


def memory_title(curves: list[Curves]) -> str:
    """What the memory chart shows: GPU memory allocated, the engine's RAM (CPU runs), or both kinds."""
    kinds = {c.memory_kind for c in curves if c.memory_kind}
    return f"memory, GiB ({' / '.join(sorted(kinds))})" if kinds else SYSTEM_SERIES["memory"]


class RunOverlayScreen(ModalScreen[None]):
    """Two (or more) runs' training and validation loss on one chart, and a system series beneath it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="overlay.close", tooltip="Back to the runs"),
        Binding("l", "toggle_log", "Log scale", id="overlay.log", tooltip="Plot the loss on a log scale"),
        Binding("v", "toggle_val", "Validation", id="overlay.val", tooltip="Show validation loss instead of training"),
        Binding("s", "next_system", "System", id="overlay.system",
                tooltip="Chart the next system series beneath the loss: tokens/s or memory"),
    ]

    show_val: reactive[bool] = reactive(False, init=False)
    """Draw the validation curves (True) or the training curves (False)."""
    system: reactive[str] = reactive("tokens_per_s", init=False)
    """The system series drawn beneath the loss (a key of `SYSTEM_SERIES`)."""

    def __init__(self, curves: list[Curves]) -> None:
        super().__init__()
        self.curves = curves

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog run-dialog"):
            yield Label("", classes="dialog-title", id="overlay-title")
            yield LineChart(id="overlay-chart")
            yield Static("", id="overlay-system-title")
            yield LineChart(id="overlay-system")
            yield Static("l log scale   v training/validation   s tokens/s or memory", id="overlay-note")

    def on_mount(self) -> None:
        self.watch_show_val()
        self.watch_system()

    def watch_show_val(self) -> None:
        which = "validation" if self.show_val else "training"
        series = tuple(Series(c.run, c.val if self.show_val else c.train) for c in self.curves)
        chart = self.query_one("#overlay-chart", LineChart)
        chart.empty_text = f"Neither run has {which} loss yet."
        chart.series = series
        runs = "  vs  ".join(c.run for c in self.curves)
        self.query_one("#overlay-title", Label).update(Content(visible_line(f"{which.capitalize()} loss, {runs}")))

    def watch_system(self) -> None:
        title = memory_title(self.curves) if self.system == "memory" else SYSTEM_SERIES[self.system]
        chart = self.query_one("#overlay-system", LineChart)
        chart.empty_text = f"Neither run recorded {title}."
        chart.series = tuple(Series(c.run, c.system.get(self.system, [])) for c in self.curves)
        self.query_one("#overlay-system-title", Static).update(f"{title} by step")

    def action_toggle_log(self) -> None:
        """Log scale on or off."""
        chart = self.query_one("#overlay-chart", LineChart)
        chart.log_y = not chart.log_y

    def action_toggle_val(self) -> None:
        """Switch between training and validation loss."""
        self.show_val = not self.show_val

    def action_next_system(self) -> None:
        """Chart the next system series (tokens/s, memory) beneath the loss."""
        keys = list(SYSTEM_SERIES)
        self.system = keys[(keys.index(self.system) + 1) % len(keys)]

    async def action_dismiss(self, result: None = None) -> None:
        """Close the chart."""
        self.dismiss(None)


class TagDialog(FieldDialog[str | None]):
    """Asks for a run's tags (space or comma separated), prefilled with the current ones."""

    FIELD_ID = "tags-input"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="tags.cancel", tooltip="Close without changing the tags"),
    ]

    def __init__(self, run_id: str, tags: tuple[str, ...]) -> None:
        super().__init__()
        self.run_id, self.tags = run_id, tags

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content(visible_line(f"Tags of {self.run_id}")), classes="dialog-title")
            yield Static("Words separated by spaces or commas; empty removes every tag.")
            yield Input(visible_line(" ".join(self.tags)), id="tags-input", tooltip="enter saves, escape cancels")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Close without a change."""
        self.dismiss(None)
