"""Padding-free packing: a step's examples laid end to end in rows, micro-batches of at most
`train.micro_batch_tokens` tokens.

Each row's `position_ids` restart at 0 at each example, and attention stays inside each example.
flash-attention's variable-length path reads the example boundaries from the restarts (transformers'
`DataCollatorWithFlattening` semantics), so there a micro-batch is one row of the whole budget. sdpa and eager get
an explicit 4-D block-diagonal causal mask (`block_causal_mask`), which transformers passes to the attention as it
is; a mask costs attention over the whole row, so there rows hold at most `data.max_length` tokens (no more
attention than one padded row) and a micro-batch is as many rows as the budget holds, padded to the longest row
(little padding: the rows are nearly full). The first token of every example has label -100, so no loss crosses a
boundary (in an unpacked row the shift drops it too); pad tokens have label -100 and attend only to themselves.

Packing changes neither the data order nor the examples of a step: the optimizer step takes the same
`micro_batch × grad_accum` examples it would padded, only in fewer, fuller rows, so the loss (summed over the
step's target tokens, divided by their count) is the padded one up to float rounding.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from engine.spec import RunSpec, micro_batch_tokens
from engine.train.batching import IGNORE_INDEX, TokenizedExample

#: Decoder families whose attention takes a 4-D mask and position_ids restarts exactly (Llama/Qwen2-style).
PACKABLE_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
#: Attention implementations packing knows: the flash ones read boundaries from position_ids, the others a mask.
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")
MASKED_ATTENTION = ("sdpa", "eager")


def pack_rows(examples: Sequence[TokenizedExample], budget: int) -> list[list[TokenizedExample]]:
    """The examples in order, greedily in rows of at most `budget` tokens (an example longer than it alone)."""
    rows: list[list[TokenizedExample]] = []
    used = budget
    for example in examples:
        n = len(example.input_ids)
        if used + n > budget:
            rows.append([])
            used = 0
        rows[-1].append(example)
        used += n
    return rows


def group_rows(rows: Sequence[list[TokenizedExample]], budget: int) -> list[list[list[TokenizedExample]]]:
    """The rows in order, in micro-batches whose rows × longest row stays within `budget` tokens (a row at least)."""
    groups: list[list[list[TokenizedExample]]] = []
    longest = 0
    for row in rows:
        n = sum(len(e.input_ids) for e in row)
        if groups and (len(groups[-1]) + 1) * max(longest, n) <= budget:
            groups[-1].append(row)
            longest = max(longest, n)
        else:
            groups.append([row])
            longest = n
    return groups


def collate_packed(examples: Sequence[TokenizedExample]) -> dict[str, torch.Tensor]:
    """One row: `input_ids`, `labels` (-100 on each example's first token) and restarting `position_ids`."""
    return collate_packed_rows([examples])


def collate_packed_rows(rows: Sequence[Sequence[TokenizedExample]]) -> dict[str, torch.Tensor]:
    """Packed rows padded to the longest (`row_lengths`: each row's real tokens); a pad token is an example of its
    own (position 0, label -100)."""
    columns: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    for examples in rows:
        input_ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for example in examples:
            input_ids += example.input_ids
            labels += [IGNORE_INDEX, *example.labels[1:]]
            positions += range(len(example.input_ids))
        columns["input_ids"].append(input_ids)
        columns["labels"].append(labels)
        columns["position_ids"].append(positions)
    lengths = [len(row) for row in columns["input_ids"]]
    pads = {"input_ids": 0, "labels": IGNORE_INDEX, "position_ids": 0}
    batch = {name: torch.tensor([row + [pads[name]] * (max(lengths) - len(row)) for row in values], dtype=torch.long)
             for name, values in columns.items()}
    batch["row_lengths"] = torch.tensor(lengths, dtype=torch.long)
    return batch


def block_causal_mask(position_ids: torch.Tensor, attention: str) -> torch.Tensor:
    """[rows, 1, T, T]: each token sees the earlier tokens of its own example only. Boolean (True: attend) for
    sdpa; additive float (0 or the float minimum) for eager, which adds the mask to its scores."""
    example = (position_ids == 0).cumsum(-1)
    length = example.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=position_ids.device).tril()
    allowed = ((example[:, :, None] == example[:, None, :]) & causal)[:, None]
    if attention == "eager":
        return torch.zeros(allowed.shape, device=allowed.device).masked_fill(~allowed, torch.finfo(torch.float32).min)
    return allowed


def attention_of(model: Any) -> str:
    """The model's attention implementation (`sdpa`, `eager`, `flash_attention_2`...)."""
    return str(getattr(model.config, "_attn_implementation", None) or "eager")


def model_inputs(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The forward's keyword arguments for a padded or a packed micro-batch (labels excluded)."""
    if "position_ids" not in batch:
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    inputs = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"]}
    attention = attention_of(model)
    if attention not in VARLEN_ATTENTION:
        inputs["attention_mask"] = block_causal_mask(batch["position_ids"], attention)
    return inputs


def why_not_exact(spec: RunSpec, model: Any) -> str:
    """Why packing would not train this model exactly as padding does; "" when it would."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    attention = attention_of(base)
    if config.model_type not in PACKABLE_MODEL_TYPES:
        return f"packing is exact only for {', '.join(PACKABLE_MODEL_TYPES)} models, not {config.model_type}"
    if attention not in VARLEN_ATTENTION + MASKED_ATTENTION:
        return f"attention {attention} does not take packed sequences"
    if "position_ids" not in inspect.signature(base.forward).parameters:
        return "the model's forward takes no position_ids"
    layer_types = getattr(config, "layer_types", None) or []
    sliding = any(kind != "full_attention" for kind in layer_types) or (
        not layer_types and getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True))
    window = getattr(config, "sliding_window", None)
    if sliding and window and window < spec.data.max_length:
        return f"its sliding window ({window} tokens) is shorter than data.max_length"
    return ""


@dataclass
class Packer:
    """Packs each step's examples in micro-batches of at most `tokens` tokens (the OOM guard halves it): one row
    where attention reads the example boundaries from the positions (`row_tokens` None), else rows of at most
    `row_tokens` tokens."""

    tokens: int
    row_tokens: int | None = None

    @property
    def row_budget(self) -> int:
        """The most tokens one row holds."""
        return self.tokens if self.row_tokens is None else min(self.row_tokens, self.tokens)

    def micro_batches(self, examples: Sequence[TokenizedExample]) -> list[dict[str, torch.Tensor]]:
        return [collate_packed_rows(group) for group in group_rows(pack_rows(examples, self.row_budget), self.tokens)]

    def shape(self) -> tuple[int, int]:
        """(rows, tokens a row) of the largest micro-batch the budget allows: what the memory estimate sizes."""
        return max(1, self.tokens // self.row_budget), self.row_budget


def choose_packer(spec: RunSpec, model: Any, log: Any = None) -> Packer | None:
    """A `Packer` when `train.packing` is auto and packing is exact for this model; else None (padding), with
    one log line saying why auto fell back."""
    if spec.train.packing == "off":
        return None
    reason = why_not_exact(spec, model)
    if reason:
        if log is not None:
            log(f"Packing is off: {reason}; micro-batches are padded.")
        return None
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    varlen = attention_of(base) in VARLEN_ATTENTION
    return Packer(micro_batch_tokens(spec), None if varlen else spec.data.max_length)


def use_varlen_attention(spec: RunSpec, loaded: Any, packer: Packer, log: Any) -> None:
    """Switch a packed model from sdpa to flash-attention's variable-length path (no T × T mask, attention per
    example, one row a micro-batch) on a CUDA device in 16-bit compute when flash-attn is installed and the spec
    names no attention."""
    import importlib.util

    base = loaded.model.get_base_model() if hasattr(loaded.model, "get_base_model") else loaded.model
    if (spec.model.attn_implementation or attention_of(base) != "sdpa" or loaded.device.type != "cuda"
            or loaded.precision.autocast not in (torch.bfloat16, torch.float16)
            or importlib.util.find_spec("flash_attn") is None):
        return
    try:
        base.set_attn_implementation("flash_attention_2")
    except (ValueError, ImportError) as exc:
        log(f"Packing with sdpa and a block mask: flash_attention_2 is not available ({exc}).")
        return
    packer.row_tokens = None


def padding_stats(lengths: Sequence[int], micro_batch: int) -> dict[str, float]:
    """Tokens and padded tokens of padded micro-batches over `lengths` in order, and their ratio (the share of a
    padded micro-batch that is real tokens: what packing's rows are made of alone)."""
    tokens = sum(lengths)
    padded = sum(max(lengths[i : i + micro_batch]) * len(lengths[i : i + micro_batch])
                 for i in range(0, len(lengths), micro_batch))
    return {"tokens": tokens, "padded_tokens": padded, "ratio": round(tokens / padded, 4) if padded else 1.0}


def packing_fields(packer: Packer | None, lengths_in_order: Sequence[int], micro_batch: int) -> dict[str, Any]:
    """The `started` event's `packing`: whether it is on, its token budget, and the real tokens, padded tokens
    and their ratio of the padded micro-batches of one epoch (what packing replaces, or what padding costs)."""
    return {"on": packer is not None, "micro_batch_tokens": packer.tokens if packer else None,
            "row_tokens": packer.row_budget if packer else None,
            **padding_stats(lengths_in_order, micro_batch)}
