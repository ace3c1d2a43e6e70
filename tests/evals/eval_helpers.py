"""Helpers of the evaluation tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def engine_env(home: Path) -> dict[str, str]:
    """An engine subprocess's environment: this checkout first, one torch thread, the given HOME."""
    env = dict(os.environ)
    env.update(SLMTUI_HOME=str(home), OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env
