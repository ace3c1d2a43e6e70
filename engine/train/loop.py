"""The training loop: accumulate, clip, step, report; obey the control file between optimizer steps.

Loss normalisation: each optimizer step sums the token losses of all its micro-batches and divides by the
number of target tokens in the whole accumulated batch (padding and masked prompt tokens excluded), as HF
Trainer does with `num_items_in_batch`. So a long example weighs as much as its tokens, whatever micro-batch
it landed in, and the reported loss equals HF Trainer's on the same batches.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from engine.modeling import LoadedModel
from engine.protocol import CHECKPOINT_COMMAND, CONTROL_COMMANDS, CONTROL_FILE, EVAL_COMMAND, STOP_COMMAND
from engine.runlock import RunFolderGone, run_folder_gone, writing_into
from engine.spec import RunSpec
from engine.train.batching import BatchStream, StreamState, batch_tokens, count_targets
from engine.train.checkpoint import (
    OPTIMIZER_BY_NAME,
    OPTIMIZER_FOLDER,
    OPTIMIZER_SHARDED,
    checkpoint_folder,
    folder_bytes,
    load_state,
    load_weights,
    prune_checkpoints,
    save_checkpoint,
    save_weights,
    set_rng_state,
)
from engine.train.diskfull import drop_partial_checkpoints
from engine.train.distributed import FOLDER_GONE, Dist, StepLoss, data_parallel
from engine.train.environment import memory_stats
from engine.train.evaluation import (
    autocast_context,
    generate_samples,
    perplexity,
    token_loss_sum,
    validation_loss,
)
from engine.train.fused_loss import fused_token_loss_sum, supports_fused_loss
from engine.train.oom import OomGuard, carry_memory_plan, inject_test_oom, memory_plan
from engine.train.packing import Packer
from engine.train.reporting import Reporter
from engine.train.schedule import get_lr
from engine.train.sharded_state import (
    gathered_optimizer_state,
    gathered_weights,
    load_named_state,
    named_optimizer_state,
    read_sharded_optimizer,
    staged_optimizer_folder,
    weights_by_name,
    write_sharded_optimizer,
)
from engine.train.sharding import gathered, set_gradient_sync, shard
from engine.train.timing import LiveEta, eta_fields


@dataclass
class StepResult:
    """One optimizer step's figures. Loss and norm stay on the device: reading them is a CPU-GPU sync,
    paid only when the step is reported."""

    loss: torch.Tensor
    grad_norm: torch.Tensor
    lr: float
    tokens: int
    samples: int


class ControlInbox:
    """Reads commands appended to `control.jsonl` since the last poll (a cheap stat when nothing is new)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def skip_existing(self) -> None:
        """Ignore what is already there (a resumed run must not obey the previous run's stop)."""
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def poll(self) -> list[dict[str, Any]]:
        try:
            if self.path.stat().st_size <= self.offset:
                return []
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a half-written line waits for the next poll
        self.offset += len(complete)
        commands = []
        for line in complete.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("command"), str):
                commands.append(entry)
        return commands


def build_optimizer(model: Any, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; no decay on biases and norms (as HF Trainer)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.999), eps=1e-8,
                             fused=device.type == "cuda")


class Trainer:
    """Owns the model, optimizer and data order of one run; `train_step` is one optimizer step."""

    def __init__(self, loaded: LoadedModel, spec: RunSpec, train: Sequence[Any], validation: Sequence[Any],
                 total_steps: int, shuffle: bool = True, stream_state: StreamState | None = None) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.dtype = loaded.precision.autocast
        self.spec = spec
        self.cfg = spec.train
        self.validation = validation
        self.total_steps = total_steps
        self.pad_id = loaded.tokenizer.pad_token_id
        self.stream = BatchStream(train, self.cfg.micro_batch, self.pad_id, self.cfg.seed, shuffle, stream_state)
        self.optimizer = build_optimizer(self.model, self.cfg.lr, self.cfg.weight_decay, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if loaded.precision.loss_scaling else None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.step = 0
        self.best_val_loss: float | None = None
        self.last_val_loss: float | None = None
        self.last_val_step = -1
        self.eta: LiveEta | None = None  # the live ETA, set by the run
        self.dist = Dist()  # this process's rank when data-parallel, set by the run
        self.packer: Packer | None = None  # padding-free packing, set by the run when it is on
        self.evals_without_improvement = 0
        self.unreported_tokens = self.unreported_samples = 0
        self.last_report_t = time.perf_counter()
        self.loss_kind = choose_loss(self.cfg.loss, self.device, self.model)
        self.loss_fn = fused_token_loss_sum if self.loss_kind == "fused" else token_loss_sum
        self.step_loss: torch.nn.Module = StepLoss(self.model, self.loss_fn)  # DDP or FSDP when data-parallel
        self.strategy = "single"  # or ddp, fsdp: set by use_data_parallel
        self.batch_shape: tuple[int, int] = (0, 0)
        self.longest_seq = 0

    def train_step(self) -> StepResult:
        """Accumulate `grad_accum` micro-batches, clip, and take one optimizer step."""
        self.model.train()
        lr = get_lr(self.step, base_lr=self.cfg.lr, warmup_steps=self.cfg.warmup_steps,
                    total_steps=self.total_steps, schedule=self.cfg.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        seen_before = self.stream.state.examples_seen
        micro_batches = self.next_micro_batches()
        samples = self.stream.state.examples_seen - seen_before
        targets = sum(count_targets(b["labels"]) for b in micro_batches)
        # every rank divides by the step's targets on all ranks (times the ranks: DDP averages the gradients)
        divisor = max(self.dist.total(targets, self.device), 1) / self.dist.world
        step_loss = torch.zeros((), device=self.device)
        tokens = 0
        for index, batch in enumerate(micro_batches):
            real, self.longest_seq = batch_tokens(batch)  # counted on the CPU copy: no device sync
            tokens += real
            self.batch_shape = tuple(batch["input_ids"].shape)  # type: ignore[assignment]
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            last = index == len(micro_batches) - 1  # data-parallel: gradients are averaged in its backward
            with self._syncing(last):
                with autocast_context(self.device, self.dtype):
                    loss_sum, _ = self.step_loss(batch)
                inject_test_oom(self.step, self.packer.tokens if self.packer else self.cfg.micro_batch)
                loss = loss_sum / divisor
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            step_loss += loss.detach()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        if hasattr(grad_norm, "full_tensor"):  # sharded: the norm over every rank's shard
            grad_norm = grad_norm.full_tensor()
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.unreported_tokens += tokens
        self.unreported_samples += samples
        return StepResult(step_loss, grad_norm, lr, tokens, samples)

    @property
    def sharded(self) -> bool:
        """Whether the model is sharded over the ranks (FSDP)."""
        return self.strategy == "fsdp"

    def use_data_parallel(self, strategy: str = "ddp") -> None:
        """Run the steps through DistributedDataParallel or, sharded, FSDP (the ranks hold the same weights)."""
        if not self.dist.active:
            return
        self.strategy = strategy
        if strategy == "fsdp":
            shard(self)
        else:
            self.step_loss = data_parallel(StepLoss(self.model, self.loss_fn), self.device)

    def _syncing(self, sync: bool) -> AbstractContextManager[Any]:
        """Data-parallel: gradients only accumulate in a micro-batch that is not the step's last."""
        if self.sharded:
            set_gradient_sync(self.step_loss, sync)
            return nullcontext()
        no_sync = getattr(self.step_loss, "no_sync", None)
        return nullcontext() if sync or no_sync is None else no_sync()

    def next_micro_batches(self) -> list[dict[str, torch.Tensor]]:
        """The next step's micro-batches: `grad_accum` padded ones, or the same examples packed in rows."""
        if self.packer is None:
            return [self.stream.next_batch() for _ in range(self.cfg.grad_accum)]
        return self.packer.micro_batches([e for _ in range(self.cfg.grad_accum) for e in self.stream.next_examples()])

    def restore(self, folder: Path) -> str:
        """Continue from a checkpoint: weights, optimizer, loss scaler, RNG, data position, step, and the memory
        settings an out-of-memory shrink left (a sentence saying which, or "")."""
        state = load_state(folder)
        keys = state.get("optimizer_keys")
        if self.sharded and keys not in (OPTIMIZER_BY_NAME, OPTIMIZER_SHARDED):
            raise ValueError("its optimizer state is by position, which a sharded run cannot read; resume it "
                             "with train.strategy = \"ddp\"")
        if self.sharded:
            load_named_state(self, weights_by_name(self.model, folder), None)
        else:
            load_weights(self.model, folder)
        if keys == OPTIMIZER_SHARDED:
            read_sharded_optimizer(self, folder / OPTIMIZER_FOLDER)
        elif keys == OPTIMIZER_BY_NAME:
            load_named_state(self, None, state["optimizer"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        ranks = state.get("ranks")  # data-parallel runs keep each rank's position and random state
        own = ranks[self.dist.rank] if ranks and len(ranks) == self.dist.world else state
        set_rng_state(own["rng"])
        self.stream.restore(StreamState(**own["stream"]))
        self.step = int(state["step"])
        return carry_memory_plan(self, state.get("memory_plan"))

    def turn_on_checkpointing(self) -> None:
        """Recompute activations in backward from now on (saves memory, costs time)."""
        from engine.modeling import enable_checkpointing

        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        enable_checkpointing(base)
        base.config.use_cache = False
        self.cfg.gradient_checkpointing = True

    def evaluate(self) -> dict[str, Any]:
        """Validation loss, perplexity and generations on the first `eval_samples` validation examples (sharded:
        on every rank, since every rank takes part in each forward)."""
        self.model.eval()
        try:
            with gathered(self.step_loss) if self.sharded else nullcontext():
                loss = validation_loss(self.model, self.validation, self.cfg.micro_batch, self.pad_id, self.device,
                                       self.dtype, self.loss_fn)
                samples = generate_samples(self.model, self.loaded.tokenizer,
                                           self.validation[: self.cfg.eval_samples], self.device, self.dtype)
        finally:
            self.model.train()
        self.last_val_loss, self.last_val_step = loss, self.step
        if not math.isnan(loss) and (self.best_val_loss is None or loss < self.best_val_loss):
            self.best_val_loss = loss
            self.evals_without_improvement = 0
        else:
            self.evals_without_improvement += 1
        return {"step": self.step, "val_loss": loss, "perplexity": perplexity(loss), "samples": samples,
                "examples": len(self.validation)}

    def save(self, run_dir: Path) -> Path:
        """A resumable checkpoint of the current step; older ones beyond `keep_checkpoints` are pruned."""
        # only a validation loss of this very step may rank the checkpoint for keep_best
        val_loss = self.last_val_loss if self.last_val_step == self.step else None
        ranks = self.dist.gather_rank_states(self.stream.state)  # every rank takes part; rank 0 writes
        folder = checkpoint_folder(run_dir, self.step)
        weights, optimizer_state = self._sharded_state(folder) if self.sharded else (None, None)
        if not self.dist.is_main:
            return folder
        extra = {"memory_plan": memory_plan(self), **({"ranks": ranks} if ranks else {})}
        folder = save_checkpoint(run_dir, self.step, self.model, optimizer_state or named_optimizer_state(self),
                                 self.scaler, self.stream.state, val_loss, extra, weights)
        prune_checkpoints(run_dir, self.cfg.keep_checkpoints, self.cfg.keep_best)
        return folder

    def _sharded_state(self, checkpoint: Path) -> tuple[dict[str, Any], dict[str, Any] | Path]:
        """A sharded run's part of a checkpoint, every rank taking part: the whole trainable weights gathered on
        rank 0, and the optimizer state in shards written by every rank (on one machine; the folder they wrote)
        or gathered on rank 0 (across machines)."""
        weights = gathered_weights(self)
        if not self.dist.one_machine:
            return weights, gathered_optimizer_state(self)
        staged = staged_optimizer_folder(checkpoint)
        if self.dist.is_main:  # made here, never its parents: a run folder deleted meanwhile is not recreated
            with writing_into(checkpoint.parent.parent, staged):
                drop_partial_checkpoints(checkpoint.parent.parent)  # saves that failed before left them
                checkpoint.parent.mkdir(exist_ok=True)
                staged.mkdir()
        self.dist.barrier()
        write_sharded_optimizer(self, staged)
        return weights, staged


def choose_loss(requested: str, device: torch.device, model: Any) -> str:
    """`fused` (chunked logits) or `standard`; auto is fused on a GPU. Models whose output layer the fused loss
    cannot reproduce (soft-capped or scaled logits, a biased or adapted head) keep the standard loss."""
    wanted = requested == "fused" or (requested == "auto" and device.type == "cuda")
    return "fused" if wanted and supports_fused_loss(model) else "standard"


class StopFlag:
    """Set by SIGTERM (or a `stop` command): the loop finishes the current step, checkpoints and ends."""

    def __init__(self) -> None:
        self.requested = False
        self.reason = ""

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested, self.reason = True, "SIGTERM"


def report_step(reporter: Reporter, trainer: Trainer, result: StepResult) -> float:
    """The `metrics` event of one optimizer step; returns the loss. Throughput covers every step since the
    last report."""
    # .item() is the CPU-GPU sync point: the time read after it covers the work actually done
    loss, grad_norm = trainer.dist.mean(result.loss).item(), result.grad_norm.item()
    now = time.perf_counter()
    seconds = max(now - trainer.last_report_t, 1e-9)
    eta = {}
    if trainer.eta is not None:
        trainer.eta.add_step(trainer.unreported_tokens, seconds)
        eta = eta_fields(trainer.eta.predict(trainer.step))
    reporter.emit(
        "metrics",
        step=trainer.step,
        epoch=round(trainer.stream.epoch_float, 4),
        loss=loss,
        lr=result.lr,
        grad_norm=grad_norm,
        tokens_per_s=trainer.dist.total(trainer.unreported_tokens, trainer.device) / seconds,
        samples_per_s=trainer.dist.total(trainer.unreported_samples, trainer.device) / seconds,
        **memory_stats(trainer.device),
        **eta,
    )
    trainer.unreported_tokens = trainer.unreported_samples = 0
    trainer.last_report_t = time.perf_counter()
    return loss


def fit(trainer: Trainer, reporter: Reporter, run_dir: Path, stop: StopFlag) -> str:
    """Train to `total_steps` (or a stop), reporting every step; returns the finished status. Raises
    `RunFolderGone` at the first control poll after the run folder (or its spec) disappeared."""
    cfg = trainer.cfg
    inbox = ControlInbox(run_dir / CONTROL_FILE)
    if trainer.step:
        inbox.skip_existing()  # a resumed run must not obey the stop that ended it
    has_validation = len(trainer.validation) > 0
    if not has_validation:
        reporter.log("The validation split is empty, so there will be no eval events.", level="warning")

    def do_eval() -> None:
        if has_validation and (trainer.dist.is_main or trainer.sharded):
            started = time.perf_counter()
            result = trainer.evaluate()
            if trainer.dist.is_main:
                reporter.emit("eval", **result)
            elapsed = time.perf_counter() - started
            trainer.last_report_t += elapsed  # throughput counts training time only
            if trainer.eta is not None:
                trainer.eta.add_eval(elapsed)
        if has_validation:  # rank 0 evaluates; every rank must agree on early stopping
            trainer.evals_without_improvement = trainer.dist.share_int(trainer.evals_without_improvement,
                                                                       trainer.device)

    def do_checkpoint() -> None:
        started = time.perf_counter()
        folder = trainer.save(run_dir)
        reporter.emit("checkpoint", step=trainer.step, path=str(folder), bytes=folder_bytes(folder))
        elapsed = time.perf_counter() - started
        trainer.last_report_t += elapsed
        if trainer.eta is not None:
            trainer.eta.add_checkpoint(elapsed)

    status = "completed"
    guard = OomGuard(trainer, reporter, run_dir)
    trainer.last_report_t = time.perf_counter()
    while trainer.step < trainer.total_steps:
        result = guard.step()
        if result is None:
            return "oom"
        if trainer.step % cfg.log_every == 0 or trainer.step == trainer.total_steps:
            loss = report_step(reporter, trainer, result)
            if not math.isfinite(loss):
                reporter.log(f"The loss is {loss} at step {trainer.step}; lower train.lr.", level="error")
                return "failed"
        polled: set[str] = set()
        if trainer.dist.is_main:  # rank 0 reads the control file, and sees whether its run folder is still there
            polled = {e["command"] for e in inbox.poll() if e["command"] in CONTROL_COMMANDS}
            if run_folder_gone(run_dir):
                polled.add(FOLDER_GONE)
        commands = trainer.dist.agree(polled, stop.requested, trainer.device)
        if FOLDER_GONE in commands:
            raise RunFolderGone(run_dir)  # stop at once: no checkpoint, no final weights, nothing recreated
        if STOP_COMMAND in commands and not stop.requested:
            stop.requested, stop.reason = True, "a stop command"
        at_end = trainer.step >= trainer.total_steps
        if EVAL_COMMAND in commands or (cfg.eval_every and trainer.step % cfg.eval_every == 0 and not at_end):
            do_eval()
        if CHECKPOINT_COMMAND in commands or stop.requested or (cfg.save_every and trainer.step % cfg.save_every == 0
                                                          and not at_end):
            do_checkpoint()
        if stop.requested:
            reporter.log(f"Stopped after step {trainer.step} on {stop.reason}.")
            status = "stopped"
            break
        patience = cfg.early_stopping_patience
        if patience and trainer.evals_without_improvement >= patience:
            reporter.log(f"Validation loss has not improved for {patience} evaluations; stopping early.")
            do_checkpoint()
            break
    if status == "completed":
        do_eval()
        weights = gathered_weights(trainer) if trainer.sharded else None  # every rank gathers; rank 0 writes
        if trainer.dist.is_main:
            with writing_into(run_dir, run_dir / "adapter", run_dir / "model"):  # save_pretrained makes parents
                target = save_weights(trainer.model, run_dir, trainer.loaded.tokenizer, weights)
            reporter.emit("checkpoint", step=trainer.step, path=str(target), bytes=folder_bytes(target),
                          final=True)
    return status
