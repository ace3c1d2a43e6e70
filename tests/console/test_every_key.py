"""Every key of every screen, pressed before any data exists (an empty HOME): nothing raises, the console
stays up, and every failed worker is reported in one sentence rather than crashing the app."""

from __future__ import annotations

from pathlib import Path

from console_helpers import wait_for
from textual.binding import Binding
from textual.command import CommandPalette

from slmtui.app import SlmtuiApp
from slmtui.ui.registry import ScreenEntry, default_registry
from slmtui.ui.shell import ShellBody

#: Keys that end the console on purpose; pressed once, last.
QUIT_KEYS = {"ctrl+q", "ctrl+c"}


def keys_of(app: SlmtuiApp) -> list[str]:
    """Every key bound right now (the app's, the screen's, the focused widget's chain), and every screen key,
    including those of screens not built yet."""
    keys = {key for key, active in app.screen.active_bindings.items() if isinstance(active.binding, Binding)}
    keys |= {entry.key for entry in app.registry}
    return sorted(keys - QUIT_KEYS)


async def press_every_key(home: Path, entry: ScreenEntry) -> list[str]:
    """Open the console on `entry`'s screen and press each of its keys; returns the keys pressed."""
    failures: list[str] = []
    app = SlmtuiApp(home=home, start_screen=entry.slug)
    app.report_worker_failure = lambda worker: failures.append(str(worker.error))  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == entry.slug and app.screen.query(ShellBody),
                       what=f"the {entry.name} screen")
        await pilot.pause()
        keys = keys_of(app)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
            assert app.is_running, f"{key} on {entry.name} ended the console"
            # back to the screen under test: close whatever the key opened
            for _ in range(4):
                if len(app.screen_stack) <= 1 and not isinstance(app.screen, CommandPalette):
                    break
                await pilot.press("escape")
                await pilot.pause()
            if app.current_screen_name != entry.slug:
                app.action_show_screen(entry.slug)
                await pilot.pause()
        await pilot.pause(0.2)  # long-lived workers (the monitor feed) never complete: let short ones settle
        await pilot.press("ctrl+q")
    assert all("\n" not in failure for failure in failures), failures
    assert app.return_code in (0, None)
    return keys


async def test_every_binding_of_every_screen_on_an_empty_home(home: Path) -> None:
    screens = default_registry().available()
    assert screens, "the registry offers no screen"
    pressed = {entry.slug: await press_every_key(home, entry) for entry in screens}
    assert all(len(keys) >= 3 for keys in pressed.values()), pressed
