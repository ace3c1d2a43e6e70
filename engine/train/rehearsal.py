"""Fit rehearsal: a few steps on the worst-case batch before the long run, to measure what the step really needs.

The rehearsal runs forward and backward on the longest training examples at the spec's micro-batch (and at half
of it, to tell the fixed part of memory from the per-sample part), with the optimizer's states allocated as the
first real step would allocate them, and measures peak reserved memory. It then picks the largest micro-batch
that fits the free GPU memory with a margin, sets gradient accumulation to keep the effective batch, reports the
estimate against the measurement (`rehearsal` event) and keeps the ratio for later estimates.

Nothing of the rehearsal reaches training: weights are untouched (the optimizer step it takes has a learning rate
of 0 and zero gradients, and its step counters are reset), gradients are dropped and the RNG is restored.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from engine.calibration import ratio_for, record_ratio
from engine.estimate import FIT_MARGIN, calibrate, estimate_peak_memory
from engine.protocol import GIB
from engine.spec_setup import train_setup
from engine.train.batching import collate
from engine.train.checkpoint import rng_state, set_rng_state
from engine.train.evaluation import autocast_context
from engine.train.oom import is_oom
from engine.train.packing import Packer
from engine.train.postmortem import model_shape

if TYPE_CHECKING:
    from engine.train.loop import Trainer
    from engine.train.reporting import Reporter


def should_rehearse(setting: str, device: torch.device) -> bool:
    """`auto` rehearses on a GPU only; `on` and `off` as they say."""
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def planned_estimate(trainer: Trainer) -> dict[str, Any] | None:
    """The estimate of this run's worst step (micro-batch × its longest example), calibrated on a GPU by the
    ratio earlier rehearsals measured for this model, method and GPU; None for a shape the estimate does not know."""
    shape = model_shape(trainer.model)
    if shape is None:
        return None
    longest = max(len(e.input_ids) for e in trainer.stream.examples)
    batch, seq = trainer.packer.shape() if trainer.packer else (trainer.cfg.micro_batch, longest)
    setup = train_setup(trainer.spec, trainer.loaded.precision.name, trainer.loss_kind, batch, seq)
    if trainer.sharded:
        setup = replace(setup, shards=trainer.dist.world)
    result = estimate_peak_memory(shape, setup)
    if trainer.device.type == "cuda":
        gpu = torch.cuda.get_device_name(trainer.device)
        result = calibrate(result, ratio_for(trainer.spec.model.name, trainer.spec.method.kind, gpu))
    return result.to_dict()


def worst_case_batch(trainer: Trainer, size: int) -> dict[str, torch.Tensor]:
    """The `size` longest training examples padded to the longest; packed, the longest examples that fit in a
    micro-batch of `size` tokens."""
    longest = sorted(trainer.stream.examples, key=lambda e: -len(e.input_ids))
    if trainer.packer is not None:
        return Packer(size, trainer.packer.row_tokens).micro_batches(longest)[0]
    return collate(longest[:size], trainer.pad_id)


def _forward_backward(trainer: Trainer, batch: dict[str, torch.Tensor]) -> None:
    batch = {k: v.to(trainer.device) for k, v in batch.items()}
    with autocast_context(trainer.device, trainer.dtype):
        loss, count = trainer.loss_fn(trainer.model, batch)
    (loss / max(count, 1)).backward()


def _allocate_optimizer_states(trainer: Trainer) -> None:
    """Let AdamW create its states (zeros) with a no-op step, then reset its step counters to 0."""
    lrs = [group["lr"] for group in trainer.optimizer.param_groups]
    for group in trainer.optimizer.param_groups:
        group["lr"] = 0.0
    for p in trainer.params:
        if p.grad is not None:
            p.grad.zero_()
    trainer.optimizer.step()
    for group, lr in zip(trainer.optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    for state in trainer.optimizer.state.values():
        if isinstance(state.get("step"), torch.Tensor):
            state["step"].zero_()
        elif "step" in state:
            state["step"] = 0


def measure_peak(trainer: Trainer, size: int) -> float | None:
    """Peak reserved GiB of a training step on the worst-case batch of `size` (examples, or packed tokens); None
    if it ran out of memory (on the CPU: runs the step and returns 0.0, since torch does not track CPU memory)."""
    batch = worst_case_batch(trainer, size)
    cuda = trainer.device.type == "cuda"
    failed = False
    try:
        if cuda:
            torch.cuda.synchronize(trainer.device)
            torch.cuda.reset_peak_memory_stats(trainer.device)
        _forward_backward(trainer, batch)
        if not trainer.optimizer.state:
            _allocate_optimizer_states(trainer)
            trainer.optimizer.zero_grad(set_to_none=True)
            _forward_backward(trainer, batch)  # again, now with the states held as in every later step
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_oom(exc):
            raise
        failed = True
    # outside the handler, so the traceback's frames (and their activations) are gone
    trainer.optimizer.zero_grad(set_to_none=True)
    gc.collect()
    if not cuda:
        return None if failed else 0.0
    peak = torch.cuda.max_memory_reserved(trainer.device) / GIB
    torch.cuda.empty_cache()
    return None if failed else peak


def choose_micro_batch(measured: dict[int, float], capacity_gib: float, effective: int) -> tuple[int, float, float]:
    """(micro-batch, fixed GiB, GiB per sample): the largest micro-batch dividing the effective batch whose
    predicted peak leaves FIT_MARGIN of `capacity_gib` free. Memory is taken as fixed + per-sample × batch,
    fitted through the two largest measurements (one measurement: all of it counts as per-sample)."""
    (big, peak_big), *rest = sorted(measured.items(), reverse=True)
    per_sample = (peak_big - rest[0][1]) / (big - rest[0][0]) if rest else peak_big / big
    fixed = peak_big - per_sample * big
    fits = int((capacity_gib * (1 - FIT_MARGIN) - fixed) // per_sample) if per_sample > 0 else effective
    limit = max(1, min(fits, effective))
    return max(d for d in range(1, limit + 1) if effective % d == 0), fixed, per_sample


def rehearse(trainer: Trainer, reporter: Reporter) -> dict[str, Any]:
    """Rehearse, resize the micro-batch on a GPU, emit and return the `rehearsal` event's fields."""
    if trainer.packer is not None:
        return rehearse_packed(trainer, reporter)
    cfg, device = trainer.cfg, trainer.device
    requested, effective = cfg.micro_batch, cfg.micro_batch * cfg.grad_accum
    saved_rng = rng_state()
    trainer.model.train()
    longest = max(len(e.input_ids) for e in trainer.stream.examples)
    shape = model_shape(trainer.model)

    def estimate(batch: int) -> float | None:
        if shape is None:
            return None
        setup = train_setup(trainer.spec, trainer.loaded.precision.name, trainer.loss_kind, batch, longest)
        return estimate_peak_memory(shape, setup).total_gib

    fields: dict[str, Any] = {"requested_micro_batch": requested, "longest_seq": longest, "capacity_gib": None}
    try:
        measured: dict[int, float] = {}
        batch = requested
        while True:
            peak = measure_peak(trainer, batch)
            if peak is not None or batch == 1:
                break
            batch = max(1, batch // 2)  # the spec's micro-batch does not fit even once: halve until it does
        if device.type != "cuda":
            fields.update(estimate_gib=estimate(requested), measured_gib=None, ratio=None, micro_batch=requested,
                          grad_accum=cfg.grad_accum,
                          message="Rehearsed on the CPU: memory is not measured there, so the micro-batch is kept.")
            return fields
        if peak is None:
            raise torch.OutOfMemoryError(f"micro-batch 1 of the longest examples ({longest} tokens) does not fit")
        measured[batch] = peak
        if batch >= 2:
            half = measure_peak(trainer, batch // 2)
            if half is not None:
                measured[batch // 2] = half
        free, _total = torch.cuda.mem_get_info(device)
        capacity = (free + torch.cuda.memory_reserved(device)) / GIB
        chosen, fixed, per_sample = choose_micro_batch(measured, capacity, effective)
        big, peak_big = max(measured.items())
        cfg.micro_batch, cfg.grad_accum = chosen, effective // chosen
        trainer.stream.micro_batch = chosen
        est = estimate(big)
        ratio = round(peak_big / est, 4) if est else None
        fields.update(estimate_gib=est, measured_gib=round(peak_big, 3), ratio=ratio, micro_batch=chosen,
                      grad_accum=cfg.grad_accum, capacity_gib=round(capacity, 2),
                      measured_by_micro_batch={str(k): round(v, 3) for k, v in measured.items()},
                      predicted_gib=round(fixed + per_sample * chosen, 3),
                      message=(f"Rehearsed {longest}-token batches: micro-batch {big} peaks at {peak_big:.2f} GiB "
                               f"(estimate {est} GiB); training with micro-batch {chosen} x {cfg.grad_accum} "
                               f"(effective {effective}) on {capacity:.1f} GiB."))
        if ratio:
            gpu = torch.cuda.get_device_name(device)
            record_ratio(trainer.spec.model.name, trainer.spec.method.kind, gpu, ratio)
        return fields
    finally:
        set_rng_state(saved_rng)
        trainer.optimizer.zero_grad(set_to_none=True)
        if fields.get("micro_batch") is not None:
            reporter.emit("rehearsal", **fields)
            reporter.log(fields["message"])


def rehearse_packed(trainer: Trainer, reporter: Reporter) -> dict[str, Any]:
    """Packed: rehearse a micro-batch of the token budget, halving the budget (down to the longest example) until it fits;
    the examples per step do not change, only how many rows they take."""
    assert trainer.packer is not None
    cfg, device, requested = trainer.cfg, trainer.device, trainer.packer.tokens
    saved_rng = rng_state()
    trainer.model.train()
    longest = max(len(e.input_ids) for e in trainer.stream.examples)
    shape = model_shape(trainer.model)
    try:
        tokens = requested
        while (peak := measure_peak(trainer, tokens)) is None and tokens > longest:
            tokens = max(tokens // 2, longest)
        if peak is None:
            raise torch.OutOfMemoryError(f"a packed micro-batch of the longest examples ({tokens} tokens) does not fit")
        trainer.packer.tokens = tokens
        setup = train_setup(trainer.spec, trainer.loaded.precision.name, trainer.loss_kind,
                            *Packer(tokens, trainer.packer.row_tokens).shape())
        est = estimate_peak_memory(shape, setup).total_gib if shape is not None else None
        measured = round(peak, 3) if device.type == "cuda" else None
        ratio = round(peak / est, 4) if est and measured else None
        if ratio:
            record_ratio(trainer.spec.model.name, trainer.spec.method.kind, torch.cuda.get_device_name(device), ratio)
        where = f"peaks at {peak:.2f} GiB" if measured else "fits (memory is not measured on the CPU)"
        fields: dict[str, Any] = {"requested_micro_batch": cfg.micro_batch, "longest_seq": longest, "capacity_gib": None,
                  "estimate_gib": est, "measured_gib": measured, "ratio": ratio, "micro_batch": cfg.micro_batch,
                  "grad_accum": cfg.grad_accum, "requested_micro_batch_tokens": requested,
                  "micro_batch_tokens": tokens,
                  "message": f"Rehearsed a packed micro-batch of {tokens} tokens: it {where} (estimate {est} GiB)."}
        reporter.emit("rehearsal", **fields)
        reporter.log(fields["message"])
        return fields
    finally:
        set_rng_state(saved_rng)
        trainer.optimizer.zero_grad(set_to_none=True)
