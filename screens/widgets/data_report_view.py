"""The data report on screen: key numbers, personal data by type, label balance, the token-length histogram,
invalid rows with their reasons, and formatted rows with the loss mask visible.

Everything in the report can come from the dataset (rows, labels, column names, the path): it is shown as
plain text with its control characters made visible (engine/safe_text.py), never as markup."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from engine.safe_text import visible_tree
from slmtui.data_report import Bar, count_bars, length_bars, summary_lines
from slmtui.scrub_report import replaced_lines, scrub_warning

TABS = ("overview", "lengths", "invalid", "preview")


class BarChart(Widget):
    """Labelled horizontal bars scaled to the widget's width; bars marked `over` use the warning style."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"bar-chart--bar", "bar-chart--over", "bar-chart--title"}
    DEFAULT_CSS = """
    BarChart { height: auto; }
    BarChart > .bar-chart--bar { color: $primary; }
    BarChart > .bar-chart--over { color: $warning; }
    BarChart > .bar-chart--title { text-style: bold; }
    """

    bars: reactive[tuple[Bar, ...]] = reactive(tuple, layout=True)
    """The bars, in display order."""

    def __init__(self, title: str, empty: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.empty = empty

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self._title_lines(width)) + max(1, len(self.bars))

    def _title_lines(self, width: int) -> list[str]:
        """The title, wrapped at word boundaries to `width` (never cut)."""
        return textwrap.wrap(self.title, max(2, width)) or [""]

    def render(self) -> Text:
        title = "\n".join(self._title_lines(self.size.width))
        out = Text(title + "\n", style=self.get_component_rich_style("bar-chart--title"), no_wrap=True)
        if not self.bars:
            return out + Text(self.empty)
        label_w = max(len(b.label) for b in self.bars)
        count_w = max(len(f"{b.count:,}") for b in self.bars)
        room = max(4, self.size.width - label_w - count_w - 3)
        top = max(b.count for b in self.bars) or 1
        bar_style = self.get_component_rich_style("bar-chart--bar")
        over_style = self.get_component_rich_style("bar-chart--over")
        for i, bar in enumerate(self.bars):
            out.append(f"{bar.label:>{label_w}} ")
            length = bar.count / top * room
            out.append("█" * int(length) + ("▌" if length - int(length) >= 0.5 else ""),
                       over_style if bar.over else bar_style)
            out.append(f" {bar.count:,}" + ("\n" if i < len(self.bars) - 1 else ""))
        return out


def preview_content(preview: Sequence[dict[str, Any]]) -> Content:
    """Formatted, scrubbed rows; the text the loss is computed on (trained) stands out from the masked prompt."""
    if not preview:
        return Content("No rows to preview.")
    parts: list[Content | tuple[str, str] | str] = [
        ("Trained (in the loss)", "bold $success underline"), "   ", ("masked (prompt, template)", "$text-muted"),
        "\n",
    ]
    for row in preview:
        label = f" · label {row['label']}" if row.get("label") else ""
        parts.append((f"\n── line {row.get('line', '?')}{label} ──\n", "bold"))
        for segment in row.get("segments") or []:
            text = str(segment.get("text", ""))
            parts.append((text, "bold $success underline") if segment.get("trained") else (text, "$text-muted"))
        parts.append("\n")
    return Content.assemble(*parts)


class DataReportView(Vertical):
    """The report in four tabs; `report` None shows what to do instead."""

    report: reactive[dict[str, Any] | None] = reactive(None, init=False, always_update=True)
    """The engine's data-check report (JSON)."""

    def compose(self) -> ComposeResult:
        with TabbedContent(id="report-tabs", initial="overview"):
            with TabPane("Overview", id="overview"), Horizontal(id="report-overview"):
                with VerticalScroll(id="report-summary-scroll"):
                    yield Static("Press ctrl+r to check the dataset.", id="report-summary")
                with VerticalScroll(id="report-counts").set_styles("display: none;"):
                    yield BarChart("Personal data found (scrubbed)", "none", id="report-pii")
                    yield Static("", id="report-replaced", markup=False)
                    yield BarChart("Label balance", "no label column", id="report-labels")
            with TabPane("Lengths", id="lengths"), VerticalScroll():
                yield BarChart("Tokens per row", "no rows", id="report-lengths")
            with TabPane("Invalid rows", id="invalid"):
                yield Static("", id="report-invalid-note")
                table: DataTable[Text] = DataTable(id="report-invalid", cursor_type="row", zebra_stripes=True)
                table.add_column("line", width=8, key="line")
                table.add_column("reason", key="reason")
                yield table
            with TabPane("Preview", id="preview"), VerticalScroll(id="report-preview-scroll"):
                yield Static("", id="report-preview")

    def watch_report(self, raw: dict[str, Any] | None) -> None:
        if raw is None:
            return
        report = visible_tree(raw)
        self.query_one("#report-summary", Static).update(summary_grid(report))
        self.query_one("#report-counts").display = True
        self.query_one("#report-pii", BarChart).bars = tuple(count_bars(report.get("pii")))
        replaced = replaced_lines(report)
        self.query_one("#report-replaced", Static).update(
            "Replaced most often (masked):\n" + "\n".join(replaced) if replaced else "")
        self.query_one("#report-labels", BarChart).bars = tuple(count_bars(report.get("label_balance")))
        lengths = self.query_one("#report-lengths", BarChart)
        lengths.title = f"Tokens per row (max length {report.get('max_length')}; over it in the warning colour)"
        lengths.bars = tuple(length_bars(report))
        invalid = [r for r in report.get("invalid_rows") or [] if isinstance(r, dict)]
        total = int(report.get("invalid_rows_total") or len(invalid))
        table = self.query_one("#report-invalid", DataTable)
        table.clear()
        for row in invalid:
            table.add_row(Text(str(row.get("line", "?"))), Text(str(row.get("reason", ""))))
        shown = f" (the first {len(invalid)} listed)" if total > len(invalid) else ""
        note = f"{total:,} invalid row{'s' if total != 1 else ''}{shown}; the policy is to {report.get('invalid_policy', 'skip')} them."
        self.query_one("#report-invalid-note", Static).update(Content(note) if total else "No invalid rows.")
        self.query_one("#report-preview", Static).update(preview_content(report.get("preview") or []))

    def next_tab(self) -> None:
        """Show the next part of the report."""
        tabs = self.query_one(TabbedContent)
        tabs.active = TABS[(TABS.index(tabs.active) + 1) % len(TABS)] if tabs.active in TABS else TABS[0]


def summary_grid(report: dict[str, Any]) -> RenderableType:
    """The key numbers as an aligned two-column grid (a long value wraps inside its column), with the scrub
    warning first, where even a small window shows it, and the tokenizer's note last."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in summary_lines(report):
        grid.add_row(name, Text(value))
    parts: list[RenderableType] = []
    if scrub_warning(report):
        parts.append(Text(f"Warning: {scrub_warning(report)}\n", style="bold"))
    parts.append(grid)
    tokenizer = report.get("tokenizer") or {}
    if tokenizer.get("note"):
        parts.append(Text(f"\nNote: {tokenizer['note']}.", style="italic"))
    return Group(*parts)
