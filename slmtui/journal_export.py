"""The journal as Markdown: what `slmtui journal export` and the console's export write."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from slmtui.run_compare import ENV_KEYS, RunRow, build_rows, flatten, read_spec
from slmtui.store import JournalEntry, RunRecord, Store

#: The settings each run's section names (the whole spec stays in its folder's spec.toml).
_KEY_SETTINGS = ("model.name", "method.kind", "method.rank", "method.alpha", "train.lr", "train.schedule",
                 "train.micro_batch", "train.grad_accum", "train.epochs", "train.max_steps", "data.path",
                 "data.max_length", "train.seed")


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


def run_details_markdown(rows: Iterable[RunRow], entries: Iterable[JournalEntry]) -> str:
    """One section per run: its settings, its metrics and environment, and the journal's notes about it."""
    by_run: dict[str, list[JournalEntry]] = {}
    for e in entries:
        if e.run:
            by_run.setdefault(e.run, []).append(e)
    out: list[str] = []
    for row in rows:
        spec = flatten(row.spec)
        out += [f"### `{row.id}` — {row.status}" + (" (archived)" if row.archived else ""), ""]
        settings = ", ".join(f"{key} = {spec[key]!r}" for key in _KEY_SETTINGS if key in spec)
        out.append(f"- settings: {settings or 'spec not readable'}")
        best = row.record.best if row.record else {}
        metrics = [f"final loss {_f4(row.final_loss)}", f"best val loss {_f4(row.best_val_loss)}"
                   + (f" at step {best['val_step']}" if "val_step" in best else "")]
        if row.seconds is not None:
            metrics.append(f"{row.seconds / 60:.1f} min")
        out.append("- metrics: " + ", ".join(metrics))
        env = (row.record.fingerprint.get("env") if row.record else None) or {}
        versions = ", ".join(f"{k} {env.get(k)}" for k in ENV_KEYS if env.get(k))
        out.append(f"- data fingerprint `{row.data_fingerprint or 'none'}`; environment: {versions or 'not reported'}"
                   + ("" if row.comparable else " (**not comparable** with the newest run)"))
        if row.tags:
            out.append("- tags: " + ", ".join(row.tags))
        notes = by_run.get(row.id, [])
        if notes:
            out.append("- notes:")
            out += [f"  - {e.kind}" + (f" at step {e.step}" if e.step is not None else "") + ": "
                    + e.text.strip().replace("\n", " ") for e in notes]
        out.append("")
    return "\n".join(out)


def _f4(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def journal_markdown(store: Store, entries: Iterable[JournalEntry] | None = None) -> str:
    """The whole journal: the runs table, then every entry (or the given ones), oldest first."""
    runs = store.runs()
    parts = ["# slmtui journal", "", f"Exported {_when(dt.datetime.now().timestamp())} from `{store.home}`.", ""]
    from slmtui.evals import gains_markdown, run_gains

    if runs:
        parts += ["## Runs", "", runs_markdown(runs, run_gains(store)), ""]
        rows = build_rows(runs, {r.id: read_spec(Path(r.dir)) for r in runs})
        parts += ["## Run details", "", run_details_markdown(rows, store.entries()), ""]
    compared = gains_markdown(store)
    if compared:
        parts += ["## Base against fine-tuned", "", compared, ""]
    parts += ["## Entries", "", entries_markdown(store.entries() if entries is None else entries)]
    return "\n".join(parts).rstrip() + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a reader never sees half an export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
