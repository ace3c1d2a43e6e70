"""The model shortlist: candidates from the catalog or any hub id or local folder, with what a choice needs.

For each candidate: parameters, context length, licence, gated or not, the memory verdict for the chosen
method on this GPU (its free memory now; with no GPU, a GPU picked from the catalog), and its latest quick
evaluation. The list lives in `Store.shortlist()`; the method, the GPU to plan for and the dataset to
evaluate on are settings. Light: no textual, no ML stack (the GPU is read through `slmtui.gpu`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.catalog import ModelShape, count_params, load_catalog, shape_from_config
from engine.estimate import TrainSetup, estimate_peak_memory, largest_micro_batch, verdict
from engine.protocol import SPEC_FILE
from slmtui.store import EvalResult, Store
from slmtui.target_gpu import target_gpu

METHODS = ("lora", "qlora", "dora", "qdora", "full")
#: Settings keys (Store.setting) the shortlist keeps.
METHOD_KEY, DATA_KEY, SUBSET_KEY = "shortlist.method", "shortlist.data", "shortlist.subset"
#: Tokens per sequence the verdict assumes (or the model's context, when shorter).
VERDICT_SEQ = 1024


class ShortlistError(Exception):
    """A candidate that cannot be added; one sentence."""


@dataclass(frozen=True)
class Candidate:
    """A model someone may fine-tune, and what is known about it without loading it."""

    model: str
    source: str  # "catalog", "folder", "run", "adapter" or "hub"
    name: str
    params: float | None = None
    context_length: int | None = None
    license: str = ""
    gated: bool | None = None
    shape: ModelShape | None = None
    note: str = ""


@dataclass(frozen=True)
class GpuTarget:
    """The memory a verdict is against: this machine's GPU (free now) or one picked from the catalog."""

    name: str
    capacity_gib: float
    here: bool
    reason: str = ""


@dataclass(frozen=True)
class Fit:
    """The memory verdict of a candidate for a method on a GPU."""

    verdict: str  # fits, tight, exceeds, unknown
    total_gib: float | None = None
    max_micro_batch: int | None = None


@dataclass(frozen=True)
class ShortlistRow:
    """One line of the shortlist screen."""

    candidate: Candidate
    fit: Fit
    result: EvalResult | None = None


def _read_config(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _from_config(model: str, source: str, folder: Path, note: str = "") -> Candidate:
    config = _read_config(folder)
    if config is None:
        return Candidate(model=model, source=source, name=folder.name, note=note or "no readable config.json")
    try:
        shape = shape_from_config(config)
    except ValueError as exc:
        return Candidate(model=model, source=source, name=folder.name, note=str(exc))
    return Candidate(model=model, source=source, name=folder.name, params=float(count_params(shape)),
                     context_length=shape.context_length, license="local", gated=False, shape=shape, note=note)


def describe(model: str) -> Candidate:
    """What is known about a candidate: the catalog's entry, a local folder's config, or just its hub id."""
    entry = load_catalog().model(model)
    if entry is not None:
        return Candidate(model=entry.hub_id, source="catalog", name=entry.name, params=entry.params,
                         context_length=entry.context_length, license=entry.license, gated=entry.gated,
                         shape=entry.shape, note=entry.note)
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / SPEC_FILE).is_file():
            base = _run_base(path)
            found = describe(base) if base else Candidate(model=model, source="run", name=path.name)
            return replace(found, model=model, source="run", name=path.name, note=f"fine-tuned from {base}")
        if (path / "adapter_config.json").is_file():
            return Candidate(model=model, source="adapter", name=path.name, note="an adapter on its base model")
        return _from_config(model, "folder", path)
    hub = _cached_hub_folder(model)
    if hub is not None:
        return replace(_from_config(model, "hub", hub), name=model, license="", gated=None)
    return Candidate(model=model, source="hub", name=model, note="not in the catalog; its size is unknown here")


def _run_base(run_dir: Path) -> str:
    from engine.spec import SpecError, load_spec

    try:
        return load_spec(run_dir / SPEC_FILE, check_files=False).model.name
    except SpecError:
        return ""


def _cached_hub_folder(repo_id: str) -> Path | None:
    """The folder of a hub model's config.json in the local Hugging Face cache (never downloads)."""
    if repo_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def check_model(model: str) -> str:
    """The model argument, trimmed; raises `ShortlistError` when it names nothing that could exist."""
    model = model.strip()
    if not model:
        raise ShortlistError("Type a catalog name, a hub id (owner/name) or a local folder.")
    path = Path(model).expanduser()
    if load_catalog().model(model) is not None or path.is_dir():
        return model
    if model.startswith(("/", ".", "~")) or model.count("/") != 1:
        raise ShortlistError(f"{model!r} is neither a catalog model, a hub id (owner/name) nor an existing folder.")
    return model


# ---------------------------------------------------------------------- the list and its settings


def models(store: Store) -> list[str]:
    """The shortlisted models, in the order they were added."""
    return [str(item["model"]) for item in store.shortlist() if item.get("model")]


def add(store: Store, model: str) -> str:
    """Add a candidate (a catalog name becomes its hub id); returns what was added. Adding twice is a no-op."""
    model = check_model(model)
    entry = load_catalog().model(model)
    key = entry.hub_id if entry is not None else model
    items = store.shortlist()
    if all(item.get("model") != key for item in items):
        store.save_shortlist([*items, {"model": key, "added": time.time()}])
    return key


def remove(store: Store, model: str) -> None:
    store.save_shortlist([item for item in store.shortlist() if item.get("model") != model])


def method(store: Store) -> str:
    value = store.setting(METHOD_KEY, "lora")
    return value if value in METHODS else "lora"


def gpu_target(store: Store, inventory: Any | None = None) -> GpuTarget:
    """This machine's first GPU and its free memory; with none, the catalog GPU chosen in the settings."""
    from engine.protocol import GIB

    if inventory is None:
        from slmtui.gpu import inventory as take

        inventory = take()
    free = inventory.gpus[0].memory_free if inventory.gpus else None
    if isinstance(free, int):
        return GpuTarget(f"GPU 0 {inventory.gpus[0].name} (free now)", free / GIB, True)
    catalog = load_catalog()
    picked = catalog.gpu(target_gpu(store)) or catalog.gpus[0]
    reason = inventory.error or "no NVIDIA GPU is visible"
    return GpuTarget(picked.name, picked.memory_gib, False, reason)


def fit(candidate: Candidate, method_kind: str, target: GpuTarget) -> Fit:
    """The estimate's verdict at micro-batch 1 and the largest micro-batch that fits (bf16, LoRA rank 16)."""
    if candidate.shape is None:
        return Fit("unknown")
    seq = min(VERDICT_SEQ, candidate.context_length or VERDICT_SEQ)
    setup = TrainSetup(method=method_kind, batch=1, seq=seq)
    total = estimate_peak_memory(candidate.shape, setup).total_gib
    return Fit(verdict(total, target.capacity_gib), total, largest_micro_batch(candidate.shape, setup,
                                                                                target.capacity_gib))


def rows(store: Store, target: GpuTarget, data: str | None = None) -> list[ShortlistRow]:
    """The shortlist as the screen shows it; `data` picks the evaluations shown (default: the setting)."""
    from slmtui.evals import latest_by_model

    data = data if data is not None else str(store.setting(DATA_KEY, "") or "")
    kind = method(store)
    latest = latest_by_model([r for r in store.eval_results() if r.role is None and (not data or r.data == data)])
    out = []
    for model in models(store):
        candidate = describe(model)
        out.append(ShortlistRow(candidate, fit(candidate, kind, target), latest.get(model)))
    return out


def catalog_choices() -> list[tuple[str, str]]:
    """(label, hub id) of every catalog model, for the add box."""
    return [(f"{m.name} ({m.params / 1e9:.2g}B, {m.license}{', gated' if m.gated else ''})", m.hub_id)
            for m in load_catalog().models]


def evaluation_data(store: Store, home: Path) -> str:
    """The dataset quick evaluations run on: the one chosen last, else the demo's when it is built."""
    chosen = store.setting(DATA_KEY, "")
    if isinstance(chosen, str) and chosen:
        return chosen
    from engine.paths import demo_dir

    demo = demo_dir(home) / "data" / "tickets.jsonl"
    return str(demo) if demo.is_file() else ""
