"""Library chatter kept out of the user's terminal, real errors kept in it.

Importing the ML stack talks: bitsandbytes logs `Failed to load CPU gemm_4bit_forward from kernels-community`
on every CPU machine, and torch, transformers or peft raise a `FutureWarning` now and then. With no logging
handler configured, Python's last-resort handler prints such warnings on stderr, which is the terminal of
someone running `python -m engine ...`, and the one-sentence error channel of the `slmtui` commands that start
the engine (they show its last stderr line when it fails). `quiet_libraries` sends warnings (logged or
`warnings.warn`) to a log file instead, and lets only errors through to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from engine.protocol import ENGINE_LOG

#: Where `python -m engine` subcommands other than `run` keep the libraries' warnings, under HOME.
LIBRARY_LOG = Path("logs") / ENGINE_LOG
#: Library records at this level and above still reach stderr: a real failure stays visible.
STDERR_LEVEL = logging.ERROR

_HANDLER_NAME = "slmtui-quiet"


def quiet_libraries(log_path: Path | None) -> None:
    """Route the libraries' warnings to `log_path` (None or an unwritable path: drop them) and keep errors on
    stderr. Call once, first thing, before the ML stack is imported."""
    # transformers and datasets log through handlers of their own that do not propagate: turn their
    # warnings down at the source (their errors still print).
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> the handlers below
    root = logging.getLogger()
    if any(handler.get_name() == _HANDLER_NAME for handler in root.handlers):
        return
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(STDERR_LEVEL)
    errors.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    errors.set_name(_HANDLER_NAME)
    root.addHandler(errors)
    log = _file_handler(log_path)
    if log is not None:
        root.addHandler(log)


def _file_handler(log_path: Path | None) -> logging.Handler | None:
    if log_path is None:
        return None
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a",  # noqa: SIM115
                      encoding="utf-8")
    except OSError:  # a read-only HOME: the warnings are dropped, nothing else changes
        return None
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s"))
    return handler
