"""How much disk a run's checkpoints will take, checked before launch (stdlib only: the console imports it).

A checkpoint holds the trainable weights (fp32: LoRA adapters, or full fine-tuning's fp32 master weights), the
AdamW moments (two fp32 tensors per trainable weight) and small state (RNG, data position). At most
`keep_checkpoints` of them live at once, plus the best by validation loss, plus the one being written before the
oldest is pruned; the final adapter or model comes on top.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.protocol import GIB

#: RNG states, data position, configs and the tokenizer's files, rounded up.
STATE_OVERHEAD_BYTES = 8 << 20
#: Leave this much free after the run's files (logs, events, the OS).
DISK_MARGIN_BYTES = GIB
#: What to change when the checkpoints will not fit.
DISK_REMEDY = "free space, lower train.keep_checkpoints or raise train.save_every"


@dataclass(frozen=True)
class DiskPlan:
    """What a run will write: bytes per checkpoint, how many live at once, the final weights, the total."""

    checkpoint_bytes: int
    checkpoints: int
    final_bytes: int
    total_bytes: int

    def shortfall(self, free_bytes: int, where: Path) -> str:
        """What does not fit, with the numbers (the refusal's reason)."""
        return (f"The run needs about {self.total_bytes / GIB:.2f} GiB on {where} ({self.checkpoints} checkpoint(s) "
                f"of {self.checkpoint_bytes / GIB:.2f} GiB and {self.final_bytes / GIB:.2f} GiB of final weights, "
                f"plus {DISK_MARGIN_BYTES / GIB:.0f} GiB to spare) but only {free_bytes / GIB:.2f} GiB is free")


def checkpoint_bytes(params_total: int, params_trainable: int, full: bool) -> int:
    """Bytes of one resumable checkpoint."""
    weights = (params_total if full else params_trainable) * 4
    return weights + params_trainable * 8 + STATE_OVERHEAD_BYTES


def saves_during(total_steps: int | None, save_every: int) -> int | None:
    """Checkpoints a run writes before its last step (the end saves final weights instead); None: unknown."""
    if save_every <= 0:
        return 0
    if total_steps is None:
        return None
    return max(total_steps - 1, 0) // save_every


def plan_disk(params_total: int, params_trainable: int, full: bool, *, total_steps: int | None, save_every: int,
              keep_checkpoints: int, keep_best: bool) -> DiskPlan:
    """The disk a run will fill at its fullest; with an unknown step count only a bounded number is counted."""
    per = checkpoint_bytes(params_total, params_trainable, full)
    saves = saves_during(total_steps, save_every)
    if keep_checkpoints > 0:
        bound = keep_checkpoints + int(keep_best) + 1
        live = bound if saves is None else min(saves, bound)
    else:
        live = saves or 0  # keep all: unknown when the step count is (the engine checks again once it knows)
    final = (params_total if full else params_trainable) * 4 + STATE_OVERHEAD_BYTES
    return DiskPlan(per, live, final, per * live + final)


def nearest_existing(path: Path) -> Path:
    """`path`, or its nearest parent that exists (where a folder not yet made will be): nothing is created."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def free_bytes(path: Path) -> int:
    """Free bytes on the disk holding `path` (its nearest existing parent)."""
    return shutil.disk_usage(nearest_existing(path)).free


def disk_shortfall(plan: DiskPlan, where: Path, free: int | None = None) -> str | None:
    """What does not fit when the plan does not fit on `where` with the margin; None when it does."""
    free = free_bytes(where) if free is None else free
    if plan.total_bytes + DISK_MARGIN_BYTES <= free:
        return None
    return plan.shortfall(free, where)


def disk_problem(plan: DiskPlan, where: Path, free: int | None = None) -> str | None:
    """A refusal sentence (what does not fit, and what to change) when the plan does not fit; None when it does."""
    shortfall = disk_shortfall(plan, where, free)
    return f"{shortfall}; {DISK_REMEDY}." if shortfall else None

