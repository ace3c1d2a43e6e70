"""Importing a run trained elsewhere (an HF Trainer `trainer_state.json`, a TensorBoard log) into the runs folder.

The reading runs in `python -m engine import-run` (TensorBoard's reader is the engine's to import); this side
names the run, creates nothing itself, and indexes the new folder. Light: no textual, no ML stack.
"""

from __future__ import annotations

import re
from pathlib import Path

from slmtui.engine_proc import EngineError, run_engine_json
from slmtui.runs import RunInfo, new_run_id, read_run

#: How long reading a log may take (a TensorBoard log of a long run holds millions of points).
IMPORT_TIMEOUT_S = 600.0
_CHECKPOINT = re.compile(r"checkpoint-\d+")


class ImportRefused(Exception):
    """A path that cannot be imported; one sentence."""


def default_name(source: Path) -> str:
    """A run name from where the log lies: the folder of a trainer_state.json (the training's output folder
    when that is a `checkpoint-N`), or the log folder itself; `imported` when nothing better shows."""
    folder = source.parent if source.is_file() else source
    parts = [p for p in folder.resolve().parts[::-1] if p not in ("/", "runs", "tensorboard", "logs")]
    names = [p for p in parts if not _CHECKPOINT.fullmatch(p)]
    return names[0] if names else "imported"


def import_run(source: Path, runs_dir: Path, name: str | None = None, home: Path | None = None) -> RunInfo:
    """Import the log at `source` as a new run under `runs_dir` and return it; `ImportRefused` (the engine's
    one sentence) when the log cannot be read."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id(name or default_name(source), runs_dir)
    args = [str(source.expanduser().absolute()), str(runs_dir / run_id), *(["--name", name] if name else [])]
    try:
        run_engine_json("import-run", *args, home=home, timeout=IMPORT_TIMEOUT_S)
    except EngineError as exc:
        raise ImportRefused(str(exc)) from None
    return read_run(runs_dir / run_id)
