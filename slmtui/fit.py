"""What fits where: model shapes from any name, GPU capacities, the what-fits table and a spec's estimate.

Headless (no textual): the `estimate`/`gpus` commands, the GPUs screen and the New run screen share it.
Every function here is cheap enough for a worker thread and raises `FitError` (one sentence) on a user error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.catalog import ModelShape, load_catalog, shape_from_config
from engine.estimate import (
    FitRow,
    MemoryEstimate,
    TrainSetup,
    estimate_peak_memory,
    largest_micro_batch,
    on_gpus,
    verdict,
    what_fits,
)
from engine.spec import RunSpec

#: Methods the what-fits table compares.
FIT_METHODS: tuple[str, ...] = ("full", "lora", "qlora")
#: Sequence lengths offered for the what-fits table.
FIT_LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
#: GPU counts offered for the what-fits table (over several, a model one GPU does not hold is sharded).
FIT_GPU_COUNTS = (1, 2, 4, 8)


class FitError(ValueError):
    """A model or GPU name that cannot be turned into numbers; one sentence saying what to change."""


def resolve_shape(name: str) -> tuple[str, ModelShape]:
    """(label, shape) for a folder with config.json, a config.json, a catalog name, or a hub id whose config is in
    the local Hugging Face cache (never downloaded)."""
    name = name.strip()
    if not name:
        raise FitError("No model is named; give a folder with config.json, a catalog name or a hub id.")
    path = Path(name).expanduser()
    config_file = path / "config.json" if path.is_dir() else path if path.is_file() else None
    if path.is_dir() and not (path / "config.json").is_file():
        raise FitError(f"{name} has no config.json; point at a model folder or its config.json.")
    if config_file is None:
        entry = load_catalog().model(name)
        if entry is not None:
            return entry.name, entry.shape
        if name.count("/") != 1 or name.startswith(("/", ".", "~")):
            raise FitError(f"{name} is not a folder, a config.json, a catalog model or a hub id.")
        config_file = _cached_hub_config(name)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        return name, shape_from_config(config)
    except (OSError, json.JSONDecodeError) as exc:
        raise FitError(f"Could not read {config_file} ({exc}); give a valid config.json.") from None
    except ValueError as exc:
        raise FitError(str(exc)) from None


def _cached_hub_config(repo_id: str) -> Path:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        raise FitError(f"{repo_id} is not in the catalog and huggingface_hub is not installed; "
                       "give a folder with config.json instead.") from None
    found = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(found, str):
        raise FitError(f"The config of {repo_id} is not in the local Hugging Face cache; download it once "
                       f"(hf download {repo_id} config.json) or give a folder with config.json.")
    return Path(found)


def catalog_gpus() -> list[tuple[str, float]]:
    """(name, memory GiB) of every GPU in the catalog, in catalog order."""
    return [(g.name, g.memory_gib) for g in load_catalog().gpus]


def fit_cell(verdict: str, max_micro_batch: int, shards: int) -> str:
    """A what-fits cell: `fits ×8`, `exceeds`, `fits ×4 fsdp` (sharded over the GPUs: one does not hold it)."""
    batch = f" ×{max_micro_batch}" if max_micro_batch else ""
    return f"{verdict}{batch}{' fsdp' if shards > 1 else ''}"


def fit_table(capacity_gib: float, seq: int, methods: tuple[str, ...] = FIT_METHODS, gpus: int = 1) -> list[FitRow]:
    """What fits in `capacity_gib` (on each of `gpus` GPUs) at `seq` tokens, for every catalog model × method."""
    models = [(m.name, m.shape) for m in load_catalog().models]
    return what_fits(capacity_gib, models, methods, TrainSetup(seq=seq), gpus)


@dataclass(frozen=True)
class SpecEstimate:
    """A spec's predicted peak memory against a GPU: the verdict and the largest micro-batch that fits."""

    model: str
    estimate: MemoryEstimate
    gpu: str
    capacity_gib: float
    verdict: str
    max_micro_batch: int

    def sentence(self) -> str:
        """One line for a person: total, verdict and the micro-batch advice."""
        total = self.estimate.total_gib
        best = (f"largest micro-batch that fits: {self.max_micro_batch}" if self.max_micro_batch
                else "even a micro-batch of 1 does not fit")
        shards = self.estimate.setup.shards
        where = f"on each of {shards} {self.gpu} (FSDP)" if shards > 1 else f"on {self.gpu}"
        return f"{total:.1f} GiB of {self.capacity_gib:.1f} GiB {where}: {self.verdict}; {best}."


def planned_setup(spec: RunSpec, shape: ModelShape, capacity_gib: float) -> TrainSetup:
    """What one GPU of `capacity_gib` holds of the spec's run: sharded when train.strategy says fsdp, or says auto
    and one GPU does not hold it (as the engine decides). Raises ValueError on a setup the estimate refuses."""
    from engine.spec_setup import train_setup

    setup = train_setup(spec)
    if spec.train.strategy == "auto":
        setup = on_gpus(shape, setup, capacity_gib, spec.train.devices * spec.train.nodes)
    setup.check()
    return setup


def estimate_spec(spec: RunSpec, gpu: str, capacity_gib: float) -> SpecEstimate:
    """The spec's peak memory on a GPU with `capacity_gib` free; FitError when the model has no usable config."""
    label, shape = resolve_shape(spec.model.name)
    try:
        setup = planned_setup(spec, shape, capacity_gib)
        est = estimate_peak_memory(shape, setup)
    except ValueError as exc:
        raise FitError(str(exc)) from None
    return SpecEstimate(model=label, estimate=est, gpu=gpu, capacity_gib=capacity_gib,
                        verdict=verdict(est.total_gib, capacity_gib),
                        max_micro_batch=largest_micro_batch(shape, setup, capacity_gib))
