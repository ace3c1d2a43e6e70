"""The frame every screen shares: header (HOME, active run), the screen tabs, the body, the footer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from textual.app import ComposeResult
from textual.containers import Container
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widgets import Header, Tab, Tabs

from slmtui.ui.footer import FittingFooter
from slmtui.ui.workers import ReportsWorkerFailures, WorkerFailureReporter

if TYPE_CHECKING:
    from slmtui.store import Store
    from slmtui.ui.registry import ScreenRegistry


class ShellHost(WorkerFailureReporter, Protocol):
    """What a screen may ask of the app it runs in (and `report_worker_failure`)."""

    home: Path
    store: Store
    registry: ScreenRegistry
    active_run: str | None

    def action_show_screen(self, name: str) -> None: ...

    def open_new_run(self, spec: dict[str, Any] | None = None) -> None: ...


class NavTabs(Tabs):
    """One tab per registered screen, labelled with its key; screens not built yet are disabled."""

    def __init__(self, registry: ScreenRegistry, active: str) -> None:
        tabs = [
            Tab(f"{entry.key} {entry.name}", id=f"tab-{entry.slug}", disabled=not entry.available)
            for entry in registry
        ]
        super().__init__(*tabs, active=f"tab-{active}")
        for tab, entry in zip(tabs, registry, strict=True):
            tab.tooltip = f"{entry.description} (key {entry.key})"
        self.can_focus = False  # the number keys and the mouse switch screens; Tab moves between fields


class ShellBody(Container):
    """The screen's own part; mounted just after the shell's first paint (see `ShellScreen.compose`)."""

    def on_mount(self) -> None:
        screen = self.screen
        if isinstance(screen, ShellScreen):
            screen.on_body_mounted()


class ShellScreen(ReportsWorkerFailures, Screen[None]):
    """Base class of the console's screens: subclasses set `SCREEN_NAME` and implement `compose_body`."""

    SCREEN_NAME: ClassVar[str] = ""
    """The registry name of this screen (e.g. "Journal"); its tab is shown as active."""
    LAZY_BODY: ClassVar[bool] = True
    """Mount the body after the shell's first paint (False for a screen whose `on_mount` needs its widgets)."""

    _store: Store | None = None

    @classmethod
    def for_host(cls, host: ShellHost) -> ShellScreen:
        """Build the screen for the console `host` (the registry's factories call this)."""
        return cls()

    @property
    def host(self) -> ShellHost:
        """The app, seen through the interface screens may use."""
        return cast(ShellHost, self.app)

    @property
    def store(self) -> Store:
        """The store (call it from workers: every call is a file transaction); the app's unless one was set."""
        return self._store if self._store is not None else self.host.store

    @store.setter
    def store(self, store: Store) -> None:
        self._store = store

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield NavTabs(self.host.registry, self.SCREEN_NAME.lower())
        body = ShellBody(classes="shell-body")
        # Lazy: the header, tabs and footer paint first; the body (the costly part) follows a frame later.
        with Lazy(body) if self.LAZY_BODY else body:
            yield from self.compose_body()
        yield FittingFooter()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the tabs and the footer."""
        yield from ()

    def on_body_mounted(self) -> None:
        """Called once the body's widgets are mounted (query them from here on, not in `on_mount`)."""

    def on_screen_resume(self) -> None:
        # A click on another tab left it highlighted here; coming back, this screen's tab is the active one.
        tabs = self.query(NavTabs)
        if tabs:
            tabs.first().active = f"tab-{self.SCREEN_NAME.lower()}"

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if not isinstance(event.tabs, NavTabs) or event.tab.id is None:
            return
        slug = event.tab.id.removeprefix("tab-")
        if slug != self.SCREEN_NAME.lower():
            self.host.action_show_screen(slug)
