"""The checklist's verdict: go or not yet, the baseline, what blocks and what is worth doing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from engine.safe_text import visible
from slmtui.checklist import Baseline, Verdict, format_number, label


class VerdictPanel(Vertical):
    """Renders a verdict handed down by its screen (it owns no state of its own; styled in
    `themes/checklist.tcss`)."""


    verdict: reactive[Verdict | None] = reactive(None)
    """The verdict to show (None until the answers are loaded)."""
    baseline: reactive[Baseline | None] = reactive(None)
    """The best alternative's score, if any."""
    save_state: reactive[str] = reactive("")
    """"saved", "not saved: ..." or "" (shown in the border)."""

    def compose(self) -> ComposeResult:
        self.border_title = "Verdict"
        with Horizontal(classes="verdict-top"):
            yield Static("…", id="verdict-decision")
            yield Static("", id="verdict-baseline")
        with VerticalScroll(id="verdict-details", can_focus=False):
            yield Static("", id="verdict-reasons")
            yield Static("", id="verdict-advice")

    def watch_verdict(self, verdict: Verdict | None) -> None:
        if not self.is_mounted or verdict is None:
            return
        decision = self.query_one("#verdict-decision", Static)
        decision.update(verdict.decision.upper() + (" (your call)" if verdict.overridden else ""))
        decision.set_class(verdict.go, "-go")
        decision.set_class(not verdict.go, "-not-yet")
        self.set_class(verdict.overridden, "-overridden")
        lines = [f"✗ {r}" for r in verdict.reasons]
        if verdict.overridden and verdict.note:
            lines.append(f"your note: {visible(verdict.note)}")
        reasons = self.query_one("#verdict-reasons", Static)
        reasons.update(Content("\n".join(lines)))
        reasons.display = bool(lines)
        advice = self.query_one("#verdict-advice", Static)
        advice.update(Content("\n".join(f"· {a}" for a in verdict.advice)))
        advice.display = bool(verdict.advice)

    def watch_baseline(self, baseline: Baseline | None) -> None:
        if not self.is_mounted:
            return
        text = "baseline: none yet (score the alternatives you tried)" if baseline is None else (
            f"baseline: {label(baseline['metric']).lower()} {format_number(baseline['value'])} "
            f"from {baseline['source_label'].lower()}")
        self.query_one("#verdict-baseline", Static).update(Content(text))

    def watch_save_state(self, state: str) -> None:
        self.border_subtitle = state

    def on_mount(self) -> None:
        self.watch_verdict(self.verdict)
        self.watch_baseline(self.baseline)
