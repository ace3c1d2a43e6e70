"""The screen registry: every screen's name, key and factory, in tab order.

The shell shows every name as a tab from the start; a screen becomes usable once it has a factory. A new
screen adds itself by giving its entry a `target` ("module:Class") in `default_registry` (imported lazily,
so the console's first paint never pays for screens the user has not opened yet), or at run time with
`ScreenRegistry.register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.screen import Screen

ScreenFactory = Callable[[Any], "Screen[Any]"]
"""Builds a screen for the app hosting it (a `slmtui.ui.shell.ShellHost`)."""


def lazy_screen(target: str) -> ScreenFactory:
    """A factory that imports `"package.module:ClassName"` only when the screen is first opened and builds it
    with the class's `for_host(app)` (see `ShellScreen.for_host`), or with no arguments."""
    module_name, _, class_name = target.partition(":")

    def factory(host: Any) -> Screen[Any]:
        screen_class = getattr(importlib.import_module(module_name), class_name)
        build = getattr(screen_class, "for_host", None)
        return build(host) if build is not None else screen_class()

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


def default_registry() -> ScreenRegistry:
    """The console's screens in tab order; each later screen fills in its factory here."""
    return ScreenRegistry(
        [
            ScreenEntry(
                "Checklist", "1", "Decide whether to fine-tune at all",
                lazy_screen("screens.checklist:ChecklistScreen"),
            ),
            ScreenEntry(
                "Shortlist", "2", "Base models to try on your data",
                lazy_screen("screens.shortlist:ShortlistScreen"),
            ),
            ScreenEntry("Data", "3", "Check, map and scrub the dataset", lazy_screen("screens.data:DataScreen")),
            ScreenEntry("GPUs", "4", "GPU inventory and what fits", lazy_screen("screens.gpus:GpusScreen")),
            ScreenEntry("Monitor", "5", "Watch a run train", lazy_screen("screens.monitor:MonitorScreen")),
            ScreenEntry(
                "Journal", "6", "The iteration journal: notes, ahas and setbacks",
                lazy_screen("screens.journal:JournalScreen"),
            ),
        ]
    )
