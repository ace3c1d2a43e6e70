"""A footer that never cuts a key: at any width it shows the keys that fit whole, most important first.

Textual's `Footer` lays every shown binding in one row and clips the row at the window's edge, so at 80
columns the last key reads `^t Th▏`. `FittingFooter` measures each key and keeps those that fit: the key-help
key first (it lists every key, shown or not), then the focused widget's keys, the screen's, and the app's
last, in the binding chain's order. The keys it leaves out stay bound, and are on the key-help screen and in
the command palette.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: The action of the key that lists every key (the app's `?`/`f1`); shown whenever anything is.
KEY_HELP_ACTION = "app.key_help"
#: Cells around a key's label: a space each side of the key and one after the description.
KEY_PADDING = 3
#: The command palette key takes its own padding, plus a border on its left and a space on its right.
PALETTE_EXTRA = 2


class FooterItem(NamedTuple):
    """One key the footer may show."""

    binding: Binding
    key_display: str
    enabled: bool
    tooltip: str

    @property
    def width(self) -> int:
        """The cells it takes in the footer."""
        return cell_len(self.key_display) + cell_len(self.binding.description) + KEY_PADDING


def fit_items(items: list[FooterItem], width: int) -> list[FooterItem]:
    """The items that fit in `width` cells, chosen by importance (the key-help key, then `items`' order) and
    shown in `items`' order with the key-help key last; an item too wide is skipped, a narrower one after it
    may still fit."""
    ranked = sorted(range(len(items)), key=lambda i: (not _is_key_help(items[i].binding), i))
    chosen: set[int] = set()
    used = 0
    for index in ranked:
        if used + items[index].width <= width:
            chosen.add(index)
            used += items[index].width
    shown = [item for index, item in enumerate(items) if index in chosen]
    return sorted(shown, key=lambda item: _is_key_help(item.binding))  # the key-help key last, by the palette


def _declared_index(node: DOMNode, binding: Binding) -> int:
    """Where `node` declares `binding` (by id, so a rebound key keeps its place), else after the others."""
    for index, (_key, declared) in enumerate(node._bindings):
        if declared is binding or (binding.id is not None and declared.id == binding.id):
            return index
    return 1 << 16


def _is_key_help(binding: Binding) -> bool:
    return binding.action in (KEY_HELP_ACTION, KEY_HELP_ACTION.removeprefix("app."))


class FittingFooter(Footer):
    """The console's footer: the screen's keys that fit, the command palette key on the right."""

    _fitted_width: int = 0

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self._fitted_width = self._width()
        active = self.screen.active_bindings
        palette = self._palette_item(active)
        available = self._fitted_width - (palette.width + PALETTE_EXTRA if palette else 0)
        for item in fit_items(self._items(active.values()), available):
            yield FooterKey(item.binding.key, item.key_display, item.binding.description, item.binding.action,
                            disabled=not item.enabled, tooltip=item.tooltip).data_bind(compact=Footer.compact)
        if palette is not None:
            yield FooterKey(palette.binding.key, palette.key_display, palette.binding.description,
                            palette.binding.action, classes="-command-palette", disabled=not palette.enabled,
                            tooltip=palette.binding.tooltip or palette.binding.description)

    def _items(self, active: Iterable[tuple[DOMNode, Binding, bool, str]]) -> list[FooterItem]:
        seen_actions: set[str] = set()
        ranked: list[tuple[tuple[int, int], FooterItem]] = []
        namespaces: dict[int, int] = {}
        for node, binding, enabled, tooltip in active:
            if not binding.show or binding.action in seen_actions:
                continue  # one key per action, as Textual's footer does
            seen_actions.add(binding.action)
            rank = (namespaces.setdefault(id(node), len(namespaces)), _declared_index(node, binding))
            ranked.append((rank, FooterItem(binding, self.app.get_key_display(binding), enabled,
                                            tooltip or binding.tooltip)))
        # A keymap moves a rebound key to the end of its node's bindings: put it back in its declared place.
        return [item for _rank, item in sorted(ranked, key=lambda pair: pair[0])]

    def _palette_item(self, active: Mapping[str, tuple[object, Binding, bool, str]]) -> FooterItem | None:
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE):
            return None
        for _node, binding, enabled, tooltip in active.values():  # by action: a keymap may have moved it
            if binding.action in ("command_palette", "app.command_palette"):
                return FooterItem(binding, self.app.get_key_display(binding), enabled, tooltip)
        return None

    def _width(self) -> int:
        # Docked across the whole screen: before the first layout its own size is still 0.
        return self.size.width or self.screen.size.width or self.app.size.width

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._fitted_width and self._bindings_ready:
            self.call_after_refresh(self.recompose)
