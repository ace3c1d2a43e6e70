"""`slmtui journal`: add, list and export journal entries from the shell."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from slmtui.cli._common import UserError, plain_console, print_json, say


def register(sub: Any) -> None:
    parser = sub.add_parser("journal", help="the iteration journal", description="The iteration journal.")
    jsub = parser.add_subparsers(dest="journal_command", metavar="ACTION", required=True)

    add = jsub.add_parser("add", help="add an entry and print its id", description="Add a journal entry.")
    add.add_argument("text", help="what happened, what you changed, what you noticed")
    add.add_argument("--kind", default="note",
                     help="note, aha, challenge, breakthrough, hyperparams, data or oom (default: note)")
    add.add_argument("--run", help="the run it is about: a full id, a unique prefix or `last`")
    add.add_argument("--step", type=int, help="the training step it is about")
    add.set_defaults(handler=_add)

    lst = jsub.add_parser("list", help="list entries", description="List journal entries, oldest first.")
    lst.add_argument("--kind", help="only this kind")
    lst.add_argument("--run", help="only entries about this run")
    lst.add_argument("--grep", help="only entries whose text contains this (any case)")
    lst.add_argument("--full", action="store_true",
                     help=f"print every entry whole (default: its first {PREVIEW_LINES} lines)")
    lst.add_argument("--json", action="store_true", help='print {"entries": [...]}')
    lst.set_defaults(handler=_list)

    exp = jsub.add_parser("export", help="export to Markdown", description="Export the journal to Markdown.")
    exp.add_argument("--md", required=True, type=Path, metavar="FILE", help="the Markdown file to write")
    exp.set_defaults(handler=_export)


def _store() -> Any:
    from slmtui.store import Store, StoreError

    try:
        return Store()
    except StoreError as exc:
        raise UserError(str(exc)) from exc


def _resolve_run(run: str | None) -> str | None:
    """A run reference (id, unique prefix, `last`) as a full id; an id with no folder (yet) is kept as typed."""
    if run is None:
        return None
    from slmtui.home import runs_dir
    from slmtui.runs import RunNotFound, resolve_run

    try:
        return resolve_run(run, runs_dir()).name
    except RunNotFound as exc:
        if run == "last" or "matches" in str(exc):
            raise UserError(str(exc)) from exc
        return run


def _add(args: argparse.Namespace) -> int:
    from slmtui.store import StoreError

    try:
        entry = _store().add_entry(args.text, kind=args.kind, run=_resolve_run(args.run), step=args.step)
    except StoreError as exc:
        raise UserError(str(exc)) from exc
    print(entry.id)
    return 0


def _list(args: argparse.Namespace) -> int:
    from slmtui.reconcile import reconcile_home
    from slmtui.store import StoreError

    reconcile_home()  # runs started from anywhere show their data and OOM entries (a store error surfaces below)

    try:
        entries = _store().entries(kind=args.kind, text=args.grep, run=args.run)
    except StoreError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print_json({"entries": [e.to_json() for e in entries]})
        return 0

    console = plain_console()  # entry text is shown, never obeyed (controls visible, no markup)
    if not entries:
        console.print("The journal is empty; add an entry with `slmtui journal add TEXT`.")
    for e in entries:
        for line in entry_heading(e, console.width):
            console.print(line, style="bold", markup=False, highlight=False, overflow="fold")
        for line in entry_lines(e.text, console.width - len(INDENT), None if args.full else PREVIEW_LINES):
            console.print(INDENT + line, markup=False, highlight=False, overflow="fold")
    return 0


#: Lines of an entry's text `journal list` prints without --full (its text wrapped to the terminal).
PREVIEW_LINES = 4
INDENT = "    "


def entry_heading(entry: Any, width: int) -> list[str]:
    """`#3  2026-12-02 03:02  data  run RUN  step 12`, on as many lines of `width` as it takes: a field is never
    split (one wider than the terminal alone on its line)."""
    fields = [f"#{entry.id}", _when(entry.created), entry.kind]
    fields += [f"run {entry.run}"] if entry.run else []
    fields += [f"step {entry.step}"] if entry.step is not None else []
    lines = [fields[0]]
    for field in fields[1:]:
        if len(lines[-1]) + 2 + len(field) <= width:
            lines[-1] += "  " + field
        else:
            lines.append(INDENT + field)
    return lines


def entry_lines(text: str, width: int, limit: int | None) -> list[str]:
    """`text` wrapped to `width` columns; past `limit` lines, the first `limit - 1` and `… N more lines`."""
    import textwrap

    lines = [wrapped for line in text.splitlines() or [""]
             for wrapped in (textwrap.wrap(line, max(width, 20), break_on_hyphens=False) or [""])]
    if limit is None or len(lines) <= limit:
        return lines
    shown = lines[:limit - 1]
    return [*shown, f"… {len(lines) - len(shown)} more lines (--full prints them)"]


def _export(args: argparse.Namespace) -> int:
    from slmtui.journal_export import journal_markdown
    from slmtui.store import StoreError

    try:
        text = journal_markdown(_store())
    except StoreError as exc:
        raise UserError(str(exc)) from exc
    try:
        args.md.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"Cannot write {args.md} ({exc.strerror}); choose a path in a writable folder.") from exc
    say(f"wrote {args.md}", err=True)
    return 0


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")
