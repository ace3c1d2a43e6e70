"""Opening the console (the Textual app) from the command line."""

from __future__ import annotations

from pathlib import Path


def open_console(home: Path | None = None, screen: str | None = None, run: str | None = None) -> int:
    """Run the console until the user quits; returns the exit code."""
    from slmtui.app import SlmtuiApp

    SlmtuiApp(home=home, start_screen=screen, start_run=run).run()
    return 0
