"""The screen registry: every screen's name, key and factory, in tab order.

The shell shows every name as a tab from the start; a screen becomes usable once it has a factory. A new
screen adds itself with a loader below (a function that imports its class: the import runs when the screen
is first opened, so the console's first paint never pays for screens the user has not opened yet, and
import-linter still sees it) and an entry in `default_registry`, or at run time with `ScreenRegistry.register`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.screen import Screen

    from slmtui.ui.shell import ShellScreen

ScreenFactory = Callable[[Any], "Screen[Any]"]
"""Builds a screen for the app hosting it (a `slmtui.ui.shell.ShellHost`)."""


def lazy_screen(load: Callable[[], type[ShellScreen]]) -> ScreenFactory:
    """A factory that calls `load` (which imports the screen's class) only when the screen is first opened and
    builds the screen with the class's `for_host(app)` (see `ShellScreen.for_host`)."""

    def factory(host: Any) -> Screen[Any]:
        return load().for_host(host)

    return factory


@dataclass(frozen=True)
class ScreenEntry:
    """One screen of the console: its tab name, its key, and how to build it (None: not built yet)."""

    name: str
    key: str
    description: str
    factory: ScreenFactory | None = None

    @property
    def slug(self) -> str:
        """The id used for modes, tab ids and actions (`show_screen('journal')`)."""
        return self.name.lower()

    @property
    def available(self) -> bool:
        """Whether the screen exists yet (its tab is enabled and its key works)."""
        return self.factory is not None


class ScreenRegistry:
    """The ordered set of screens the shell offers."""

    def __init__(self, entries: list[ScreenEntry]) -> None:
        self._entries = list(entries)

    def __iter__(self) -> Iterator[ScreenEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> ScreenEntry | None:
        """The entry named `name` (case-insensitive), or None."""
        slug = name.strip().lower()
        return next((entry for entry in self._entries if entry.slug == slug), None)

    def available(self) -> list[ScreenEntry]:
        """The screens that can be opened, in tab order."""
        return [entry for entry in self._entries if entry.available]

    def register(self, name: str, key: str, factory: ScreenFactory, description: str = "") -> ScreenEntry:
        """Give a screen its factory (adding it at the end if its name is new); returns the entry."""
        existing = self.get(name)
        if existing is None:
            entry = ScreenEntry(name=name, key=key, description=description or name, factory=factory)
            self._entries.append(entry)
        else:
            entry = replace(existing, key=key, factory=factory, description=description or existing.description)
            self._entries[self._entries.index(existing)] = entry
        return entry


def _checklist() -> type[ShellScreen]:
    from screens.checklist import ChecklistScreen

    return ChecklistScreen


def _shortlist() -> type[ShellScreen]:
    from screens.shortlist import ShortlistScreen

    return ShortlistScreen


def _data() -> type[ShellScreen]:
    from screens.data import DataScreen

    return DataScreen


def _gpus() -> type[ShellScreen]:
    from screens.gpus import GpusScreen

    return GpusScreen


def _monitor() -> type[ShellScreen]:
    from screens.monitor import MonitorScreen

    return MonitorScreen


def _journal() -> type[ShellScreen]:
    from screens.journal import JournalScreen

    return JournalScreen


def default_registry() -> ScreenRegistry:
    """The console's screens in tab order; each later screen fills in its factory here."""
    return ScreenRegistry(
        [
            ScreenEntry("Checklist", "1", "Decide whether to fine-tune at all", lazy_screen(_checklist)),
            ScreenEntry("Shortlist", "2", "Base models to try on your data", lazy_screen(_shortlist)),
            ScreenEntry("Data", "3", "Check, map and scrub the dataset", lazy_screen(_data)),
            ScreenEntry("GPUs", "4", "GPU inventory and what fits", lazy_screen(_gpus)),
            ScreenEntry("Monitor", "5", "Watch a run train", lazy_screen(_monitor)),
            ScreenEntry("Journal", "6", "The iteration journal: notes, ahas and setbacks", lazy_screen(_journal)),
        ]
    )
