"""Checkpoints: weights (adapter or model, safetensors) plus the optimizer, scaler, RNG and data position.

Layout: `RUN_DIR/checkpoints/step-000050/{adapter|model}/`, `state.pt` (torch format, loaded with
`weights_only=True`) and `meta.json` (step, validation loss). Resume (`load_state`) restores all of it.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from engine.runlock import writing_into
from engine.train.batching import StreamState

STATE_FILE = "state.pt"
META_FILE = "meta.json"
#: `state.pt`'s `optimizer_keys`: the optimizer state is keyed by parameter name (older checkpoints: by
#: position), so any layout (one process, DDP, FSDP; any number of ranks) can resume it.
OPTIMIZER_BY_NAME = "by-name"
#: ... or it is not in `state.pt` but in the checkpoint's `optimizer/` folder, one shard per rank
#: (`engine/train/sharded_state.py`), also by name.
OPTIMIZER_SHARDED = "sharded"
OPTIMIZER_FOLDER = "optimizer"


def folder_bytes(path: Path) -> int:
    """Total size of the files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def save_weights(model: Any, out: Path, tokenizer: Any | None = None,
                 state_dict: dict[str, Any] | None = None) -> Path:
    """Save an adapter (peft model) to `out/adapter` or the whole model to `out/model`, as safetensors
    (`state_dict`: the full weights of a sharded model, gathered)."""
    target = out / ("adapter" if hasattr(model, "peft_config") else "model")
    model.save_pretrained(target, safe_serialization=True, **({"state_dict": state_dict} if state_dict else {}))
    if tokenizer is not None:
        tokenizer.save_pretrained(target)
    return target


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_folder(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of `step` lives (once complete)."""
    return run_dir / "checkpoints" / f"step-{step:06d}"


def save_checkpoint(run_dir: Path, step: int, model: Any, optimizer_state: dict[str, Any] | Path,
                    scaler: torch.amp.GradScaler | None, stream: StreamState,
                    val_loss: float | None, extra: dict[str, Any] | None = None,
                    weights: dict[str, Any] | None = None) -> Path:
    """Write one checkpoint folder for `step` and return it (`optimizer_state`: by parameter name, or the folder
    the ranks wrote their shards of it into, moved in as `optimizer/`; `extra`: more plain data for `state.pt`;
    `weights`: a sharded model's whole trainable weights, gathered)."""
    folder = checkpoint_folder(run_dir, step)
    tmp = folder.with_name(folder.name + ".tmp")
    with writing_into(run_dir, tmp, folder):  # a run folder deleted meanwhile is not recreated by the save
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(exist_ok=True)  # never the run folder itself: a deleted run stays deleted
        tmp.mkdir()
        save_weights(model, tmp, state_dict=weights)
        sharded = isinstance(optimizer_state, Path)
        if isinstance(optimizer_state, Path):
            optimizer_state.rename(tmp / OPTIMIZER_FOLDER)
        torch.save(
            {
                "step": step,
                "stream": asdict(stream),
                "optimizer": None if sharded else optimizer_state,
                "optimizer_keys": OPTIMIZER_SHARDED if sharded else OPTIMIZER_BY_NAME,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": rng_state(),
                **(extra or {}),
            },
            tmp / STATE_FILE,
        )
        (tmp / META_FILE).write_text(json.dumps({"step": step, "val_loss": val_loss}))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)  # a checkpoint folder either is complete or does not exist
    return folder


def read_weights(folder: Path, is_adapter: bool) -> dict[str, torch.Tensor]:
    """A checkpoint's adapter or model weights (safetensors, possibly in several files)."""
    from safetensors.torch import load_file

    source = folder / ("adapter" if is_adapter else "model")
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(source.glob("*.safetensors")):
        tensors.update(load_file(shard))
    if not tensors:
        raise FileNotFoundError(f"no safetensors weights in {source}")
    return tensors


def load_weights(model: Any, folder: Path) -> None:
    """Load a checkpoint's adapter or model weights into `model` (not sharded) in place."""
    is_adapter = hasattr(model, "peft_config")
    source = folder / ("adapter" if is_adapter else "model")
    tensors = read_weights(folder, is_adapter)
    if is_adapter:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, tensors)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
    else:
        result = model.load_state_dict(tensors, strict=False)  # tied weights are saved once
        unexpected = list(result.unexpected_keys)
    if unexpected:
        raise ValueError(f"checkpoint {source} has weights this model lacks: {unexpected[:3]}")


def load_state(folder: Path) -> dict[str, Any]:
    """The training state of a checkpoint (tensors and plain data only: `weights_only=True`)."""
    return torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path, float | None]]:
    """(step, folder, val_loss) for each complete checkpoint, oldest first."""
    found = []
    for meta in (run_dir / "checkpoints").glob(f"step-*/{META_FILE}"):
        try:
            info = json.loads(meta.read_text())
            found.append((int(info["step"]), meta.parent, info.get("val_loss")))
        except (OSError, ValueError, KeyError, TypeError):  # a damaged checkpoint is skipped, not fatal
            continue
    return sorted(found)


def prune_checkpoints(run_dir: Path, keep_last: int, keep_best: bool) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints (0 keeps all) and, if asked, the best by val loss."""
    found = list_checkpoints(run_dir)
    if keep_last <= 0 or len(found) <= keep_last:
        return []
    keep = {folder for _, folder, _ in found[-keep_last:]}
    scored = [(loss, folder) for _, folder, loss in found if loss is not None]
    if keep_best and scored:
        keep.add(min(scored, key=lambda pair: pair[0])[1])
    removed = [folder for _, folder, _ in found if folder not in keep]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed
