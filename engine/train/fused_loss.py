"""A chunked linear cross-entropy: the loss without ever holding the vocab × tokens logits.

The decoder's final hidden states go through the output layer a chunk of tokens at a time; each chunk's logits
are upcast to fp32, turned into its loss and, when a gradient is wanted, straight away into the gradients of the
hidden states (and of the output weight when it trains), after which the chunk's logits are freed. Backward then
only scales those saved gradients by the incoming one (the loss is a sum, so that is exact). This is the
approach of Liger's fused linear cross-entropy, written in plain PyTorch. Only positions with a target are
computed at all, so masked prompt tokens cost nothing.

Numerically it is the standard loss: the same 16-bit matmul under autocast, the same fp32 log-softmax.
"""

from __future__ import annotations

from typing import Any

import torch

from engine.estimate import FUSED_LOSS_CHUNK_TOKENS
from engine.train.batching import IGNORE_INDEX
from engine.train.packing import model_inputs


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """sum over rows of cross_entropy(hidden @ weight.T, targets), chunk by chunk, in `dtype` matmuls."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                dtype: torch.dtype, chunk: int) -> torch.Tensor:
        want_hidden, want_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        w = weight.to(dtype)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden, dtype=dtype) if want_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_weight else None
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk].to(dtype)
            t = targets[start : start + chunk]
            logits = (h @ w.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, t.unsqueeze(1)).squeeze(1)).sum()
            if want_hidden or want_weight:
                # d(loss)/d(logits) = softmax - one_hot, made in place in the logits' buffer
                logits.sub_(lse.unsqueeze(1)).exp_()
                logits.scatter_add_(1, t.unsqueeze(1), torch.full_like(lse, -1.0).unsqueeze(1))
                grad_logits = logits.to(dtype)
                del logits
                if grad_hidden is not None:
                    grad_hidden[start : start + chunk] = grad_logits @ w
                if grad_weight is not None:
                    grad_weight += (grad_logits.t() @ h).float()
        ctx.save_for_backward(grad_hidden if grad_hidden is not None else torch.empty(0),
                              grad_weight if grad_weight is not None else torch.empty(0))
        ctx.hidden_dtype, ctx.weight_dtype = hidden.dtype, weight.dtype
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        grad_hidden, grad_weight = ctx.saved_tensors
        scale = grad_output.float()
        out_hidden = (grad_hidden * scale).to(ctx.hidden_dtype) if ctx.needs_input_grad[0] else None
        out_weight = (grad_weight * scale).to(ctx.weight_dtype) if ctx.needs_input_grad[1] else None
        return out_hidden, out_weight, None, None, None


def _parts(model: Any) -> tuple[Any, torch.nn.Linear] | None:
    """(decoder, output layer) when the model is a plain decoder + bias-free linear head; else None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None) not in (None, 1.0):
        return None
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else getattr(base, "model", None)
    if type(head) is not torch.nn.Linear or head.bias is not None or decoder is None:
        return None  # a LoRA-wrapped or biased head, soft-capped or scaled logits: the standard loss handles those
    return decoder, head


def supports_fused_loss(model: Any) -> bool:
    """Whether `fused_token_loss_sum` can compute this model's loss."""
    return _parts(model) is not None


def fused_token_loss_sum(model: Any, batch: dict[str, torch.Tensor],
                         chunk: int = FUSED_LOSS_CHUNK_TOKENS) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over the batch's unmasked targets, and how many: as
    `engine.train.evaluation.token_loss_sum`, without materialising the logits."""
    parts = _parts(model)
    if parts is None:
        raise ValueError("this model's output layer does not allow the fused loss")
    decoder, head = parts
    hidden = decoder(**model_inputs(model, batch), use_cache=False).last_hidden_state
    labels = batch["labels"]
    targets = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1).reshape(-1)
    keep = (targets != IGNORE_INDEX).nonzero().squeeze(1)
    rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, keep)
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else rows.dtype
    with torch.autocast(device_type=device, enabled=False):
        loss = ChunkedLinearCrossEntropy.apply(rows, head.weight, targets.index_select(0, keep), dtype, chunk)
    return loss, int(keep.numel())
