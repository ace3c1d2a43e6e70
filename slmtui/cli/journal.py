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
    from rich.table import Table

    table = Table("id", "when", "kind", "run", "step", "text", box=None, header_style="bold")
    for e in entries:
        table.add_row(str(e.id), _when(e.created), e.kind, e.run or "", "" if e.step is None else str(e.step), e.text)
    plain_console().print(table if entries else "The journal is empty; add an entry with `slmtui journal add TEXT`.")
    return 0


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
