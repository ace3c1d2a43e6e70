"""The live ETA of a run and the pilot's prediction of a full run, both from `engine.eta`'s token-rate model.

A run knows its data order in advance (`BatchStream` is seeded), so the tokens of every step still to come are
counted exactly (`step_token_plan`): steps that draw long examples take longer, and the ETA says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from engine.eta import Eta, EtaModel, predict_full_run, recurring
from engine.train.batching import StreamState, epoch_order


def step_token_plan(lengths: Sequence[int], micro_batch: int, grad_accum: int, seed: int, steps: int,
                    state: StreamState | None = None, shuffle: bool = True) -> list[int]:
    """Non-padding tokens of each of the next `steps` optimizer steps, from stream position `state`."""
    n = len(lengths)
    if n == 0 or steps <= 0:
        return []
    state = state or StreamState()
    epoch, cursor = state.epoch, state.cursor

    def prefix_of(epoch: int) -> list[int]:
        return [0, *accumulate(lengths[i] for i in epoch_order(n, seed, epoch, shuffle))]

    prefix = prefix_of(epoch)
    plan = []
    for _ in range(steps):
        tokens = 0
        for _ in range(grad_accum):
            if cursor >= n:
                epoch, cursor = epoch + 1, 0
                prefix = prefix_of(epoch)
            end = min(cursor + micro_batch, n)
            tokens += prefix[end] - prefix[cursor]
            cursor = end
        plan.append(tokens)
    return plan


def eta_fields(eta: Eta | None) -> dict[str, float | None]:
    """The `eta_s`, `eta_low_s`, `eta_high_s` fields of `metrics` events and `summary.json` (None: not yet)."""
    if eta is None:
        return {"eta_s": None, "eta_low_s": None, "eta_high_s": None}
    return {"eta_s": round(eta.seconds, 1), "eta_low_s": round(eta.low, 1), "eta_high_s": round(eta.high, 1)}


class LiveEta:
    """Times a run's steps, evaluations and checkpoints and predicts the time of the rest of it."""

    def __init__(self, plan: Sequence[int], start_step: int, total_steps: int, eval_every: int, save_every: int,
                 eval_tokens: int, warmup_steps: int = 2) -> None:
        self.model = EtaModel(warmup_steps=warmup_steps)
        self.start_step = start_step
        self.total_steps = total_steps
        self.eval_every = eval_every if eval_tokens else 0
        self.save_every = save_every
        self.eval_tokens = eval_tokens
        self._after = [0, *accumulate(plan)]  # tokens of the first k planned steps
        self._planned = self._after[-1]

    def remaining_tokens(self, step: int) -> int:
        """Training tokens of the steps after `step`."""
        done = min(max(step - self.start_step, 0), len(self._after) - 1)
        return self._planned - self._after[done]

    def add_step(self, tokens: int, seconds: float) -> None:
        """Training tokens and wall time since the last report (evaluation and saving excluded)."""
        self.model.add_step(tokens, seconds)

    def add_eval(self, seconds: float) -> None:
        """One evaluation of the validation split."""
        self.model.add_eval(seconds, self.eval_tokens)

    def add_checkpoint(self, seconds: float) -> None:
        """One checkpoint save."""
        self.model.add_checkpoint(seconds)

    def predict(self, step: int) -> Eta | None:
        """Time left after `step` (None until a step past warm-up was timed)."""
        if not self.model.ready:
            return None
        evals = recurring(self.total_steps, self.eval_every, step) if self.eval_tokens else 0
        saves = recurring(self.total_steps, self.save_every, step)
        return self.model.predict(self.remaining_tokens(step), evals=evals, checkpoints=saves,
                                  eval_tokens=self.eval_tokens, recent=True)


def predict_from_pilot(live: LiveEta, *, plan: Sequence[int], total_steps: int, eval_every: int,
                       save_every: int, eval_tokens: int) -> dict[str, Any] | None:
    """The full run's wall time from a pilot's timings, as the `eta` event's fields (None: nothing timed)."""
    if not live.model.ready:
        return None
    eta = predict_full_run(live.model, total_tokens=sum(plan), total_steps=total_steps,
                           eval_every=eval_every if eval_tokens else 0, save_every=save_every,
                           eval_tokens=eval_tokens)
    return {**eta_fields(eta), "detail": eta.to_dict(), "total_steps": total_steps, "total_tokens": sum(plan)}
