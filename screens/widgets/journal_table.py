"""The journal's table (entries newest first, shown a page at a time) and the highlighted entry's text."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from engine.safe_text import visible, visible_line
from slmtui.store import JournalEntry

PAGE_ROWS = 50
"""Rows put in the table at a time: a DataTable row costs ~0.4 ms to add, measure and paint, so a keystroke in the
filter never waits on 10,000 of them; the next page is added when the cursor or the scroll reaches the end."""

_TEXT_WIDTH = 40
_FIXED_WIDTHS = (11, 12, 22, 6)


def format_time(created: float, year: bool = True) -> str:
    """An entry's time (local, to the minute); the table leaves the year out, the detail pane shows it."""
    return time.strftime("%Y-%m-%d %H:%M" if year else "%m-%d %H:%M", time.localtime(created))


def first_line(text: str, width: int = _TEXT_WIDTH) -> str:
    """The text's first line, shortened to `width` with an ellipsis when anything is cut."""
    line, _, rest = text.strip().partition("\n")
    if len(line) > width or (rest.strip() and len(line) >= width):
        return line[: width - 1] + "…"
    return line + (" …" if rest.strip() else "")


class JournalTable(DataTable[Text]):
    """Shows `matches` (entries, newest first), the first `limit` of them; posts which entry is highlighted."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # A row table has no columns to scroll sideways: home and end go to the first and last rows.
        Binding("home", "scroll_top", "First", show=False, id="journal.first"),
        Binding("end", "scroll_bottom", "Last", show=False, id="journal.last"),
    ]

    matches: reactive[tuple[JournalEntry, ...]] = reactive(tuple, always_update=True)
    """The entries to show, in order (set by the screen, through `data_bind`)."""
    limit: reactive[int] = reactive(PAGE_ROWS)
    """How many of `matches` are in the table (the rest arrive a page at a time)."""

    @dataclass
    class EntryHighlighted(Message):
        """The cursor moved to an entry (None when the table is empty)."""

        entry: JournalEntry | None

    @dataclass
    class EntryChosen(Message):
        """Enter or a click on an entry's row."""

        entry: JournalEntry

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._by_key: dict[str, JournalEntry] = {}
        self._shown = 0
        self._text_width = _TEXT_WIDTH
        self._add_columns()

    def _add_columns(self) -> None:
        for label, width in zip(("Time", "Kind", "Run", "Step"), _FIXED_WIDTHS, strict=True):
            self.add_column(label, width=width, key=label.lower())
        self.add_column("Text", width=self._text_width, key="text")

    def on_resize(self) -> None:
        # The text column takes the room the fixed columns leave (DataTable has no flexible column).
        room = self.size.width - self.styles.scrollbar_size_vertical - sum(_FIXED_WIDTHS) - 2 * self.cell_padding * 5
        width = max(20, room)
        if width != self._text_width:
            self._text_width = width
            current = self.current_entry
            shown = self._shown
            self.clear(columns=True)
            self._add_columns()
            self._by_key = {}
            self._shown = 0
            self._add_rows(self.matches, max(shown, min(len(self.matches), PAGE_ROWS)))
            if current is not None:
                self.select_entry(current.id)

    @property
    def shown(self) -> int:
        """How many entries the table holds now."""
        return self._shown

    @property
    def current_entry(self) -> JournalEntry | None:
        """The entry under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self._by_key.get(key or "")

    def watch_matches(self, old: Sequence[JournalEntry], new: Sequence[JournalEntry]) -> None:
        if old == new and self._shown:  # e.g. a keystroke that leaves the same entries: nothing to redraw
            return
        current = self.current_entry
        self._by_key = {}
        self._shown = 0
        self.clear()
        self._add_rows(new, min(len(new), max(self.limit, PAGE_ROWS)))
        if current is not None:
            self.select_entry(current.id)
        self.post_message(self.EntryHighlighted(self.current_entry))

    def watch_limit(self, limit: int) -> None:
        if limit > self._shown:
            self._add_rows(self.matches, min(limit, len(self.matches)))

    def _add_rows(self, entries: Sequence[JournalEntry], upto: int) -> None:
        for entry in entries[self._shown : upto]:
            self._by_key[str(entry.id)] = entry
            self.add_row(
                Text(format_time(entry.created, year=False)),
                Text(visible_line(entry.kind), style="bold"),
                Text(visible_line(entry.run or ""), overflow="ellipsis", no_wrap=True),
                Text("" if entry.step is None else str(entry.step), justify="right"),
                Text(visible_line(first_line(entry.text, 200)), no_wrap=True, overflow="ellipsis"),
                key=str(entry.id),
            )
        self._shown = upto

    def _extend(self) -> None:
        if self._shown < len(self.matches):
            self.limit = self._shown + PAGE_ROWS

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value > old_value and 0 < self.max_scroll_y <= new_value:  # scrolled (mouse) to the bottom
            self._extend()

    def select_entry(self, entry_id: int) -> bool:
        """Move the cursor to the entry's row if the table shows it; returns whether it did."""
        key = str(entry_id)
        if key not in self._by_key:
            return False
        self.move_cursor(row=self.get_row_index(key))
        return True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value if event.row_key is not None else None  # None: a key moved over an empty table
        self.post_message(self.EntryHighlighted(self._by_key.get(key or "")))
        if event.cursor_row >= self._shown - 1:
            self._extend()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value if event.row_key is not None else None
        entry = self._by_key.get(key or "")
        if entry is not None:
            self.post_message(self.EntryChosen(entry))


class EntryDetail(Static):
    """The whole text of one entry, under the table."""

    entry: reactive[JournalEntry | None] = reactive(None)
    """The entry to show (bound to the screen's highlighted entry)."""

    def watch_entry(self, entry: JournalEntry | None) -> None:
        if entry is None:
            self.update("No entry selected. Press a to add one.")
            return
        where = " · ".join(
            part for part in (
                format_time(entry.created), entry.kind,
                f"run {entry.run}" if entry.run else "", f"step {entry.step}" if entry.step is not None else "",
                "edited" if entry.updated else "",
            ) if part
        )
        self.update(Text.assemble((visible_line(where), "bold"), "\n", visible(entry.text)))
