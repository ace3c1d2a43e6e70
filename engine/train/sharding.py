"""Sharded data parallelism (FSDP2): full fine-tuning of a model whose weights, gradients and optimizer states do
not fit one GPU, spread over the ranks with `torch.distributed.fsdp.fully_shard`.

Each decoder layer is one shard unit and the step's forward (`StepLoss`: the model and its loss) is the root, so
the embeddings, final norm and output layer (tied or not) are gathered for the forward the loss runs, whichever
loss it is. Compute runs in the run's 16-bit dtype with gradients reduced in fp32 (`MixedPrecisionPolicy`).
LoRA and DoRA shard the same way: the frozen 16-bit base and the adapters of each layer are one unit, and only
the adapters are trained and saved. Checkpoints: `engine/train/sharded_state.py`. Evaluation runs on every rank
(a forward needs all of them) and rank 0 reports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from engine.estimate import FIT_MARGIN, verdict
from engine.spec import SHARDABLE_METHODS
from engine.train.distributed import StepLoss
from engine.train.speedups import decoder_layers

if TYPE_CHECKING:
    from engine.train.loop import Trainer

def choose_strategy(trainer: Trainer, world: int, log: Any) -> str:
    """`single`, `ddp` or `fsdp` for this run, with one log line saying why when more than one process trains."""
    setting = trainer.spec.train.strategy
    if world == 1:
        return "single"
    if setting != "auto":
        log(f"Data parallel over {world} processes with {setting.upper()}, as train.strategy asks.")
        return setting
    if trainer.spec.method.kind not in SHARDABLE_METHODS or trainer.device.type != "cuda":
        log(f"Data parallel over {world} processes with DDP (each holds the whole model).")
        return "ddp"
    from engine.train.rehearsal import planned_estimate

    estimate = planned_estimate(trainer)
    free_gib = torch.cuda.mem_get_info(trainer.device)[0] / 2**30  # as the console's estimates judge it
    needed = estimate["total_gib"] if estimate else None
    sharded = needed is not None and verdict(needed, free_gib) != "fits"
    # rank 0 decides for all: each GPU's free memory can differ, and the ranks must agree
    if trainer.dist.share_int(int(sharded), trainer.device):
        need = f"about {needed:.1f} GiB" if needed is not None else "more"
        log(f"Data parallel over {world} processes with FSDP: {trainer.spec.method.kind} needs {need} a GPU unsharded, "
            f"more than the {free_gib:.1f} GiB free on rank 0's GPU holds with {FIT_MARGIN:.0%} to spare.")
        return "fsdp"
    log(f"Data parallel over {world} processes with DDP: the unsharded estimate fits one GPU.")
    return "ddp"


def shard(trainer: Trainer) -> None:
    """Shard the trainer's model (full, or a 16-bit base with its adapters) over the ranks (each decoder layer, then the step's forward as the root) and
    rebuild its optimizer over the sharded parameters."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from engine.train.loop import build_optimizer

    layers = decoder_layers(trainer.model)
    if not layers:
        raise ValueError("train.strategy fsdp finds no decoder layers to shard in this model; use ddp.")
    policy = MixedPrecisionPolicy(param_dtype=trainer.dtype, reduce_dtype=torch.float32) if trainer.dtype \
        else MixedPrecisionPolicy()
    for layer in layers:
        fully_shard(layer, mp_policy=policy)
    root = StepLoss(trainer.model, trainer.loss_fn)
    fully_shard(root, mp_policy=policy)
    trainer.step_loss = root
    trainer.optimizer = build_optimizer(trainer.model, trainer.cfg.lr, trainer.cfg.weight_decay, trainer.device)
    trainer.params = [p for p in trainer.model.parameters() if p.requires_grad]


def set_gradient_sync(step_loss: Any, sync: bool) -> None:
    """Reduce-scatter the gradients in this micro-batch's backward (the step's last), or only accumulate."""
    step_loss.set_requires_gradient_sync(sync)


@contextmanager
def gathered(step_loss: Any) -> Iterator[None]:
    """The root's weights (embeddings, norm, output layer) gathered on every rank, for forwards outside the
    training step (evaluation, generation); the layers gather their own."""
    step_loss.unshard()
    try:
        yield
    finally:
        step_loss.reshard()
