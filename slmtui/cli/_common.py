"""What every subcommand shares: one-sentence user errors, JSON output, and printing text from outside safely.

Journal entries, dataset rows, model names, file names and engine messages are data, never markup or terminal
commands: they are printed through `say` or `plain_console`, which show them as typed (engine/safe_text.py).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from engine.safe_text import safe_json_dumps, visible

if TYPE_CHECKING:
    from rich.console import Console


class UserError(Exception):
    """Something the user can fix; its text is one sentence saying what to change."""


def fail(message: str, code: int = 1) -> int:
    """Print a user error as one line on stderr and return the exit code."""
    say(f"slmtui: {message}", err=True)
    return code


def say(text: str, *, err: bool = False, flush: bool = False) -> None:
    """Print a line that may hold text from outside (a path, a run name, an engine message), controls made
    visible; `flush` for progress lines a pipe must see at once."""
    print(visible(text), file=sys.stderr if err else sys.stdout, flush=flush)


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (the `--json` output of every command); no raw control character."""
    sys.stdout.write(safe_json_dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def plain_console(**kwargs: Any) -> Console:
    """A rich console for output that holds text from outside: strings printed through it (table cells
    included) are never read as markup or emoji codes, and their control characters show as `␛`-like signs.
    `Text` objects are taken as they are: build them from `visible(...)`."""
    from rich.console import Console
    from rich.text import Text

    class _PlainConsole(Console):
        def render_str(self, text: str, **options: Any) -> Text:
            options.update(markup=False, emoji=False)
            return super().render_str(visible(text), **options)

    return _PlainConsole(markup=False, emoji=False, **kwargs)
