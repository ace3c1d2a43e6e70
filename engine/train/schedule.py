"""The learning-rate schedule: a pure function of the step, so a resumed run continues it exactly."""

from __future__ import annotations

import math


def get_lr(step: int, *, base_lr: float, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """The learning rate for optimizer step `step` (0-based).

    Linear warm-up from 0, then cosine or linear decay to 0 at `total_steps`, or constant. The same formulas as
    transformers' `get_*_schedule_with_warmup`, so a run matches HF Trainer step for step.
    """
    if step < warmup_steps:
        return base_lr * step / max(1, warmup_steps)
    if schedule == "constant":
        return base_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "linear":
        return base_lr * max(0.0, 1.0 - progress)
    if schedule == "cosine":
        return base_lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown schedule {schedule!r}")
