"""Evaluation: validation loss and perplexity, and generations on a few fixed validation prompts."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from engine.train.batching import IGNORE_INDEX, collate
from engine.train.packing import model_inputs


def token_loss_sum(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over the batch's unmasked targets, and how many there were.

    Computed in fp32 whatever the compute dtype, as transformers' `ForCausalLMLoss` does.
    """
    logits = model(**model_inputs(model, batch), use_cache=False).logits
    targets = batch["labels"][:, 1:]
    loss = F.cross_entropy(
        logits[:, :-1, :].float().reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return loss, int((targets != IGNORE_INDEX).sum())


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Autocast to the compute dtype, or nothing in plain fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def validation_loss(model: Any, examples: Sequence[Any], micro_batch: int, pad_id: int, device: torch.device,
                    dtype: torch.dtype | None, loss_fn: Callable[..., tuple[torch.Tensor, int]] | None = None) -> float:
    """Mean loss per target token over `examples` (NaN when there are none); `loss_fn` as the training step's
    (the fused loss keeps evaluation from holding the whole batch's logits)."""
    loss_fn = loss_fn or token_loss_sum
    total, count = 0.0, 0
    for start in range(0, len(examples), micro_batch):
        batch = {k: v.to(device) for k, v in collate(examples[start : start + micro_batch], pad_id).items()}
        with autocast_context(device, dtype):
            loss, n = loss_fn(model, batch)
        total += float(loss)
        count += n
    return total / count if count else float("nan")


def perplexity(loss: float) -> float:
    """exp(loss), capped so a diverged run reports a huge number rather than an overflow."""
    return float("nan") if math.isnan(loss) else math.exp(min(loss, 50.0))


def prompt_ids(example: Any, tokenizer: Any) -> list[int]:
    """Token ids of an example's prompt, with the BOS token its training ids start with."""
    ids = list(tokenizer(example.prompt, add_special_tokens=False)["input_ids"])
    bos = tokenizer.bos_token_id
    if bos is not None and example.input_ids[:1] == [bos] and ids[:1] != [bos]:
        ids.insert(0, bos)
    return ids


@torch.no_grad()
def generate_samples(model: Any, tokenizer: Any, examples: Sequence[Any], device: torch.device,
                     dtype: torch.dtype | None, max_new_tokens: int = 48) -> list[dict[str, str]]:
    """Greedy generations for fixed validation prompts: prompt, reference response, and the model's output."""
    samples = []
    for example in examples:
        ids = torch.tensor([prompt_ids(example, tokenizer)], device=device)
        with autocast_context(device, dtype):
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        samples.append({"prompt": example.prompt, "reference": example.response, "output": text})
    return samples
