"""The Checklist screen inside the console's shell (header, tabs, footer), on the app's store."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.checklist import ChecklistScreen
from slmtui.ui.shell import ShellHost, ShellScreen


class ChecklistShellScreen(ShellScreen, ChecklistScreen):
    """`ChecklistScreen`'s form and verdict as the console's first tab."""

    SCREEN_NAME = "Checklist"
    LAZY_BODY = False  # the checklist fills its controls from a worker that may finish before a lazy mount

    @classmethod
    def for_host(cls, host: ShellHost) -> ChecklistShellScreen:
        return cls(host.store)

    def compose(self) -> ComposeResult:
        return ShellScreen.compose(self)

    def compose_body(self) -> ComposeResult:
        return ChecklistScreen.compose_body(self)
