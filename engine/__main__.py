"""`python -m engine NAME ...`: the engine's subcommands.

Each one is a module in `engine.commands` with a `main(argv) -> int`; it prints JSON or writes events and exits.
"""

from __future__ import annotations

import importlib
import os
import sys

from engine.paths import slmtui_home
from engine.quiet import LIBRARY_LOG, quiet_libraries

#: Subcommand name -> module under engine.commands.
COMMANDS = {
    "run": "run",
    "make-demo": "make_demo",
    "data-check": "data_check",
    "eval": "evaluate",
    "generate": "generate",
    "export": "export",
    "doctor": "doctor",
    "import-run": "import_run",
}


def private_process() -> None:
    """What every engine process does first: files it creates are owner-only (run folders hold people's data,
    models and notes), and the hub libraries send no usage telemetry."""
    os.umask(0o077)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def main(argv: list[str]) -> int:
    private_process()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m engine {" + ",".join(COMMANDS) + "} ...")
        print("The engine's subcommands; each has --help.")
        return 0
    name, rest = argv[0], argv[1:]
    if name != "run":  # a run's stderr is its own engine.log already; elsewhere it is the user's terminal
        quiet_libraries(slmtui_home(create=False) / LIBRARY_LOG)
    module = COMMANDS.get(name)
    if module is None:
        print(f"engine: unknown subcommand {name!r}; use one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        mod = importlib.import_module(f"engine.commands.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"engine.commands.{module}":
            print(f"engine: subcommand {name!r} is not built yet", file=sys.stderr)
            return 2
        raise
    return int(mod.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
