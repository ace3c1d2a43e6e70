"""Surviving out-of-memory: catch it, free memory outside the handler, shrink the micro-batch (or, packed, its
token budget), carry on.

The memory is freed *after* the except block on purpose: while the exception is being handled, its traceback's
frames still hold the step's activations (seen on an H200: 137 GiB allocated inside the handler, 2.9 GiB, the
weights, once out of it).
"""

from __future__ import annotations

import copy
import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.protocol import GIB, write_json_atomic

if TYPE_CHECKING:
    from engine.train.loop import StepResult, Trainer
    from engine.train.reporting import Reporter

#: Test hook (not part of the spec): raise a simulated OOM inside this (0-based) optimizer step, so a test can
#: watch the run shrink and survive.
TEST_OOM_ENV = "SLMTUI_TEST_OOM_AT_STEP"
#: Where the post-mortem of the last OOM is written in the run folder.
POST_MORTEM_FILE = "oom_post_mortem.json"

_injected: set[int] = set()


def inject_test_oom(step: int, size: int | None = None) -> None:
    """Raise `torch.OutOfMemoryError` at the step named by $SLMTUI_TEST_OOM_AT_STEP ("5", or "5:2" to fail
    every micro-batch above 2 at step 5; packed, every token budget above 2; "5@1" on rank 1 alone)."""
    wanted, _, rank = os.environ.get(TEST_OOM_ENV, "").partition("@")
    if not wanted or (rank and rank != os.environ.get("RANK", "0")):
        return
    at, _, above = wanted.partition(":")
    if step != int(at):
        return
    if above:
        if size is None or size <= int(above):
            return
    elif step in _injected:
        return
    _injected.add(step)
    raise torch.OutOfMemoryError(f"simulated out of memory at step {step} ({TEST_OOM_ENV})")


def is_oom(exc: BaseException) -> bool:
    """torch's OOM, or a CUDA/cuBLAS allocation failure surfacing as a RuntimeError (bitsandbytes' kernels)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text.lower() or "ALLOC_FAILED" in text)


def smaller_micro_batch(micro_batch: int) -> int:
    """The largest divisor of `micro_batch` up to half of it (so the effective batch divides evenly)."""
    for d in range(micro_batch // 2, 0, -1):
        if micro_batch % d == 0:
            return d
    return 1


def free_memory(trainer: Trainer) -> None:
    """Drop gradients and cached blocks (called outside any except block)."""
    trainer.optimizer.zero_grad(set_to_none=True)
    gc.collect()
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()


def _allocated_gib(device: torch.device) -> float | None:
    return round(torch.cuda.memory_allocated(device) / GIB, 3) if device.type == "cuda" else None


class OomGuard:
    """Runs `trainer.train_step()`; on OOM applies `train.on_oom` and reports an `oom` event with a post-mortem."""

    def __init__(self, trainer: Trainer, reporter: Reporter, run_dir: Path) -> None:
        self.trainer = trainer
        self.reporter = reporter
        self.run_dir = run_dir
        self.ooms = 0

    def step(self) -> StepResult | None:
        """One optimizer step, retried after shrinking as often as needed; None when the run must end as oom."""
        while True:
            trainer = self.trainer
            before = copy.copy(trainer.stream.state)
            failure: dict[str, Any] | None = None
            try:
                return trainer.train_step()
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not is_oom(exc):
                    raise
                failure = {"message": str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "out of memory",
                           "mem_at_failure_gib": _allocated_gib(trainer.device)}
            # Out of the handler: the traceback and the frames holding the activations are gone.
            free_memory(trainer)
            trainer.stream.restore(before)  # the partial accumulation is discarded and redone
            if not self._recover(failure):
                return None

    def _recover(self, failure: dict[str, Any]) -> bool:
        from engine.train.postmortem import post_mortem

        trainer, cfg = self.trainer, self.trainer.cfg
        self.ooms += 1
        batch_shape, longest = list(trainer.batch_shape), trainer.longest_seq
        old = {"micro_batch": cfg.micro_batch, "grad_accum": cfg.grad_accum,
               "gradient_checkpointing": cfg.gradient_checkpointing}
        if cfg.on_oom == "stop":
            action, text = "stop", "train.on_oom is stop, so the run ends"
        elif trainer.packer is not None and trainer.packer.tokens > longest:
            budget = trainer.packer.tokens
            trainer.packer.tokens = max(budget // 2, longest)
            action = "shrink"
            text = (f"micro-batch tokens {budget} -> {trainer.packer.tokens} (the same examples per step, packed "
                    f"in more rows); step {trainer.step + 1} is redone")
        elif trainer.packer is None and cfg.micro_batch > 1:
            new = smaller_micro_batch(cfg.micro_batch)
            factor = cfg.micro_batch // new
            action = "shrink"
            text = (f"micro-batch {cfg.micro_batch} -> {new}, gradient accumulation {cfg.grad_accum} -> "
                    f"{cfg.grad_accum * factor} (effective batch {cfg.micro_batch * cfg.grad_accum} kept); "
                    f"step {trainer.step + 1} is redone")
            cfg.micro_batch, cfg.grad_accum = new, cfg.grad_accum * factor
            trainer.stream.micro_batch = new
        elif not cfg.gradient_checkpointing:
            action, text = "checkpointing", f"gradient checkpointing turned on; step {trainer.step + 1} is redone"
            trainer.turn_on_checkpointing()
        else:
            action, text = "stop", "micro-batch 1 with gradient checkpointing still does not fit, so the run ends"
        report = post_mortem(trainer, old, batch_shape, longest, failure["mem_at_failure_gib"])
        write_json_atomic(self.run_dir / POST_MORTEM_FILE, report)
        message = f"Out of memory at step {trainer.step + 1} on a batch of {batch_shape} ({failure['message']}): {text}."
        self.reporter.emit("oom", step=trainer.step + 1, batch_shape=batch_shape, longest_seq=longest,
                           mem_at_failure_gib=failure["mem_at_failure_gib"], message=message, action=action,
                           post_mortem=report, micro_batch=cfg.micro_batch, grad_accum=cfg.grad_accum,
                           gradient_checkpointing=cfg.gradient_checkpointing,
                           micro_batch_tokens=trainer.packer.tokens if trainer.packer else None,
                           mem_after_free_gib=_allocated_gib(trainer.device))
        self.reporter.log(message, level="warning" if action != "stop" else "error")
        return action != "stop"


def memory_plan(trainer: Trainer) -> dict[str, Any]:
    """The settings the OOM guard (or the fit rehearsal) may have changed, kept with each checkpoint."""
    cfg = trainer.cfg
    return {"micro_batch": cfg.micro_batch, "grad_accum": cfg.grad_accum,
            "gradient_checkpointing": cfg.gradient_checkpointing,
            "micro_batch_tokens": trainer.packer.tokens if trainer.packer else None}


def carry_memory_plan(trainer: Trainer, plan: Any) -> str:
    """Take a checkpoint's smaller memory settings (the same examples per step), so a resume does not run out of
    memory again to find them; the sentence saying which ("" for none)."""
    if not isinstance(plan, dict):
        return ""
    cfg, kept = trainer.cfg, []
    batch, accum = plan.get("micro_batch"), plan.get("grad_accum")
    if (isinstance(batch, int) and isinstance(accum, int) and 0 < batch < cfg.micro_batch
            and batch * accum == cfg.micro_batch * cfg.grad_accum):
        cfg.micro_batch, cfg.grad_accum = batch, accum
        trainer.stream.micro_batch = batch
        kept.append(f"micro-batch {batch} with gradient accumulation {accum}")
    tokens = plan.get("micro_batch_tokens")
    if trainer.packer is not None and isinstance(tokens, int) and 0 < tokens < trainer.packer.tokens:
        trainer.packer.tokens = tokens
        kept.append(f"micro-batch tokens {tokens}")
    if plan.get("gradient_checkpointing") is True and not cfg.gradient_checkpointing:
        trainer.turn_on_checkpointing()
        kept.append("gradient checkpointing")
    return f"Kept what the run shrank to after running out of memory: {', '.join(kept)}." if kept else ""
