"""One place that turns a failed worker into something a person can read."""

from __future__ import annotations

from textual.worker import Worker


def user_message(error: BaseException) -> str | None:
    """The one-sentence text of an error a user can act on (store problems, file errors), else None."""
    from slmtui.store import StoreError

    if isinstance(error, StoreError):
        return str(error)
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return f"Could not use{where}: {error.strerror or error}."
    return None


def describe_failure(worker: Worker[object]) -> tuple[str, bool]:
    """What to tell the user about a failed worker, and whether it is the program's fault (log a traceback)."""
    error = worker.error
    if error is None:
        return f"{worker.name or 'A task'} failed.", True
    message = user_message(error)
    if message is not None:
        return message, False
    return f"{worker.name or 'A task'} failed: {error!r} (details in the log).", True
