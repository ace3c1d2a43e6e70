"""Launching a run: the checks before it starts, and the start itself. `slmtui train` and New run both call
`check_launch` then `launch_run`, so they run the same checks and differ only in how they offer an override.

Will the checkpoints fit on the disk, and will the estimate fit in the free memory of the GPU(s) the run uses?
A refusal is structured (`Refusal`: what is wrong, what to change, whether the user may start anyway): the CLI
words the override as `--force`, the console as a "Launch anyway" button.

Light (no ML stack): the model's size comes from its `config.json` through the catalog's shape code, memory from
`engine.estimate`, the GPU's state from `slmtui.gpu`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.catalog import ModelShape, count_params
from engine.diskplan import DISK_REMEDY, DiskPlan, disk_shortfall, plan_disk
from engine.estimate import estimate_peak_memory, trainable_params, verdict
from engine.protocol import GIB
from engine.spec import RunSpec
from engine.spec_setup import train_setup
from slmtui.fit import FitError, planned_setup, resolve_shape
from slmtui.gpu import GpuSnapshot, Inventory
from slmtui.runs import RunInfo, launch


@dataclass(frozen=True)
class Refusal:
    """Why a run should not start: what is wrong, what to change, and whether the user may start it anyway."""

    reason: str
    remedy: str
    forceable: bool = False

    def sentence(self, override: str = "") -> str:
        """One sentence; `override` is how this front end starts a forceable run anyway ("pass --force to
        start anyway"), offered after the remedy."""
        remedy = f"{self.remedy}, or {override}" if override and self.forceable else self.remedy
        return f"{self.reason}; {remedy}."


@dataclass(frozen=True)
class LaunchCheck:
    """What the checks found: notes to show, the refusal (None: the run may start), and the refusals that
    `force` set aside (to say what the run starts despite)."""

    notes: tuple[str, ...] = ()
    refusal: Refusal | None = None
    overridden: tuple[Refusal, ...] = ()


def model_shape(spec: RunSpec) -> ModelShape | None:
    """The model's shape from its config.json (folder, catalog or cached hub config), or None when unknown."""
    try:
        return resolve_shape(spec.model.name)[1]
    except FitError:
        return None


def spec_disk_plan(spec: RunSpec, shape: ModelShape) -> DiskPlan:
    """The checkpoints a spec will write, sized from the model's shape (the step count only when fixed)."""
    cfg = spec.train
    return plan_disk(count_params(shape), trainable_params(shape, train_setup(spec)), spec.method.kind == "full",
                     total_steps=cfg.max_steps or None, save_every=cfg.save_every,
                     keep_checkpoints=cfg.keep_checkpoints, keep_best=cfg.keep_best)


def check_disk(spec: RunSpec, shape: ModelShape, runs_dir: Path, free: int | None = None) -> LaunchCheck:
    """Refuse when the checkpoints the spec keeps will not fit on the runs disk."""
    shortfall = disk_shortfall(spec_disk_plan(spec, shape), runs_dir, free)
    return LaunchCheck(refusal=Refusal(shortfall, DISK_REMEDY) if shortfall else None)


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
              own_pid: int | None = None) -> LaunchCheck:
    """Say who else holds memory on the run's GPU(s), and refuse (forceably) when the estimate exceeds the free
    memory; a GPU the machine lacks is refused outright."""
    notes: list[str] = []
    overridden: list[Refusal] = []
    own_pid = os.getpid() if own_pid is None else own_pid
    wanted = chosen_gpus(spec, inventory)
    by_index = {g.index: g for g in inventory.gpus}
    frees = [g.memory_free for g in inventory.gpus if g.index in wanted and isinstance(g.memory_free, int)]
    need = (estimate_peak_memory(shape, planned_setup(spec, shape, min(frees) / GIB if frees else 0.0)).total_gib
            if shape is not None else None)  # per GPU: sharded where the engine will shard it
    for index in wanted:
        gpu = by_index.get(index)
        if gpu is None:
            missing = f"train.device asks for GPU {index} but this machine has {len(inventory.gpus)}"
            return LaunchCheck(tuple(notes), Refusal(missing, "fix it"))
        holders, held = _holders(gpu, own_pid)
        free = gpu.memory_free if isinstance(gpu.memory_free, int) else None
        total = gpu.memory_total if isinstance(gpu.memory_total, int) else None
        if holders:
            room = f"; {free / GIB:.1f} of {total / GIB:.1f} GiB free" if free is not None and total else ""
            notes.append(f"GPU {index} ({gpu.name}) is in use: {', '.join(holders)}{room}.")
        if need is None or free is None or verdict(need, free / GIB) != "exceeds":
            continue
        others = f" (other processes hold {held / GIB:.1f} GiB)" if held else ""
        refusal = Refusal(f"The estimate needs {need:.1f} GiB but GPU {index} has {free / GIB:.1f} GiB free{others}",
                          "lower train.micro_batch or data.max_length, turn on train.gradient_checkpointing"
                          + (", wait for them" if held else ""), forceable=True)
        if not force:
            return LaunchCheck(tuple(notes), refusal)
        overridden.append(refusal)
    if need is not None and wanted:
        notes.append(f"Estimated peak memory {need:.1f} GiB per GPU.")
    return LaunchCheck(tuple(notes), overridden=tuple(overridden))


def check_launch(spec: RunSpec, runs_dir: Path, read_inventory: Callable[[], Inventory], force: bool = False,
                 pilot: bool = False) -> LaunchCheck:
    """The checks before a launch: a disk refusal stands, a GPU one yields to `force`. A pilot skips the disk
    check (it writes a fraction of the checkpoints), as does a model whose shape is unknown (the engine checks the
    disk again once the model is loaded); a CPU run skips the GPU (`read_inventory` is called only then)."""
    shape = model_shape(spec)
    disk = check_disk(spec, shape, runs_dir) if shape is not None and not pilot else LaunchCheck()
    if disk.refusal or spec.train.device == "cpu":
        return disk
    return check_gpu(spec, shape, read_inventory(), force)


def launch_run(spec: RunSpec, runs_dir: Path, home: Path | None = None, pilot: float | None = None) -> RunInfo:
    """Start the run detached; a `pilot` trains on that fraction of the data and predicts the full run's time.
    Returns its `RunInfo`."""
    engine_args: Sequence[str] = ["--pilot", str(pilot)] if pilot is not None else ()
    return launch(spec, runs_dir, home=home, engine_args=engine_args)
