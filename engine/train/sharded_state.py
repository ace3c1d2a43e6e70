"""What a checkpoint holds of the weights and the optimizer, so that a run resumes under any layout: one process,
DDP or FSDP, on any number of processes.

Every checkpoint has the whole trainable weights in safetensors (the adapter, or the model), which export,
evaluation and the playground read. The optimizer state is keyed by parameter name, never by position:

- a run that is not sharded keeps it in `state.pt` (`OPTIMIZER_BY_NAME`);
- a sharded run on one machine writes it through `torch.distributed.checkpoint` into the checkpoint's
  `optimizer/` folder (`OPTIMIZER_SHARDED`): every rank writes its own shard, nothing is gathered on rank 0, and
  any number of processes, sharded or not, reads it back resharded to their layout;
- a sharded run over several machines gathers it by name into rank 0's `state.pt`, since each machine has its own
  run folder and none would see every rank's shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.train.checkpoint import OPTIMIZER_FOLDER, read_weights

if TYPE_CHECKING:
    from engine.train.loop import Trainer


def gathered_weights(trainer: Trainer) -> dict[str, Any]:
    """The whole trainable weights of a sharded model (all of them, or the adapters) on rank 0, on the CPU; empty
    on the others. Every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    return get_model_state_dict(trainer.model, options=options)


def gathered_optimizer_state(trainer: Trainer) -> dict[str, Any]:
    """A sharded optimizer's whole state by parameter name on rank 0 (on the CPU); empty on the others. Every rank
    must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(trainer.model, trainer.optimizer, options=options)


def named_optimizer_state(trainer: Trainer) -> dict[str, Any]:
    """An unsharded optimizer's state by parameter name."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(trainer.model, trainer.optimizer, options=StateDictOptions(full_state_dict=True))


def staged_optimizer_folder(checkpoint: Path) -> Path:
    """Where the ranks write a checkpoint's sharded optimizer state before rank 0 completes the checkpoint."""
    return checkpoint.with_name(checkpoint.name + f".{OPTIMIZER_FOLDER}.tmp")


def write_sharded_optimizer(trainer: Trainer, folder: Path) -> None:
    """Every rank writes its shard of the optimizer state into `folder`; rank 0 adds the index when all are done.
    Every rank must call it."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    dcp.save({OPTIMIZER_FOLDER: get_optimizer_state_dict(trainer.model, trainer.optimizer)}, checkpoint_id=folder)


def read_sharded_optimizer(trainer: Trainer, folder: Path) -> None:
    """Load an optimizer state written by `write_sharded_optimizer`, under any number of processes, sharded or
    not (every rank of this run calls it)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    state = {OPTIMIZER_FOLDER: get_optimizer_state_dict(trainer.model, trainer.optimizer)}
    dcp.load(state, checkpoint_id=folder)
    set_optimizer_state_dict(trainer.model, trainer.optimizer, state[OPTIMIZER_FOLDER])


def load_named_state(trainer: Trainer, weights: dict[str, Any] | None, optimizer: dict[str, Any] | None) -> None:
    """Load whole weights by parameter name and an optimizer state by parameter name (either may be None) into
    this trainer, sharded or not."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, strict=False)
    if weights is not None:
        set_model_state_dict(trainer.model, weights, options=options)
    if optimizer is not None:
        set_optimizer_state_dict(trainer.model, trainer.optimizer, optimizer, options=options)


def weights_by_name(model: Any, checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's saved weights keyed by the model's own parameter names. An adapter's files use peft's saved
    names (no adapter name; DoRA's magnitudes without `.weight`): peft's own save mapping, run on the parameter
    names, gives each saved name its parameter."""
    if not hasattr(model, "peft_config"):
        return read_weights(checkpoint, is_adapter=False)
    import torch
    from peft import get_peft_model_state_dict

    saved = read_weights(checkpoint, is_adapter=True)
    names = [name for name, param in model.named_parameters() if param.requires_grad]
    probe = {name: torch.tensor(index) for index, name in enumerate(names)}
    name_of = {key: names[int(index)] for key, index in get_peft_model_state_dict(model, state_dict=probe).items()}
    named = {name_of[key]: tensor for key, tensor in saved.items() if key in name_of}
    if len(named) != len(saved):
        raise ValueError(f"its adapter has {len(saved)} tensors, of which this model's adapter takes {len(named)}")
    return named
