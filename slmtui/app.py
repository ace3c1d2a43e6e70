"""The console: a Textual app whose screens are the registry's, one key (or tab, or palette entry) away."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker

from engine.safe_text import visible, visible_line
from slmtui.home import slmtui_home
from slmtui.store import Store, StoreError
from slmtui.ui.keymap import KEYMAP_FILE, known_binding_ids, read_keymap, unknown_ids
from slmtui.ui.keys import app_key_rows, screen_key_rows
from slmtui.ui.registry import ScreenRegistry, default_registry
from slmtui.ui.themes import default_theme_name, load_themes, next_theme_name, stylesheet
from slmtui.ui.workers import ReportsWorkerFailures, explain_failure


def _screen_bindings(registry: ScreenRegistry) -> list[BindingType]:
    return [
        Binding(
            entry.key, f"show_screen('{entry.slug}')", entry.name, show=False,
            id=f"screen.{entry.slug}", tooltip=f"Show the {entry.name} screen",
        )
        for entry in registry
    ]


#: The header's cells not left to its subtitle: the menu icon and clock either side, "slmtui — " and margins.
HEADER_RESERVED_CELLS = 27


def _display_path(path: Path) -> str:
    """`path` under the user's home as `~/...` (the home itself as `~`)."""
    try:
        inside = path.relative_to(Path.home())
    except ValueError:
        return str(path)
    return "~" if inside == Path() else f"~/{inside}"


def shortened_path(text: str, cells: int) -> str:
    """`text` within `cells` characters, its middle replaced by "…" so the start and the last folders stay."""
    if len(text) <= cells:
        return text
    tail = max(1, cells * 2 // 3)
    head = max(0, cells - tail - 1)
    return text[:head] + "…" + text[len(text) - tail:]


class SlmtuiApp(ReportsWorkerFailures, App[None]):
    """The slmtui console on one HOME; opens on `start_screen` (default: the first screen that exists)."""

    TITLE = "slmtui"
    CSS_PATH: ClassVar = [stylesheet("app.tcss")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_run", "New run", id="app.new_run", tooltip="Edit a run spec and launch it"),
        Binding("ctrl+t", "next_theme", "Theme", id="app.theme", tooltip="Switch to the next colour theme"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit", tooltip="Quit the console"),
        # f1 works everywhere, in dialogs and text fields too; `?` wherever it is not typed into a field
        Binding("f1", "key_help", "Keys", priority=True, id="app.keys",
                tooltip="List every key of this screen, and the keys that work everywhere"),
        Binding("question_mark", "key_help", "Keys", show=False, id="app.keys_question",
                tooltip="List every key of this screen (f1 works in text fields too)"),
        Binding("ctrl+p", "command_palette", "palette", show=False, priority=True, id="app.palette",
                tooltip="Open the command palette: every screen and every key by name"),
        *_screen_bindings(default_registry()),
    ]

    active_run: reactive[str | None] = reactive(None)
    """The run the console is focused on (shown in the header; the monitor follows it)."""

    def __init__(
        self,
        home: Path | None = None,
        start_screen: str | None = None,
        start_run: str | None = None,
        registry: ScreenRegistry | None = None,
    ) -> None:
        super().__init__()
        self._shown_until: dict[str, float] = {}
        """Error toasts on screen now, and when they go (`notify_once`)."""
        self.home: Path = home if home is not None else slmtui_home()
        self.store: Store = Store(self.home)
        self.registry: ScreenRegistry = registry if registry is not None else default_registry()
        self._start_screen = start_screen
        for theme in load_themes():
            self.register_theme(theme)
        # Read before the first paint so the console never flashes the wrong theme; one small file read.
        try:
            saved = self.store.setting("theme", None)
        except StoreError:  # an unreadable store: the screens' workers say so, in one sentence
            saved = None
        self.theme = saved if isinstance(saved, str) and saved in self.theme_names else default_theme_name()
        for entry in self.registry.available():
            assert entry.factory is not None
            self.add_mode(entry.slug, partial(entry.factory, self))
        self.set_reactive(SlmtuiApp.active_run, start_run)
        self._update_sub_title()
        self.keymap_path = self.home / KEYMAP_FILE
        self.user_keymap, self._keymap_problem = read_keymap(self.keymap_path)
        self.set_keymap(self.user_keymap)

    @property
    def theme_names(self) -> list[str]:
        """The console's own themes (from `themes/themes.toml`), in order."""
        return [theme.name for theme in load_themes()]

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self._keymap_problem:
            self.notify(self._keymap_problem, severity="warning", timeout=12)
        elif self.user_keymap:
            self._check_keymap_ids(dict(self.user_keymap))
        entry = self.registry.get(self._start_screen) if self._start_screen else None
        if self._start_screen and (entry is None or not entry.available):
            self.notify(f"There is no {self._start_screen!r} screen yet; showing the first one.", severity="warning")
            entry = None
        if entry is None:
            available = self.registry.available()
            entry = available[0] if available else None
        if entry is not None:
            self.action_show_screen(entry.slug)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast is plain text with its control characters visible (`markup` is ignored): toasts quote
        paths, model names, run ids and errors that echo what was typed."""
        super().notify(visible(message), title=visible_line(title), severity=severity, timeout=timeout, markup=False)

    def format_title(self, title: str, sub_title: str) -> Content:
        """The header's title and subtitle (HOME's path, the run id) with their control characters visible."""
        return super().format_title(visible_line(title), visible_line(sub_title))

    def watch_active_run(self) -> None:
        self._update_sub_title()

    def on_resize(self) -> None:
        self._update_sub_title()

    def _update_sub_title(self) -> None:
        """The run on show first (it changes), then HOME's path cut in its middle to the header's width."""
        run = f"run {self.active_run}  ·  " if self.active_run else ""
        room = max(12, (self.size.width or 80) - HEADER_RESERVED_CELLS - len(run) - len("HOME "))
        self.sub_title = f"{run}HOME {shortened_path(_display_path(self.home), room)}"

    # ------------------------------------------------------------------ screens

    @property
    def current_screen_name(self) -> str | None:
        """The registry slug of the screen on show (None before the first one opens)."""
        return self.current_mode if self.current_mode in self._modes else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show_screen" and parameters:
            entry = self.registry.get(str(parameters[0]))
            return entry is not None and entry.available
        return True

    def action_show_screen(self, name: str) -> None:
        """Switch to the screen called `name` (its registry name or slug)."""
        entry = self.registry.get(name)
        if entry is None or not entry.available:
            self.bell()
            return
        if self.current_mode != entry.slug:
            self.switch_mode(entry.slug)

    # ------------------------------------------------------------------ new run

    def open_new_run(self, spec: dict[str, Any] | None = None) -> None:
        """Open the New run editor over the current screen, prefilled with `spec` (a raw spec dict)."""
        from screens.new_run import NewRunScreen

        if isinstance(self.screen, NewRunScreen):
            return
        self.push_screen(NewRunScreen(spec))

    def action_new_run(self) -> None:
        """Open the New run editor with the defaults."""
        self.open_new_run()

    def action_playground(self) -> None:
        """Open the playground on the active run (else the newest trained one) against its base."""
        from engine.paths import runs_dir
        from screens.playground import PlaygroundScreen
        from slmtui.playground import default_pair
        from slmtui.shortlist import models

        runs = runs_dir(self.home, create=False)
        active = str(runs / self.active_run) if self.active_run else None
        pair = default_pair("", active, models(self.store), runs)
        if pair is None:
            self.notify("Train a run, or shortlist two models, to compare answers.", severity="warning")
            return
        self.push_screen(PlaygroundScreen(pair))

    # ------------------------------------------------------------------ keys

    def action_key_help(self) -> None:
        """Open the list of every key of the screen on show (or close it)."""
        from screens.key_help import KeyHelpScreen

        if isinstance(self.screen, KeyHelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(KeyHelpScreen(self.screen_label(self.screen), screen_key_rows(self.screen),
                                       app_key_rows(self)))

    def screen_label(self, screen: Screen[object]) -> str:
        """What to call `screen`: its tab's name, else its title, else its class's name in words."""
        entry = self.registry.get(self.current_screen_name or "")
        if entry is not None and screen is self.screen_stack[0]:
            return entry.name
        return screen.title or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", type(screen).__name__.removesuffix("Screen"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="settings", name="Checking the keymap")
    def _check_keymap_ids(self, keymap: dict[str, str]) -> None:
        problem = unknown_ids(keymap, known_binding_ids())
        if problem:
            self.call_from_thread(self.notify, problem, severity="warning", timeout=12)

    # ------------------------------------------------------------------ themes

    def action_next_theme(self) -> None:
        """Switch to the next of the console's themes (remembered in the store)."""
        self.theme = next_theme_name(self.theme)

    def _theme_changed(self, theme: Theme) -> None:
        if theme.name in self.theme_names:
            self._save_theme(theme.name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="settings", name="Saving the theme")
    def _save_theme(self, name: str) -> None:
        self.store.set_setting("theme", name)

    # ------------------------------------------------------------------ palette and failures

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for entry in self.registry.available():
            yield SystemCommand(
                f"Screen: {entry.name}", f"{entry.description} (key {self._keys_of(f'screen.{entry.slug}')})",
                partial(self.action_show_screen, entry.slug),
            )
        yield SystemCommand("New run", f"Edit a run spec and launch it ({self._keys_of('app.new_run')})",
                            self.action_new_run)
        yield SystemCommand("Playground", "The fine-tuned model and its base answer a prompt side by side "
                            "(p on the Shortlist)", self.action_playground)
        yield SystemCommand("Keys: every key of this screen", "With what each does and its id for keymap.toml "
                            f"({self._keys_of('app.keys')})", self.action_key_help)
        yield from self._key_commands(screen)
        yield SystemCommand("Theme: next", f"Switch to the next colour theme ({self._keys_of('app.theme')})",
                            self.action_next_theme)
        for name in self.theme_names:
            yield SystemCommand(f"Theme: {name}", f"Use the {name} theme", partial(setattr, self, "theme", name))
        for command in super().get_system_commands(screen):
            if command.title != "Theme":  # the built-in picker lists Textual's themes, not ours
                yield command

    def _keys_of(self, binding_id: str) -> str:
        """The keys bound to `binding_id` now, as the footer shows them (the user's keymap applied)."""
        rows = [row for row in app_key_rows(self) if row.binding_id == binding_id]
        return rows[0].keys_text if rows else "no key"

    def _key_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every key of `screen` as a palette command that runs its action, so a key the footer has no room
        for, or one the user forgot, is found by name."""
        from screens.key_help import KeyHelpScreen

        if isinstance(screen, KeyHelpScreen):
            return
        where = self.screen_label(screen)
        for row in screen_key_rows(screen):
            if self._check_action_state(row.action, row.node) is not True:
                continue  # hidden or disabled now: the palette offers what would work
            yield SystemCommand(f"{where}: {row.description}", f"{row.tooltip} (key {row.keys_text})".lstrip(),
                                partial(self.run_action, row.action, row.node))

    def report_worker_failure(self, worker: Worker[object]) -> None:
        """Every failed worker of the console ends here (`ReportsWorkerFailures`): one sentence for the user,
        the traceback in `HOME/logs/console.log`."""
        self.log.error(worker.error)
        self.notify_once(explain_failure(worker, self.home), severity="error", timeout=8)

    def notify_once(self, message: str, *, severity: SeverityLevel = "information", timeout: float = 8) -> None:
        """Notify, unless the same message is still on screen: a poll failing each second shows one toast."""
        now = time.monotonic()
        self._shown_until = {text: until for text, until in self._shown_until.items() if until > now}
        if message in self._shown_until:
            return
        self._shown_until[message] = now + timeout
        self.notify(message, severity=severity, timeout=timeout)
