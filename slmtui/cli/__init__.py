"""The `slmtui` command: the console with no arguments, a subcommand otherwise.

Each subcommand lives in its own module with a `register(subparsers)` function; modules stay light at
import time (heavy imports happen inside the handlers) so `slmtui --version` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from slmtui import __version__
from slmtui.cli._common import UserError, fail


def command_modules() -> tuple[ModuleType, ...]:
    """The modules under `slmtui.cli` that add subcommands, in the order `--help` lists them (imported here,
    not at the top, so `slmtui --version` never loads them)."""
    from slmtui.cli import checklist, data, demo, doctor, evals, export, journal, planning, runs, serve, sweep

    return (demo, runs, sweep, data, planning, checklist, evals, export, doctor, journal, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slmtui",
        description="A terminal console for fine-tuning small language models. "
        "With no command it opens the console.",
    )
    parser.add_argument("--version", action="version", version=f"slmtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list in (["--version"], ["-V"]):  # the fast path: no parser, no command modules
        print(f"slmtui {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    try:
        if handler is None:
            from slmtui.cli.console import open_console

            return open_console()
        return int(handler(args) or 0)
    except UserError as exc:
        return fail(str(exc))
    except Exception as exc:  # a HOME or store problem any command can meet is one sentence too
        if not _is_home_or_store_error(exc):
            raise
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130


def _is_home_or_store_error(exc: BaseException) -> bool:
    """Whether `exc` is a HOME or store problem (checked without importing the store for every command)."""
    from engine.paths import HomeError

    store = sys.modules.get("slmtui.store")
    return isinstance(exc, HomeError) or (store is not None and isinstance(exc, store.StoreError))
