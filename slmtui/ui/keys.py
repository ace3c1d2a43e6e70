"""Every key of a screen and of the app, as the user's keymap has them: for the key-help screen and the palette.

The footer shows the keys that fit; these rows are all of them. A row is one binding id (the name a
`keymap.toml` line uses), with every key now bound to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.binding import Binding

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode
    from textual.screen import Screen


@dataclass
class KeyRow:
    """One binding: its keys (as shown in the footer), what it does, and where it runs."""

    binding_id: str
    description: str
    tooltip: str
    action: str
    node: DOMNode
    keys: list[str] = field(default_factory=list)

    @property
    def keys_text(self) -> str:
        """The keys, e.g. `d delete`."""
        return " ".join(self.keys)


def _rows(app: App[Any], nodes: list[DOMNode]) -> list[KeyRow]:
    rows: dict[str, KeyRow] = {}
    for node in nodes:
        bindings = node._bindings.copy()
        if app._keymap:
            bindings.apply_keymap(app._keymap)
        for _key, binding in bindings:
            if not isinstance(binding, Binding) or binding.id is None:
                continue  # Textual's own editing and cursor keys have no id; they are not ours to list
            row = rows.get(binding.id)
            if row is None:
                row = rows[binding.id] = KeyRow(binding.id, binding.description or binding.action,
                                                binding.tooltip, binding.action, node)
            shown = app.get_key_display(binding)
            if shown not in row.keys:
                row.keys.append(shown)
    return list(rows.values())


def screen_key_rows(screen: Screen[Any]) -> list[KeyRow]:
    """The keys of `screen` and of every widget on it (not the app's), in the order they are declared."""
    return _rows(screen.app, [screen, *screen.walk_children()])


def app_key_rows(app: App[Any]) -> list[KeyRow]:
    """The app's own keys, which work on every screen."""
    return _rows(app, [app])
