"""Predicted peak GPU memory of one training step, and what fits on a GPU (stdlib only: the console imports it).

The model is physical: it counts the tensors PyTorch keeps alive at the moment memory peaks, for a Llama/Qwen2-style
block trained the way PEFT and the Hugging Face models do it (bf16 autocast, sdpa attention):

- weights: 16-bit, or 4-bit NF4 for the linear layers under QLoRA (0.5 byte a weight, plus one 8-bit absmax
  per 64 weights and one fp32 constant per 256 blocks with double quantisation, one fp32 absmax per 64 without);
- trainable parameters: LoRA adapters live in fp32 (PEFT upcasts them), full fine-tuning keeps the model's dtype;
  their gradients and optimizer states (AdamW: two of the same size);
- activations saved for backward, per layer and token: the fp32 copy each RMSNorm makes of its input; the input
  of each trained linear layer (PEFT casts it to fp32 for the adapter and autocast casts it back, so every adapted
  module keeps its own copy; bitsandbytes layers share one); the MLP's gate, activation and up outputs;
  and for attention (sdpa flash/efficient kernels) q, k, v, the output and the log-sum-exp;
- logits: the standard loss upcasts the vocab × tokens logits to fp32, and its backward holds three fp32 tensors of
  that size at once (the saved log-softmax, its incoming gradient and its result), while the 16-bit logits' block
  stays cached; a fused (chunked) loss holds only a chunk;
- the CUDA context, and allocator overhead (cached blocks and rounding).

Measured with a plain HF Trainer on an H200 (peak reserved): Qwen2.5-0.5B LoRA 8×1024 29.03 GiB, full 16×512
32.51 GiB, Qwen2.5-1.5B QLoRA 8×1024 39.00 GiB; tests/test_estimate.py checks the model against them, and
bench/estimate_vs_hf.py against more (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from engine.catalog import ModelShape
from engine.protocol import GIB
from engine.spec import SHARDABLE_METHODS

METHODS = ("full", "lora", "qlora", "dora", "qdora")
RUNNERS = ("engine", "hf")
PRECISIONS = ("bf16", "fp16", "fp32")
OPTIMIZERS = ("adamw", "adamw8bit", "sgd", "adafactor")
LOSSES = ("fused", "standard")
TARGETS = ("all-linear", "attention")

#: Tokens a fused (chunked) cross-entropy turns into logits at a time.
FUSED_LOSS_CHUNK_TOKENS = 1024
#: The CUDA context and kernels, outside PyTorch's allocator.
CUDA_CONTEXT_GIB = 0.5
#: Allocator rounding and block splitting, as a share of the live peak.
ALLOCATOR_SLACK = 0.02
#: "fits" leaves this share of the GPU free; "tight" is up to the whole GPU.
FIT_MARGIN = 0.10

Verdict = Literal["fits", "tight", "exceeds"]


@dataclass(frozen=True)
class TrainSetup:
    """How a step is run: everything besides the model shape that changes memory."""

    method: str = "lora"
    batch: int = 8
    seq: int = 1024
    precision: str = "bf16"
    rank: int = 16
    targets: str = "all-linear"
    dropout: float = 0.0
    optimizer: str = "adamw"
    gradient_checkpointing: bool = False
    loss: str = "fused"
    double_quant: bool = True
    runner: str = "engine"
    """`engine`: this project's loop (full fine-tuning's master weights as `master_weights` says, QDoRA cast
    back to the compute dtype); `hf`: plain HF Trainer with a 16-bit model (pure 16-bit full fine-tuning, QDoRA's
    fp32 promotion)."""
    master_weights: str = "fp32"
    """Full fine-tuning in bf16: `fp32` master weights, gradients and optimizer states under autocast, or `bf16`
    for all of them (the engine's `train.master_weights`)."""
    shards: int = 1
    """Under FSDP (full fine-tuning, LoRA, DoRA): the GPUs its weights, gradients and optimizer states are sharded
    over (the estimate is then per GPU); 1, not sharded."""

    def check(self) -> None:
        """Raise ValueError (one sentence) on a value the estimate does not know."""
        for name, value, allowed in (("method", self.method, METHODS), ("precision", self.precision, PRECISIONS),
                                     ("optimizer", self.optimizer, OPTIMIZERS), ("loss", self.loss, LOSSES),
                                     ("targets", self.targets, TARGETS), ("runner", self.runner, RUNNERS)):
            if value not in allowed:
                raise ValueError(f"Unknown {name} {value!r}: use one of {', '.join(allowed)}.")
        if self.master_weights not in ("fp32", "bf16"):
            raise ValueError(f"Unknown master_weights {self.master_weights!r}: use fp32 or bf16.")
        if self.shards < 1:
            raise ValueError(f"Sharding over {self.shards} GPUs is not possible: use 1 GPU or more.")
        if self.shards > 1 and self.method not in SHARDABLE_METHODS:
            raise ValueError(f"FSDP shards {', '.join(SHARDABLE_METHODS)}, not {self.method}: its 4-bit base model is "
                             "not sharded, so each GPU holds it whole.")
        if self.batch < 1 or self.seq < 1 or self.rank < 1:
            raise ValueError("Batch, sequence length and rank must be at least 1.")


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted peak device memory of a training step; `breakdown` (GiB) sums to `total_gib`."""

    total_gib: float
    breakdown: dict[str, float]
    peak_phase: str
    params_total: int
    params_trainable: int
    setup: TrainSetup
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data


def _act_bytes(setup: TrainSetup) -> int:
    return 4 if setup.precision == "fp32" else 2


def _fp32_master(setup: TrainSetup) -> bool:
    """Full fine-tuning that keeps fp32 weights, gradients and optimizer states and casts under autocast."""
    pure_bf16 = setup.precision == "bf16" and (setup.runner == "hf" or setup.master_weights == "bf16")
    return setup.method == "full" and not pure_bf16


def _quantised(setup: TrainSetup) -> bool:
    return setup.method in ("qlora", "qdora")


def _targeted(shape: ModelShape, setup: TrainSetup) -> list[tuple[str, int, int]]:
    if setup.method == "full":
        return []
    linears = shape.linear_shapes()
    if setup.targets == "attention":
        return [m for m in linears if m[0] in ("q_proj", "k_proj", "v_proj", "qkv_proj", "o_proj")]
    return linears


def trainable_params(shape: ModelShape, setup: TrainSetup) -> int:
    """Parameters the optimizer updates: the whole model, or the adapters (plus DoRA's magnitudes)."""
    from engine.catalog import count_params

    if setup.method == "full":
        return count_params(shape) - shape.vision_params()
    per_layer = sum(setup.rank * (fan_in + fan_out) for _, fan_in, fan_out in _targeted(shape, setup))
    if setup.method in ("dora", "qdora"):
        per_layer += sum(fan_out for _, _, fan_out in _targeted(shape, setup))
    return shape.num_hidden_layers * per_layer


def _weight_bytes(shape: ModelShape, setup: TrainSetup) -> float:
    from engine.catalog import count_params

    total = count_params(shape)
    if setup.method == "full":
        if _fp32_master(setup) and setup.precision != "fp32":
            # fp32 masters, plus the 16-bit copy autocast makes of each weight, saved by autograd for backward.
            return total * (4 + 2)
        # HF Trainer with a bf16 model trains in pure bf16.
        return total * (4 if _fp32_master(setup) else 2)
    wbytes = _act_bytes(setup)
    if not _quantised(setup):
        return total * wbytes
    linear = shape.num_hidden_layers * shape.layer_linear_params()
    constants = linear / 64 + linear / (64 * 256) * 4 if setup.double_quant else linear / 64 * 4
    return linear * 0.5 + constants + (total - linear) * 2


def _optimizer_bytes_per_param(setup: TrainSetup, param_bytes: int) -> float:
    return {"adamw": 2 * param_bytes, "adamw8bit": 2.0, "sgd": 0.0, "adafactor": 0.0}[setup.optimizer]


def _layer_bytes_per_token(shape: ModelShape, setup: TrainSetup) -> tuple[float, float]:
    """(other activations, attention) saved for backward by one decoder layer, per token."""
    act = _act_bytes(setup)
    h, q, kv, inter = shape.hidden_size, shape.q_dim, shape.kv_dim, shape.intermediate_size
    full = setup.method == "full"
    # PEFT's bitsandbytes DoRA path under autocast returns the fp32 result of the magnitude scaling without
    # casting it back, so the residual stream and the MLP's tensors run in fp32 from the first layer on.
    promoted = setup.method == "qdora" and act < 4 and setup.runner == "hf"
    norms = shape.norms_per_layer * 4 * h + (shape.norms_per_layer * act * h if full else 0)
    if shape.qk_norm:
        norms += 4 * (q + kv) + (act * (q + kv) if full else 0)
    # Linear inputs, grouped by the tensor the layers read.
    groups = {"attn": h, "o": q, "mlp": h, "down": inter}
    group_of = {"q_proj": "attn", "k_proj": "attn", "v_proj": "attn", "qkv_proj": "attn", "o_proj": "o",
                "gate_proj": "mlp", "up_proj": "mlp", "gate_up_proj": "mlp", "down_proj": "down"}
    inputs = 0.0
    if full:
        inputs = act * sum(groups.values())
    else:
        # PEFT's fp32 cast and autocast's cast back give each adapted module its own copy; bitsandbytes layers
        # (and fp32 runs) skip the cast, so modules reading one tensor share it. Dropout always copies, plus a mask.
        separate = (not _quantised(setup) and act < 4) or setup.dropout > 0 or promoted
        seen: set[str] = set()
        for name, fan_in, fan_out in _targeted(shape, setup):
            group = group_of[name]
            if separate or group not in seen:
                inputs += act * fan_in
            if setup.dropout > 0:
                inputs += fan_in  # the bool mask
            seen.add(group)
            inputs += act * setup.rank  # the adapter's bottleneck, kept for lora_B
            if setup.method in ("dora", "qdora"):
                # base and adapter outputs, kept for the magnitude's gradient
                inputs += ((4 if promoted else act) + act) * fan_out
    mlp = 3 * (4 if promoted else act) * inter  # gate output (activation input), activation output, up output
    attention = act * (2 * q + 2 * kv) + 4 * shape.num_attention_heads
    return norms + inputs + mlp, attention


def _logits_bytes(shape: ModelShape, setup: TrainSetup, tokens: int) -> tuple[float, float]:
    """(live at the loss's backward, cached block left over) for the logits."""
    vocab, act = shape.vocab_size, _act_bytes(setup)
    if setup.loss == "fused":
        chunk = min(tokens, FUSED_LOSS_CHUNK_TOKENS)
        return 3 * 4 * chunk * vocab + 4 * tokens * shape.hidden_size, 0.0
    live = 3 * 4 * tokens * vocab
    if shape.model_type == "gemma2":  # final logit soft-capping keeps tanh's output and a scaled copy
        live += 2 * act * tokens * vocab
    return live, (act * tokens * vocab if act < 4 else 0.0)


def estimate_peak_memory(shape: ModelShape, setup: TrainSetup | None = None, **changes: Any) -> MemoryEstimate:
    """Predicted peak memory of a training step of `shape` under `setup` (fields may be overridden by keyword)."""
    from engine.catalog import count_params

    setup = replace(setup or TrainSetup(), **changes)
    setup.check()
    tokens = setup.batch * setup.seq
    act = _act_bytes(setup)
    layers = shape.num_hidden_layers

    weights = _weight_bytes(shape, setup)
    n_train = trainable_params(shape, setup)
    param_bytes = 2 if setup.method == "full" and not _fp32_master(setup) else 4
    adapters = 0.0 if setup.method == "full" else n_train * 4.0
    grads = float(n_train * param_bytes)
    states = n_train * _optimizer_bytes_per_param(setup, param_bytes)
    if setup.shards > 1:  # FSDP: a GPU holds its share, plus what is gathered whole in 16 bits at a time
        gathered = 2 * (shape.embedding_params() + 2 * (shape.layer_linear_params() + shape.layer_other_params()))
        weights, adapters = weights / setup.shards + gathered, adapters / setup.shards
        grads, states = grads / setup.shards, states / setup.shards

    other, attention = _layer_bytes_per_token(shape, setup)
    final_norm = 4 * shape.hidden_size + (2 * act * shape.hidden_size if setup.method == "full" else 0)
    if setup.gradient_checkpointing:
        # Each layer keeps only its input; backward recomputes one layer at a time.
        activations = tokens * (layers * act * shape.hidden_size + other + final_norm)
        attention_live = tokens * attention
    else:
        activations = tokens * (layers * other + final_norm)
        attention_live = tokens * layers * attention
    logits, cached_logits = _logits_bytes(shape, setup, tokens)
    # Gradients flowing back through one layer (MLP-sized), plus a dequantised or DoRA-merged weight.
    workspace = tokens * act * (3 * shape.intermediate_size + 2 * shape.hidden_size)
    biggest = max(fan_in * fan_out for _, fan_in, fan_out in shape.linear_shapes())
    if _quantised(setup):
        workspace += 2 * biggest
    if setup.method in ("dora", "qdora"):
        workspace += 8 * biggest
    if setup.method == "full" and setup.loss == "fused":
        # The fused loss accumulates the output weight's gradient in fp32 across its chunks.
        workspace += 4 * shape.vocab_size * shape.hidden_size

    static = weights + adapters + states
    phases: dict[str, dict[str, float]] = {
        # The loss's backward: every activation still saved, the logits at their largest, no gradients yet.
        "loss backward": {"logits": logits},
        # Backward through the last layer: activations still saved, gradients arriving.
        "layer backward": {"workspace": workspace, "gradients": grads},
    }
    live_by_phase = {name: static + activations + attention_live + sum(extra.values())
                     for name, extra in phases.items()}
    peak_phase = max(live_by_phase, key=lambda name: live_by_phase[name])
    live = live_by_phase[peak_phase]
    # The 16-bit logits' block, freed before the loss's backward, is too small for the fp32 tensors it needs,
    # so it stays cached through the peak; the rest is rounding and split blocks.
    overhead = cached_logits + ALLOCATOR_SLACK * live
    parts = {"weights": weights, "adapter weights": adapters, "optimizer states": states,
             "activations": activations, "attention": attention_live,
             "logits": phases["loss backward"]["logits"] if peak_phase == "loss backward" else 0.0,
             "gradients": grads if peak_phase == "layer backward" else 0.0,
             "workspace": workspace if peak_phase == "layer backward" else 0.0,
             "allocator overhead": overhead}
    breakdown = {k: round(v / GIB, 3) for k, v in parts.items()}
    breakdown["cuda context"] = CUDA_CONTEXT_GIB
    total = sum(parts.values()) / GIB + CUDA_CONTEXT_GIB
    notes = []
    if setup.loss == "fused":
        notes.append(f"Fused loss: logits are made {FUSED_LOSS_CHUNK_TOKENS} tokens at a time.")
    if shape.vision is not None:
        notes.append("The vision tower's weights are counted; images are not.")
    if setup.shards > 1:
        notes.append(f"FSDP over {setup.shards} GPUs: per GPU, 1/{setup.shards} of the weights, gradients and "
                     "optimizer states, with the embeddings and two layers gathered whole.")
    return MemoryEstimate(total_gib=round(total, 3), breakdown=breakdown, peak_phase=peak_phase,
                          params_total=count_params(shape), params_trainable=n_train, setup=setup,
                          notes=tuple(notes))


def verdict(total_gib: float, capacity_gib: float) -> Verdict:
    """fits (leaves FIT_MARGIN free), tight (fits with less to spare), or exceeds."""
    if total_gib <= capacity_gib * (1 - FIT_MARGIN):
        return "fits"
    return "tight" if total_gib <= capacity_gib else "exceeds"


def on_gpus(shape: ModelShape, setup: TrainSetup, capacity_gib: float, gpus: int) -> TrainSetup:
    """How `train.strategy = "auto"` trains `setup` on `gpus` GPUs of `capacity_gib` each: sharded over all of them
    (FSDP) when its method can be and one GPU does not hold it with FIT_MARGIN to spare; otherwise as it is (one
    GPU, or DDP: each GPU holds the whole model)."""
    if gpus > 1 and setup.shards == 1 and setup.method in SHARDABLE_METHODS \
            and verdict(estimate_peak_memory(shape, setup).total_gib, capacity_gib) != "fits":
        return replace(setup, shards=gpus)
    return setup


def largest_micro_batch(shape: ModelShape, setup: TrainSetup, capacity_gib: float, limit: int = 4096) -> int:
    """The largest micro-batch at `setup.seq` whose estimate fits with the margin; 0 when even 1 does not."""
    def fits(batch: int) -> bool:
        return verdict(estimate_peak_memory(shape, setup, batch=batch).total_gib, capacity_gib) == "fits"

    if not fits(1):
        return 0
    low, high = 1, 2
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:  # memory grows with batch, so bisect between the last fit and the first miss
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


@dataclass(frozen=True)
class FitRow:
    """One model × method on one GPU."""

    model: str
    method: str
    verdict: Verdict
    total_gib: float  # at micro-batch 1, per GPU
    max_micro_batch: int
    shards: int = 1  # over several GPUs: the GPUs FSDP shards it over (1: each GPU holds the whole model)


def what_fits(capacity_gib: float, models: list[tuple[str, ModelShape]], methods: tuple[str, ...] = ("full", "lora", "qlora"),
              setup: TrainSetup | None = None, gpus: int = 1) -> list[FitRow]:
    """For free memory `capacity_gib` on each of `gpus` GPUs: a verdict per model × method at micro-batch 1 and the
    largest that fits, sharded as `on_gpus` says."""
    base = setup or TrainSetup()
    rows = []
    for name, shape in models:
        for method in methods:
            s = on_gpus(shape, replace(base, method=method, batch=1), capacity_gib, gpus)
            total = estimate_peak_memory(shape, s).total_gib
            rows.append(FitRow(model=name, method=method, verdict=verdict(total, capacity_gib), total_gib=total,
                               max_micro_batch=largest_micro_batch(shape, s, capacity_gib), shards=s.shards))
    return rows


def calibrate(result: MemoryEstimate, ratio: float | None) -> MemoryEstimate:
    """The estimate scaled by a measured/estimated ratio (from a fit rehearsal, `engine.calibration`); the
    difference shows as a `calibration` line of the breakdown. None or 1 gives the estimate unchanged."""
    if ratio is None or ratio == 1.0:
        return result
    total = result.total_gib * ratio
    breakdown = {**result.breakdown, "calibration": round(total - result.total_gib, 3)}
    note = f"Calibrated by a measured/estimated ratio of {ratio:.3f} from an earlier rehearsal."
    return replace(result, total_gib=round(total, 3), breakdown=breakdown, notes=(*result.notes, note))
