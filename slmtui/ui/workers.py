"""One place that turns a failed worker into something a person can read, and the mixin that gets it there.

Textual posts `Worker.StateChanged` only to the node that started the worker, and the message does not bubble:
a worker started by a widget, a dialog or a screen other than the app fails unseen unless that node listens.
`ReportsWorkerFailures` is that listener; the app and every screen or widget that runs a worker (`@work`,
`run_worker`) inherits it (`tests/console/test_worker_failures.py` checks that every such class does), and it
hands each failure to the app's `report_worker_failure`: one sentence in a toast, the traceback in
`HOME/logs/console.log`.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from pathlib import Path
from typing import Protocol, cast

from textual.worker import Worker, WorkerState

#: Where the console writes the tracebacks of failed workers, under HOME.
CONSOLE_LOG = Path("logs") / "console.log"
#: Past this size the log is moved to `console.log.1` (replacing it): a poll failing every second stays bounded.
LOG_LIMIT_BYTES = 1 << 20


class WorkerFailureReporter(Protocol):
    """The app, as the mixin sees it."""

    def report_worker_failure(self, worker: Worker[object]) -> None: ...


class ReportsWorkerFailures:
    """Mixin for the app and every screen or widget that runs workers: a failed worker reaches the app's
    `report_worker_failure`. A subclass that says a failure its own way handles `Worker.StateChanged` itself
    and calls `event.prevent_default()`."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            cast(WorkerFailureReporter, event.worker.node.app).report_worker_failure(event.worker)


def user_message(error: BaseException) -> str | None:
    """The one-sentence text of an error a user can act on (store problems, file errors), else None."""
    from slmtui.store import StoreError

    if isinstance(error, StoreError):
        return str(error)
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return f"Could not use{where}: {error.strerror or error}."
    return None


def explain_failure(worker: Worker[object], home: Path) -> str:
    """What to tell the user about a failed worker, in one sentence; a failure that is the program's fault
    (not a store or file problem the user can fix) has its traceback appended to `HOME/logs/console.log`."""
    what = worker.name or "A task"
    error = worker.error
    message = user_message(error) if error is not None else None
    if message is not None:
        return message
    log = home / CONSOLE_LOG
    report = f"report it with {log}" if _log_traceback(log, what, error) else "report this message"
    because = f" ({type(error).__name__}: {error})" if error is not None else ""
    return f"{what} failed{because}: try again, and if it keeps failing, {report}."


def _log_traceback(log: Path, what: str, error: BaseException | None) -> bool:
    """Append `error`'s traceback to `log` (owner-only); False when the log cannot be written."""
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_LIMIT_BYTES:
            log.replace(log.with_name(f"{log.name}.1"))
    lines = traceback.format_exception(error) if error is not None else ["(no exception recorded)\n"]
    record = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {what} failed\n{''.join(lines)}\n"
    try:
        log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a", encoding="utf-8") as out:
            out.write(record)
    except OSError:
        return False
    return True
