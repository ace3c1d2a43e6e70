"""What to change after an out-of-memory: concrete spec changes ranked by the memory each saves (from the estimate)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine.catalog import ModelShape, shape_from_config
from engine.estimate import TrainSetup, estimate_peak_memory, verdict
from engine.protocol import GIB
from engine.spec import RunSpec, dump_spec, spec_to_dict
from engine.spec_setup import train_setup

if TYPE_CHECKING:
    from engine.train.loop import Trainer


def model_shape(model: Any) -> ModelShape | None:
    """The estimate's shape of a loaded model, or None when its config is not one the estimate knows."""
    config = getattr(model, "config", None)
    try:
        return shape_from_config(config.to_dict()) if config is not None else None
    except (KeyError, ValueError, TypeError):
        return None


def _candidates(spec: RunSpec, setup: TrainSetup, micro_batch: int,
                grad_accum: int) -> list[tuple[str, dict[str, Any], dict[str, dict[str, Any]]]]:
    """(what to do, estimate changes, spec changes) for each change that applies to this run."""
    out: list[tuple[str, dict[str, Any], dict[str, dict[str, Any]]]] = []
    if setup.seq > 64:
        shorter = max(64, setup.seq // 2)
        out.append((f"Shorten data.max_length to {shorter} (the failing batch was {setup.seq} tokens long)",
                    {"seq": shorter}, {"data": {"max_length": shorter}}))
    if not setup.gradient_checkpointing:
        out.append(("Turn on gradient checkpointing (about 20-30% slower)", {"gradient_checkpointing": True},
                    {"train": {"gradient_checkpointing": True}}))
    quantised = {"lora": "qlora", "dora": "qdora"}.get(setup.method)
    if quantised:
        out.append((f"Use {quantised}: a 4-bit base model", {"method": quantised}, {"method": {"kind": quantised}}))
    if micro_batch > 1:
        half = max(1, micro_batch // 2)
        out.append((f"Halve train.micro_batch to {half} and double train.grad_accum to {grad_accum * 2} "
                    "(same effective batch)", {"batch": half},
                    {"train": {"micro_batch": half, "grad_accum": grad_accum * 2}}))
    if setup.loss == "standard":
        out.append(("Use the fused loss (train.loss = \"fused\"): logits a chunk at a time", {"loss": "fused"},
                    {"train": {"loss": "fused"}}))
    return out


def suggest(spec: RunSpec, shape: ModelShape | None, setup: TrainSetup, capacity_gib: float | None,
            micro_batch: int, grad_accum: int) -> dict[str, Any]:
    """Ranked changes with the GiB each saves, and a suggested spec: the changes applied best first until the
    estimate fits `capacity_gib` (or only the best one when the capacity is unknown)."""
    changes: list[dict[str, Any]] = []
    base = estimate_peak_memory(shape, setup).total_gib if shape is not None else None
    for text, est_change, spec_change in _candidates(spec, setup, micro_batch, grad_accum):
        saves = None
        if shape is not None and base is not None:
            saves = round(base - estimate_peak_memory(shape, replace(setup, **est_change)).total_gib, 3)
        changes.append({"change": text, "saves_gib": saves, "spec": spec_change, "_est": est_change})
    changes.sort(key=lambda c: -(c["saves_gib"] or 0.0))
    suggested = copy.deepcopy(spec)
    applied, current = [], setup
    for change in changes:
        for table, values in change["spec"].items():
            for key, value in values.items():
                setattr(getattr(suggested, table), key, value)
        current = replace(current, **change["_est"])
        applied.append(change["change"])
        if shape is None or capacity_gib is None or \
                verdict(estimate_peak_memory(shape, current).total_gib, capacity_gib) == "fits":
            break
    for change in changes:
        del change["_est"]
    return {"estimate_gib": base, "capacity_gib": capacity_gib, "changes": changes, "applied": applied,
            "suggested_spec": spec_to_dict(suggested), "suggested_spec_toml": dump_spec(suggested)}


def post_mortem(trainer: Trainer, old: dict[str, Any], batch_shape: list[int], longest: int,
                mem_at_failure_gib: float | None) -> dict[str, Any]:
    """The post-mortem of an OOM in `trainer` (settings at failure in `old`)."""
    import torch

    spec = copy.deepcopy(trainer.spec)
    spec.train.micro_batch, spec.train.grad_accum = old["micro_batch"], old["grad_accum"]
    spec.train.gradient_checkpointing = old["gradient_checkpointing"]
    setup = train_setup(spec, trainer.loaded.precision.name, trainer.loss_kind, old["micro_batch"],
                        max(longest, 1))
    capacity = None
    if trainer.device.type == "cuda":
        capacity = torch.cuda.get_device_properties(trainer.device).total_memory / GIB
    report = suggest(spec, model_shape(trainer.model), setup, capacity, old["micro_batch"], old["grad_accum"])
    report.update(batch_shape=batch_shape, longest_seq=longest, mem_at_failure_gib=mem_at_failure_gib,
                  step=trainer.step + 1)
    return report
