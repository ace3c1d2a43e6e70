"""Checks before a run is launched: will its checkpoints fit on the disk, and is its GPU busy with others?

Light (no ML stack): the model's size comes from its `config.json` through the catalog's shape code, memory from
`engine.estimate`, the GPU's state from `slmtui.gpu`. Each check returns notes to print and, when the run should
not start, one refusal sentence.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.catalog import ModelShape, count_params
from engine.diskplan import DiskPlan, disk_problem, plan_disk
from engine.estimate import TrainSetup, estimate_peak_memory, trainable_params, verdict
from engine.protocol import GIB
from engine.spec import RunSpec
from slmtui.gpu import GpuSnapshot, Inventory

_ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj"}


@dataclass
class Preflight:
    """What the checks found: sentences to show, and the refusal (None: the run may start)."""

    notes: list[str] = field(default_factory=list)
    refusal: str | None = None


def train_setup(spec: RunSpec) -> TrainSetup:
    """The estimate's view of a spec on a GPU (precision `auto` is bf16 there, loss `auto` the fused one)."""
    targets = spec.method.target_modules
    attention_only = isinstance(targets, list) and bool(targets) and set(targets) <= _ATTENTION
    precision = spec.train.precision if spec.train.precision != "auto" else "bf16"
    return TrainSetup(method=spec.method.kind, batch=spec.train.micro_batch, seq=spec.data.max_length,
                      precision=precision, rank=spec.method.rank,
                      targets="attention" if attention_only else "all-linear", dropout=spec.method.dropout,
                      gradient_checkpointing=spec.train.gradient_checkpointing,
                      loss="standard" if spec.train.loss == "standard" else "fused",  # auto is fused on GPUs
                      double_quant=spec.method.double_quant)


def spec_disk_plan(spec: RunSpec, shape: ModelShape) -> DiskPlan:
    """The checkpoints a spec will write, sized from the model's shape (the step count only when fixed)."""
    setup = train_setup(spec)
    cfg = spec.train
    return plan_disk(count_params(shape), trainable_params(shape, setup), spec.method.kind == "full",
                     total_steps=cfg.max_steps or None, save_every=cfg.save_every,
                     keep_checkpoints=cfg.keep_checkpoints, keep_best=cfg.keep_best)


def check_disk(spec: RunSpec, shape: ModelShape, runs_dir: Path, free: int | None = None) -> Preflight:
    """Refuse when the checkpoints the spec keeps will not fit on the runs disk."""
    return Preflight(refusal=disk_problem(spec_disk_plan(spec, shape), runs_dir, free))


def chosen_gpus(spec: RunSpec, inventory: Inventory) -> list[int]:
    """The GPU indices the run will use (none on the CPU, or when no GPU is visible)."""
    device = spec.train.device
    if device == "cpu" or not inventory.gpus:
        return []
    first = int(device[5:]) if device.startswith("cuda:") else 0
    return list(range(first, first + spec.train.devices))


def _holders(gpu: GpuSnapshot, own_pid: int) -> tuple[list[str], int]:
    """'pid 42 (alice: python x.py) holds 3.0 GiB' for each other process, and their bytes in all."""
    if not isinstance(gpu.processes, tuple):
        return [], 0
    texts, held = [], 0
    for proc in gpu.processes:
        if proc.pid == own_pid or not isinstance(proc.gpu_memory, int) or proc.gpu_memory <= 0:
            continue
        who = ": ".join(str(x) for x in (proc.user, proc.command) if isinstance(x, str) and x)
        texts.append(f"pid {proc.pid}{f' ({who[:60]})' if who else ''} holds {proc.gpu_memory / GIB:.1f} GiB")
        held += proc.gpu_memory
    return texts, held


def check_gpu(spec: RunSpec, shape: ModelShape | None, inventory: Inventory, force: bool = False,
              own_pid: int | None = None) -> Preflight:
    """Say who else holds memory on the run's GPU(s), and refuse when the estimate exceeds the free memory."""
    result = Preflight()
    own_pid = os.getpid() if own_pid is None else own_pid
    wanted = chosen_gpus(spec, inventory)
    by_index = {g.index: g for g in inventory.gpus}
    need = estimate_peak_memory(shape, train_setup(spec)).total_gib if shape is not None else None
    for index in wanted:
        gpu = by_index.get(index)
        if gpu is None:
            result.refusal = f"train.device asks for GPU {index} but this machine has {len(inventory.gpus)}; fix it."
            return result
        holders, held = _holders(gpu, own_pid)
        free = gpu.memory_free if isinstance(gpu.memory_free, int) else None
        total = gpu.memory_total if isinstance(gpu.memory_total, int) else None
        if holders:
            room = f"; {free / GIB:.1f} of {total / GIB:.1f} GiB free" if free is not None and total else ""
            result.notes.append(f"GPU {index} ({gpu.name}) is in use: {', '.join(holders)}{room}.")
        if need is None or free is None or verdict(need, free / GIB) != "exceeds":
            continue
        others = f" (other processes hold {held / GIB:.1f} GiB)" if held else ""
        sentence = (f"The estimate needs {need:.1f} GiB but GPU {index} has {free / GIB:.1f} GiB free{others}; "
                    "lower train.micro_batch or data.max_length, turn on train.gradient_checkpointing, "
                    f"{'wait for them, ' if held else ''}or pass --force to start anyway.")
        if force:
            result.notes.append("Starting anyway (--force): " + sentence.split(";")[0] + ".")
        else:
            result.refusal = sentence
            return result
    if need is not None and wanted and not result.refusal:
        result.notes.append(f"Estimated peak memory {need:.1f} GiB per GPU.")
    return result


def launch_checks(spec: RunSpec, shape: ModelShape | None, runs_dir: Path, read_inventory: Callable[[], Inventory],
                  force: bool, pilot: bool) -> tuple[Preflight, Preflight]:
    """(disk, GPU) checks before a launch: a disk refusal stands, a GPU refusal yields to `force`. A pilot skips
    the disk check (it writes a fraction of the checkpoints; the engine checks it exactly); a CPU run the GPU one
    (`read_inventory` is called only then)."""
    disk = check_disk(spec, shape, runs_dir) if shape is not None and not pilot else Preflight()
    if disk.refusal or spec.train.device == "cpu":
        return disk, Preflight()
    return disk, check_gpu(spec, shape, read_inventory(), force)
