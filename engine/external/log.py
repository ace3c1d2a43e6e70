"""What an imported run's log says, whatever wrote it: per-step training figures, evaluations, its extent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: What `slmtui runs import` reads.
ACCEPTED = "an HF Trainer trainer_state.json or a TensorBoard log folder (events.out.tfevents.* files)"


class ExternalLogError(Exception):
    """A path that cannot be imported (not JSON, no log_history, no event files); one sentence."""


@dataclass
class ExternalLog:
    """A run's history as read from another tool's log.

    `train` maps a step to its figures (`loss`, `lr`, `grad_norm`, `epoch`: the names of a `metrics` event);
    `evals` maps a step to its validation loss. `times` gives a step's wall-clock time where the log has it.
    """

    format: str
    source: Path
    train: dict[int, dict[str, float]] = field(default_factory=dict)
    evals: dict[int, float] = field(default_factory=dict)
    times: dict[int, float] = field(default_factory=dict)
    last_step: int | None = None
    total_steps: int | None = None
    started: float | None = None
    ended: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def add(self, step: int, name: str, value: float) -> None:
        """One figure of one step (`val_loss` goes to the evaluations)."""
        if name == "val_loss":
            self.evals[step] = value
        else:
            self.train.setdefault(step, {})[name] = value

    @property
    def steps(self) -> list[int]:
        """Every step with a figure, in order."""
        return sorted(set(self.train) | set(self.evals))


def number(value: Any) -> float | None:
    """A JSON number as a float (not a bool, not a string); None otherwise."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
