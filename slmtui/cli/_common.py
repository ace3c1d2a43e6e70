"""What every subcommand shares: one-sentence user errors and JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any


class UserError(Exception):
    """Something the user can fix; its text is one sentence saying what to change."""


def fail(message: str, code: int = 1) -> int:
    """Print a user error as one line on stderr and return the exit code."""
    print(f"slmtui: {message}", file=sys.stderr)
    return code


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (the `--json` output of every command)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()
