"""The journal as Markdown: what `slmtui journal export` and the console's export write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from slmtui.store import JournalEntry, RunRecord, Store


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def entries_markdown(entries: Iterable[JournalEntry]) -> str:
    """The entries section: one heading line per entry, its text below."""
    lines: list[str] = []
    for e in entries:
        where = " · ".join(x for x in (f"run `{e.run}`" if e.run else "", f"step {e.step}" if e.step is not None else "") if x)
        lines.append(f"### {_when(e.created)} — {e.kind}" + (f" ({where})" if where else ""))
        lines.append("")
        lines.append(e.text.rstrip())
        lines.append("")
    return "\n".join(lines)


def runs_markdown(runs: Iterable[RunRecord], gains: Mapping[str, dict[str, Any]] | None = None) -> str:
    """The runs table: status, method, model, best and final metrics, and the gain over the base model when
    the run was evaluated against it (`gains`: `slmtui.evals.run_gains`)."""
    from slmtui.evals import describe_gain

    gains = gains or {}
    rows = ["| run | status | model | method | final loss | best val loss | gain over base |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        final = r.latest.get("loss")
        best = r.best.get("val_loss")
        gain = describe_gain(gains[r.id]) if r.id in gains else ""
        rows.append(
            f"| `{r.id}` | {r.status} | {r.model} | {r.method} | "
            f"{'' if final is None else f'{final:.4f}'} | {'' if best is None else f'{best:.4f}'} | {gain} |"
        )
    return "\n".join(rows)


def journal_markdown(store: Store, entries: Iterable[JournalEntry] | None = None) -> str:
    """The whole journal: the runs table, then every entry (or the given ones), oldest first."""
    runs = store.runs()
    parts = ["# slmtui journal", "", f"Exported {_when(dt.datetime.now().timestamp())} from `{store.home}`.", ""]
    from slmtui.evals import gains_markdown, run_gains

    if runs:
        parts += ["## Runs", "", runs_markdown(runs, run_gains(store)), ""]
    compared = gains_markdown(store)
    if compared:
        parts += ["## Base against fine-tuned", "", compared, ""]
    parts += ["## Entries", "", entries_markdown(store.entries() if entries is None else entries)]
    return "\n".join(parts).rstrip() + "\n"
