"""The Checklist screen inside the console's shell (header, tabs, footer), on the app's store."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.checklist import ChecklistScreen
from slmtui.ui.shell import ShellHost, ShellScreen


class ChecklistShellScreen(ShellScreen, ChecklistScreen):
    """`ChecklistScreen`'s form and verdict as the console's first tab.

    The shell paints first and the form (a hundred-odd controls) a frame later, so the saved answers are read
    only once the form is mounted: `ChecklistScreen` fills its controls from that read.
    """

    SCREEN_NAME = "Checklist"

    _body_ready = False
    _load_pending = False

    @classmethod
    def for_host(cls, host: ShellHost) -> ChecklistShellScreen:
        return cls(host.store)

    def compose(self) -> ComposeResult:
        return ShellScreen.compose(self)

    def compose_body(self) -> ComposeResult:
        return ChecklistScreen.compose_body(self)

    def _load(self) -> None:  # type: ignore[override]
        if self._body_ready:
            ChecklistScreen._load(self)
        else:
            self._load_pending = True

    def on_body_mounted(self) -> None:
        self._body_ready = True
        if self._load_pending:
            self._load_pending = False
            ChecklistScreen._load(self)
