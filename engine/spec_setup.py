"""The memory estimate's view of a run spec (stdlib only: the console and the engine both import it).

Before launch the precision and the loss are not known yet (`auto`), so they are read as on a GPU: bf16 and the
fused loss. A running engine knows them, and the batch and length of the step that matters, and passes them in.
Packed (`train.packing` not off), a micro-batch is its token budget (`train.micro_batch_tokens`) in rows of
`data.max_length`: the same tokens as padded rows, and the unit a micro-batch is counted in everywhere else.
"""

from __future__ import annotations

from engine.estimate import TrainSetup
from engine.spec import SHARDABLE_METHODS, RunSpec, micro_batch_tokens

#: Module names that make a LoRA "attention only" for the estimate.
ATTENTION_MODULES = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj"})


def targets_kind(target_modules: str | list[str]) -> str:
    """`attention` for a non-empty list of attention projections only, else `all-linear`."""
    listed = isinstance(target_modules, list) and bool(target_modules)
    return "attention" if listed and set(target_modules) <= ATTENTION_MODULES else "all-linear"


def train_setup(spec: RunSpec, precision: str | None = None, loss: str | None = None, batch: int | None = None,
                seq: int | None = None) -> TrainSetup:
    """The estimate's description of a step of `spec`; each argument given replaces what the spec says."""
    chosen_precision = spec.train.precision if spec.train.precision != "auto" else "bf16"
    chosen_loss = "standard" if spec.train.loss == "standard" else "fused"  # auto is fused on GPUs
    if spec.train.packing != "off" and batch is None and seq is None:  # the budget in rows of max_length
        budget = micro_batch_tokens(spec)
        batch, seq = max(1, budget // spec.data.max_length), min(budget, spec.data.max_length)
    return TrainSetup(method=spec.method.kind, batch=spec.train.micro_batch if batch is None else batch,
                      seq=spec.data.max_length if seq is None else seq, precision=precision or chosen_precision,
                      rank=spec.method.rank, targets=targets_kind(spec.method.target_modules),
                      dropout=spec.method.dropout, gradient_checkpointing=spec.train.gradient_checkpointing,
                      loss=loss or chosen_loss, double_quant=spec.method.double_quant,
                      master_weights=spec.train.master_weights, shards=planned_shards(spec))


def planned_shards(spec: RunSpec) -> int:
    """The GPUs an explicitly sharded (`train.strategy = "fsdp"`) run spreads over; else 1 (auto decides on the
    unsharded estimate)."""
    sharded = spec.train.strategy == "fsdp" and spec.method.kind in SHARDABLE_METHODS
    return spec.train.devices * spec.train.nodes if sharded else 1
