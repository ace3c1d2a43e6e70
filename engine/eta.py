"""How long a run will take: a light model (stdlib only) shared by pilot runs and the live ETA.

Time is predicted from tokens, not steps: steps differ in length when batches are packed or padded to their
longest sequence, tokens do not. The first steps (CUDA context, kernel autotuning, compilation) are left out of
the rate; evaluation and checkpoint time are counted separately, each from its own measurements, because they
recur at fixed step intervals whatever the batch size. The central rate is all timed seconds over all timed
tokens: the future is a sum of step times, and a median of per-step rates drops the occasional slow step (a busy
machine) that the sum still pays (on a shared CPU the median read 27% short). The range comes from the spread of
the per-step rates (10th to 90th percentile, widened to hold the central rate) and of the measured evaluations
and checkpoints. A live ETA may ask for the `recent` window of steps only, so that it follows a machine whose
speed changes during a long run (another job starting or ending on a shared box).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any

#: Forward-only evaluation costs about a third of a training step per token (no backward, no optimizer).
EVAL_COST_PER_TRAIN_TOKEN = 1 / 3


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; values need not be sorted."""
    if not values:
        raise ValueError("quantile of no values")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class Eta:
    """Predicted remaining (or total) wall time in seconds, with a range."""

    seconds: float
    low: float
    high: float
    train_seconds: float
    eval_seconds: float
    checkpoint_seconds: float
    tokens_per_second: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded to the second."""
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(self).items()}


def recurring(total_steps: int, every: int, done_steps: int = 0, final: bool = True) -> int:
    """How many evaluations or checkpoints fall after `done_steps` in a run of `total_steps` (every N steps,
    plus one at the end when `final` and the last step is not already on the interval)."""
    if total_steps <= done_steps:
        return 0
    count = 0
    if every > 0:
        count = total_steps // every - done_steps // every
    if final and (every <= 0 or total_steps % every != 0):
        count += 1
    return count


@dataclass
class EtaModel:
    """Collects step, evaluation and checkpoint timings and predicts the time of the rest of a run."""

    warmup_steps: int = 2
    window: int = 50  # steps the `recent` prediction averages over
    _rates: list[float] = field(default_factory=list)  # seconds per token, after warm-up
    _timed_seconds: float = 0.0
    _timed_tokens: int = 0
    _recent: deque[tuple[float, int]] = field(default_factory=deque)
    _seen_steps: int = 0
    _evals: list[float] = field(default_factory=list)  # seconds per evaluation
    _eval_tokens: list[int] = field(default_factory=list)
    _checkpoints: list[float] = field(default_factory=list)

    def add_step(self, tokens: int, seconds: float) -> None:
        """One optimizer step's tokens (all micro-batches) and wall time, evaluation and saving excluded."""
        self._seen_steps += 1
        if self._seen_steps > self.warmup_steps and tokens > 0 and seconds > 0:
            self._rates.append(seconds / tokens)
            self._timed_seconds += seconds
            self._timed_tokens += tokens
            self._recent.append((seconds, tokens))
            if len(self._recent) > self.window:
                self._recent.popleft()

    def add_eval(self, seconds: float, tokens: int = 0) -> None:
        """One evaluation's wall time (and the tokens it ran, to scale it to another validation set)."""
        self._evals.append(seconds)
        self._eval_tokens.append(tokens)

    def add_checkpoint(self, seconds: float) -> None:
        """One checkpoint's wall time."""
        self._checkpoints.append(seconds)

    @property
    def ready(self) -> bool:
        """Whether enough steps past warm-up were seen to predict."""
        return len(self._rates) >= 1

    def _eval_range(self, eval_tokens: int, rates: tuple[float, float, float]) -> tuple[float, float, float]:
        """(typical, low, high) seconds of one evaluation of `eval_tokens` tokens (0: as measured)."""
        if self._evals:
            measured_tokens = [t for t in self._eval_tokens if t > 0]
            scale = eval_tokens / median(measured_tokens) if eval_tokens and measured_tokens else 1.0
            return median(self._evals) * scale, min(self._evals) * scale, max(self._evals) * scale
        cost = eval_tokens * EVAL_COST_PER_TRAIN_TOKEN
        return cost * rates[0], cost * rates[1], cost * rates[2]

    def predict(self, tokens: int, evals: int = 0, checkpoints: int = 0, eval_tokens: int = 0,
                recent: bool = False) -> Eta:
        """Wall time of `tokens` more training tokens, `evals` evaluations (of `eval_tokens` tokens each, when
        they differ from those measured) and `checkpoints` saves; `recent`: from the last `window` steps only."""
        if not self.ready:
            raise ValueError("No step past warm-up has been timed yet, so there is no rate to predict from.")
        if recent:
            per_step = [s / t for s, t in self._recent]
            central = sum(s for s, _ in self._recent) / sum(t for _, t in self._recent)
        else:
            per_step, central = self._rates, self._timed_seconds / self._timed_tokens
        rates = (central, min(central, quantile(per_step, 0.1)), max(central, quantile(per_step, 0.9)))
        ev, ev_low, ev_high = self._eval_range(eval_tokens, rates)
        ck = median(self._checkpoints) if self._checkpoints else 0.0
        ck_low = min(self._checkpoints) if self._checkpoints else 0.0
        ck_high = max(self._checkpoints) if self._checkpoints else 0.0
        train = tokens * rates[0]
        return Eta(
            seconds=train + evals * ev + checkpoints * ck,
            low=tokens * rates[1] + evals * ev_low + checkpoints * ck_low,
            high=tokens * rates[2] + evals * ev_high + checkpoints * ck_high,
            train_seconds=train, eval_seconds=evals * ev, checkpoint_seconds=checkpoints * ck,
            tokens_per_second=1 / rates[0],
        )


def predict_full_run(pilot: EtaModel, *, total_tokens: int, total_steps: int, eval_every: int, save_every: int,
                     eval_tokens: int = 0) -> Eta:
    """The whole run's wall time from a pilot: its token rate, evaluation and checkpoint costs, applied to the
    full run's tokens and its number of evaluations and checkpoints (warm-up excluded)."""
    return pilot.predict(total_tokens, evals=recurring(total_steps, eval_every),
                         checkpoints=recurring(total_steps, save_every), eval_tokens=eval_tokens)


def format_duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h07m`; "" for no duration."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
