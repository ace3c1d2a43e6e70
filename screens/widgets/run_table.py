"""The run table of the journal's Runs view: one row per run, two of them can be marked for a comparison."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from engine.eta import format_duration
from slmtui.run_compare import RunRow

COLUMNS = (("", 2), ("Run", 24), ("Status", 9), ("Method", 6), ("Rank", 4), ("LR", 7), ("Batch", 5),
           ("Len", 5), ("Final", 7), ("Best val", 8), ("Time", 7), ("Data fp", 8), ("Env", 4), ("Tags", 12))
#: Which columns a narrow table keeps, most needed first (the rest are in the facts under the table).
KEPT_FIRST = ("", "Run", "Status", "Final", "Best val", "Env", "Method", "Time", "Tags", "Rank", "LR", "Batch",
              "Len", "Data fp")
CELL_PADDING = 2


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def columns_for(width: int) -> tuple[str, ...]:
    """The columns that fit in `width` cells, in table order; the mark, Run and Status always."""
    widths = dict(COLUMNS)
    kept: set[str] = set()
    used = 0
    for label in KEPT_FIRST:
        used += widths[label] + CELL_PADDING
        if used > width and len(kept) >= 3:
            break
        kept.add(label)
    return tuple(label for label, _ in COLUMNS if label in kept)


def row_cells(row: RunRow, marked: bool) -> tuple[Text, ...]:
    """The table cells of one run, one per entry of COLUMNS."""
    status_style = {"running": "bold", "failed": "bold", "oom": "bold", "crashed": "bold"}.get(row.status, "")
    return (
        Text("●" if marked else ""),
        Text(row.id, no_wrap=True, overflow="ellipsis", style="dim" if row.archived else ""),
        Text(row.status, style=status_style),
        Text(row.method),
        Text("" if row.rank is None else str(row.rank), justify="right"),
        Text(_num(row.lr, ".0e"), justify="right"),
        Text(row.batch, justify="right"),
        Text("" if row.max_length is None else str(row.max_length), justify="right"),
        Text(_num(row.final_loss, ".4f"), justify="right"),
        Text(_num(row.best_val_loss, ".4f"), justify="right"),
        Text(format_duration(row.seconds), justify="right"),
        Text(row.data_fingerprint[:8]),
        Text("ok" if row.comparable else "≠", style="" if row.comparable else "bold reverse"),
        Text(" ".join(row.tags), no_wrap=True, overflow="ellipsis"),
    )


class RunTable(DataTable[Text]):
    """Shows `runs`; `marked` holds the ids of up to two runs picked for a diff or an overlay."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First", show=False, id="runs.first"),
        Binding("end", "scroll_bottom", "Last", show=False, id="runs.last"),
    ]

    runs: reactive[tuple[RunRow, ...]] = reactive(tuple, always_update=True)
    """The runs to show, newest first (set by the panel)."""
    marked: reactive[tuple[str, ...]] = reactive(tuple)
    """Ids of the marked runs, oldest mark first (at most two)."""

    @dataclass
    class RunHighlighted(Message):
        """The cursor moved to a run (None when the table is empty)."""

        row: RunRow | None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._by_id: dict[str, RunRow] = {}
        self._shown: tuple[str, ...] = ()

    def on_resize(self) -> None:
        if columns_for(self.size.width) != self._shown:
            self.watch_runs(self.runs)

    @property
    def current_row(self) -> RunRow | None:
        """The run under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self._by_id.get(key or "")

    def watch_runs(self, rows: Sequence[RunRow]) -> None:
        current = self.current_row
        self._by_id = {row.id: row for row in rows}
        shown = columns_for(self.size.width or 200)
        self.clear(columns=shown != self._shown)
        if shown != self._shown:
            self._shown = shown
            for label, width in COLUMNS:
                if label in shown:
                    self.add_column(label, width=width, key=label.lower() or "mark")
        positions = [i for i, (label, _) in enumerate(COLUMNS) if label in shown]
        for row in rows:
            cells = row_cells(row, row.id in self.marked)
            self.add_row(*(cells[i] for i in positions), key=row.id)
        if current is not None and current.id in self._by_id:
            self.move_cursor(row=self.get_row_index(current.id))
        self.post_message(self.RunHighlighted(self.current_row))

    def watch_marked(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        for run_id in set(old) ^ set(new):
            if run_id in self._by_id:
                self.update_cell(run_id, "mark", Text("●" if run_id in new else ""))

    def toggle_mark(self) -> None:
        """Mark the run under the cursor, or unmark it; a third mark drops the oldest."""
        row = self.current_row
        if row is None:
            return
        if row.id in self.marked:
            self.marked = tuple(m for m in self.marked if m != row.id)
        else:
            self.marked = (*self.marked, row.id)[-2:]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value if event.row_key is not None else None  # None: a key moved over an empty table
        self.post_message(self.RunHighlighted(self._by_id.get(key or "")))


def run_facts(row: RunRow | None) -> str:
    """A few lines about one run for the panel beside its entries."""
    if row is None:
        return "No run. Runs started from the console or with `slmtui train` show up here."
    facts = [f"{row.id}  ({row.status})", f"model {row.model or '?'}  ·  {row.method}"
             + (f" r={row.rank}" if row.rank else "")]
    imported = row.spec.get("imported")
    if isinstance(imported, dict):
        facts[1] = f"trained elsewhere: {imported.get('format')} at {imported.get('path')}"
    facts.append(f"lr {_num(row.lr, '.1e') or '?'}  ·  batch {row.batch or '?'}  ·  max length {row.max_length or '?'}")
    facts.append(f"final loss {_num(row.final_loss, '.4f') or '–'}  ·  best val {_num(row.best_val_loss, '.4f') or '–'}"
                 f"  ·  {format_duration(row.seconds) or '–'}")
    facts.append(f"data fingerprint {row.data_fingerprint[:16] or '–'}")
    if not row.comparable:
        facts.append("Different environment from the newest run: not comparable (see the diff).")
    if row.tags or row.archived:
        facts.append(" ".join([*(f"#{t}" for t in row.tags), "(archived)" if row.archived else ""]).strip())
    return "\n".join(facts)
