"""Resuming a run from its newest readable checkpoint, and the disk check a run makes once it knows its size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.diskplan import DiskPlan, plan_disk
from engine.train.checkpoint import list_checkpoints


class ResumeError(Exception):
    """The run cannot resume (no readable checkpoint); one sentence."""


def restore_latest(trainer: Any, run_dir: Path, log: Callable[[str, str], None]) -> tuple[int, Path]:
    """Restore `trainer` from the newest checkpoint that reads cleanly, falling back to older ones.

    Returns (step, folder). A checkpoint that fails to load (truncated `state.pt`, missing weights) is named in a
    warning and skipped.
    """
    found = list_checkpoints(run_dir)
    if not found:
        raise ResumeError(f"Run {run_dir.name} has no checkpoint to resume from; start it again with slmtui train.")
    for step, folder, _ in reversed(found):
        try:
            kept = trainer.restore(folder)
        except Exception as exc:  # any unreadable part means this checkpoint is unusable: try the one before
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            log(f"Checkpoint {folder.name} cannot be read ({reason}); falling back to the one before it.",
                "warning")
            continue
        if kept:
            log(kept, "info")
        return step, folder
    raise ResumeError(f"None of the {len(found)} checkpoint(s) of run {run_dir.name} can be read, so it cannot "
                      "resume; start it again with slmtui train.")


def run_disk_plan(spec: Any, params_total: int, params_trainable: int, total_steps: int) -> DiskPlan:
    """What the run will write, from its spec and the loaded model's parameter counts."""
    cfg = spec.train
    return plan_disk(params_total, params_trainable, spec.method.kind == "full", total_steps=total_steps,
                     save_every=cfg.save_every, keep_checkpoints=cfg.keep_checkpoints, keep_best=cfg.keep_best)

