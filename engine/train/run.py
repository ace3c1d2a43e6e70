"""One training run from its folder: read the spec, prepare data, load the model, train, report.

Errors a user can cause end as a `log` event and a `finished` event of status `failed` with one sentence;
errors of the program also keep their traceback in engine.log.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from engine.diskplan import disk_problem
from engine.eta import format_duration
from engine.modeling import ModelError, load_for_training
from engine.paths import cache_dir
from engine.protocol import ENGINE_LOG, SPEC_FILE
from engine.runlock import RunFolderGone, run_folder_gone, writing_into
from engine.spec import RunSpec, SpecError, TrainSpec, load_spec, spec_to_dict, total_steps
from engine.train.batching import epoch_order
from engine.train.diskfull import (
    SpaceReserve,
    disk_full_message,
    drop_partial_checkpoints,
    is_disk_full,
    is_unwritable,
    unwritable_message,
)
from engine.train.distributed import Dist, init_distributed, shutdown_distributed
from engine.train.environment import environment_fingerprint
from engine.train.loop import StopFlag, Trainer, fit
from engine.train.packing import choose_packer, packing_fields, use_varlen_attention
from engine.train.rank_failures import rank_failure, record_rank_failure, silent_rank
from engine.train.rehearsal import planned_estimate, rehearse, should_rehearse
from engine.train.reporting import Reporter, open_mirrors
from engine.train.resume import ResumeError, restore_latest, run_disk_plan
from engine.train.sharding import choose_strategy
from engine.train.speedups import compile_layers, use_kernels
from engine.train.timing import LiveEta, predict_from_pilot, step_token_plan

#: A pilot runs at least this many steps: two of warm-up, the rest timed.
MIN_PILOT_STEPS = 8


class TrainError(Exception):
    """A run the user must change (no training examples, say); one sentence."""


def _user_errors() -> tuple[type[Exception], ...]:
    from engine.data import DataError

    return (SpecError, ModelError, TrainError, DataError, ResumeError)


def _data_summary(prepared: Any) -> dict[str, Any]:
    return {
        "fingerprint": prepared.fingerprint,
        "report": prepared.report,
        "description": prepared.description,
        "scrub_changes": prepared.report.get("scrub_changes"),
        "train": len(prepared.train),
        "validation": len(prepared.validation),
        "test": len(prepared.test),
    }


def execute(run_dir: Path, stop: StopFlag, resume: bool = False, pilot: float | None = None) -> str:
    """Run the training of `run_dir` to its end; returns the finished status (events say the rest).

    `resume` continues from the newest readable checkpoint (same data order, events and summary carry on);
    `pilot` trains on that fraction of the data (a representative slice) and predicts the full run's time.
    A run folder deleted under the engine ends it at once with status `gone`, writing nothing more.
    """
    dist, device = init_distributed(_device_request(run_dir))
    reserve = SpaceReserve(run_dir, create=dist.is_main)
    reporter = Reporter(run_dir, run_dir.name, write=dist.is_main)
    if resume:
        reporter.continue_summary()
    started = time.time()
    status, message, raised, unexpected = "failed", "", True, False
    try:
        status, message = _train(run_dir, reporter, stop, resume, pilot, dist, device)
        raised = False
    except RunFolderGone:
        status = "gone"
    except _user_errors() as exc:
        message = str(exc)
    except torch.OutOfMemoryError as exc:
        status, message = "oom", f"Out of memory: {str(exc).splitlines()[0]}; lower train.micro_batch or data.max_length."
    except Exception as exc:
        if run_folder_gone(run_dir):  # a write failed because the folder went away under it
            status = "gone"
        elif is_disk_full(exc):
            reserve.release()
            drop_partial_checkpoints(run_dir)
            message = disk_full_message(run_dir)
        elif is_unwritable(exc, run_dir):
            message = unwritable_message(run_dir, exc)
        else:
            traceback.print_exc()
            unexpected = True  # a peer that died without a word breaks this rank's collective this way too
            message = f"The engine failed unexpectedly ({type(exc).__name__}: {exc}); see {ENGINE_LOG}."
    if status == "gone" or run_folder_gone(run_dir):
        print(f"[error] {RunFolderGone(run_dir)}", flush=True)
        reporter.abandon()  # nothing to write into, and nothing may recreate the folder
        reserve.release()
        shutdown_distributed()
        return "gone"
    summary = {
        "message": message,
        "steps": reporter.summary["step"],
        "total_steps": reporter.summary["total_steps"],
        "seconds": round(time.time() - started, 2),
        "latest": reporter.summary["latest"],
        "best": reporter.summary["best"],
    }
    if reporter.summary.get("pilot_eta"):
        summary["eta"] = reporter.summary["pilot_eta"]
    ended_badly = status not in ("completed", "stopped")
    if ended_badly and dist.active and not dist.is_main:
        said = f"at step {reporter.summary['step'] + 1}" if status == "oom" else message or status
        record_rank_failure(run_dir, dist.rank, status, said)
    elif ended_badly and dist.active and (failure := rank_failure(run_dir) or (
            silent_rank(dist, reporter.summary["step"]) if unexpected else None)) is not None:
        status, message = failure  # a peer's failure is why this rank's collective broke: name the peer
        summary["message"], raised = message, True
    if raised:  # the error's sentence, as a log event before the end
        _guarded(lambda: reporter.log(message, level="error"))
    _guarded(lambda: reporter.emit("finished", status=status, summary=summary))
    _guarded(reporter.close)
    reserve.release()
    shutdown_distributed(wait_for_peers=not ended_badly)  # a rank that failed leaves: torchrun stops the rest
    return status


def _guarded(write: Callable[[], object]) -> None:
    """One of a run's last writes. When the run folder is what failed (unwritable, full), the failure is said
    in engine.log and goes no further: whatever did get written (the `finished` event, whose file is open
    already) is what readers go by."""
    try:
        write()
    except OSError as exc:
        print(f"[error] could not write to the run folder at the end of the run: {exc}", flush=True)


def _device_request(run_dir: Path) -> str:
    """The spec's train.device, read early (a rank must pick its device before loading); `auto` if unreadable."""
    try:
        return load_spec(run_dir / SPEC_FILE, check_files=False).train.device
    except SpecError:
        return "auto"


def _pilot_steps(train: TrainSpec, full_steps: int, sample_examples: int, fraction: float) -> int:
    """A pilot's steps: its fraction of the full run, at least enough to time past the warm-up."""
    steps = math.ceil(full_steps * fraction) if train.max_steps > 0 else total_steps(train, sample_examples)
    return min(max(steps, MIN_PILOT_STEPS), full_steps)


def _prepare(spec: RunSpec, tokenizer: Any, reporter: Reporter, pilot: float | None,
             dist: Dist) -> tuple[Any, Any]:
    """The full preparation and, for a pilot, its sample; rank 0 first, so the others read its cache."""
    from engine.data import prepare

    if not dist.is_main:
        dist.barrier()
    prepared = prepare(spec.data, tokenizer, cache_dir=cache_dir(), log=reporter.log)
    sample = None
    if pilot is not None:
        sample = prepare(spec.data, tokenizer, cache_dir=cache_dir(), subset=pilot, log=reporter.log)
    if dist.is_main:
        dist.barrier()
    return prepared, sample


def _train(run_dir: Path, reporter: Reporter, stop: StopFlag, resume: bool, pilot: float | None,
           dist: Dist, device: torch.device | None) -> tuple[str, str]:
    spec = load_spec(run_dir / SPEC_FILE)
    if spec.train.devices > 1 and not dist.active:
        raise TrainError("train.devices > 1 runs under torchrun: start it with `slmtui train` or "
                         "`python -m engine run RUN_DIR`, which launch one process per device.")
    reporter.log(f"Loading {spec.model.name} for {spec.method.kind} training"
                 + (f" on {dist.world} processes." if dist.active else "."))
    loaded = load_for_training(spec, device=device)
    reporter.log(f"Preparing the data from {spec.data.path}.")
    prepared, sample = _prepare(spec, loaded.tokenizer, reporter, pilot, dist)
    if not prepared.train:
        raise TrainError("The training split is empty; add rows or lower data.val_fraction and data.test_fraction.")
    # each rank trains on its own shard; all take the same number of steps (the largest shard's)
    steps = full_steps = total_steps(spec.train, math.ceil(len(prepared.train) / dist.world))
    train_examples, run_spec, split_owner = prepared.train, spec, prepared
    if sample is not None and pilot is not None:
        if not sample.train:
            raise TrainError(f"A {pilot:.0%} pilot leaves no training rows; raise --pilot.")
        steps = _pilot_steps(spec.train, full_steps, math.ceil(len(sample.train) / dist.world), pilot)
        # one checkpoint (just before the end) and one evaluation (the final one) are timed
        run_spec = replace(spec, train=replace(spec.train, eval_every=0, save_every=max(1, steps - 1)))
        train_examples, split_owner = sample.train, sample
    if dist.is_main:
        from engine.data.prepare import SPLIT_FILE

        with writing_into(run_dir, run_dir / SPLIT_FILE):  # deleted while the model loaded: not recreated
            split_owner.save_split(run_dir)
    if len(train_examples) < dist.world:
        raise TrainError(f"{len(train_examples)} training rows cannot be shared by {dist.world} processes; "
                         "lower train.devices or add rows.")
    train_examples = train_examples[dist.rank :: dist.world]
    trainer = Trainer(loaded, run_spec, train_examples, prepared.validation, steps)
    trainer.dist = dist
    use_kernels(run_spec.train.kernels, trainer.model, loaded.device.type, reporter.log)
    if run_spec.train.compile:
        compile_layers(trainer.model, reporter.log)
    trainer.packer = choose_packer(run_spec, trainer.model, reporter.log)
    if trainer.packer is not None:
        use_varlen_attention(run_spec, loaded, trainer.packer, reporter.log)
    dist.broadcast_trainable(trainer.model)
    trainer.use_data_parallel(choose_strategy(trainer, dist.world, reporter.log))
    plan = run_disk_plan(run_spec, loaded.params_total, loaded.params_trainable, steps)
    problem = disk_problem(plan, run_dir)
    if problem:
        raise TrainError(problem)
    resumed_from = None
    if resume:
        resumed_from, folder = restore_latest(trainer, run_dir, lambda text, level: reporter.log(text, level=level))
    spec_dict = spec_to_dict(spec)
    reporter.emit(
        "started",
        spec=spec_dict,
        params_total=loaded.params_total,
        params_trainable=loaded.params_trainable,
        precision=loaded.precision.name,
        precision_reason=loaded.precision.reason,
        device=str(loaded.device),
        env=environment_fingerprint(loaded.device),
        estimate=planned_estimate(trainer),
        data=_data_summary(prepared),
        total_steps=steps,
        effective_batch=spec.train.micro_batch * spec.train.grad_accum * dist.world,
        devices=dist.world,
        strategy=trainer.strategy,
        disk={"checkpoint_bytes": plan.checkpoint_bytes, "checkpoints": plan.checkpoints,
              "total_bytes": plan.total_bytes},
        pilot=pilot,
        resumed_from=resumed_from,
        packing=packing_fields(trainer.packer, [len(train_examples[i].input_ids) for i in
                                                epoch_order(len(train_examples), spec.train.seed, 0)],
                               spec.train.micro_batch),
    )
    if resumed_from is not None:
        reporter.log(f"Resumed from step {resumed_from} ({folder.name}); the data order continues from there.")
    if pilot is not None:
        reporter.summary["pilot"] = pilot
        reporter.log(f"Pilot run: {steps} steps on a representative {pilot:.0%} of the training split "
                     f"(the full run has {full_steps}).")
    open_mirrors(reporter, spec.train.report_to, spec_dict)
    if should_rehearse(spec.train.rehearse, loaded.device) and not trainer.sharded:
        rehearse(trainer, reporter)
    elif trainer.sharded and spec.train.rehearse == "on":
        reporter.log("The fit rehearsal runs unsharded models only; this sharded run skips it.", level="warning")
    val_tokens = sum(len(e.input_ids) for e in prepared.validation)
    cfg = trainer.cfg  # after the rehearsal, which may have resized the micro-batch
    token_plan = step_token_plan([len(e.input_ids) for e in train_examples], cfg.micro_batch, cfg.grad_accum,
                                 cfg.seed, steps - trainer.step, trainer.stream.state)
    trainer.eta = LiveEta(token_plan, trainer.step, steps, cfg.eval_every, cfg.save_every, val_tokens)
    status = fit(trainer, reporter, run_dir, stop)
    loss = reporter.summary["latest"].get("loss")
    message = f"{status.capitalize()} at step {trainer.step} of {steps}"
    if isinstance(loss, float) and math.isfinite(loss):
        message += f", loss {loss:.4f}"
    if trainer.best_val_loss is not None:
        message += f", best validation loss {trainer.best_val_loss:.4f}"
    if pilot is not None and status == "completed":
        full_shard = prepared.train[dist.rank :: dist.world]
        message += ". " + _report_pilot(reporter, trainer.eta, spec, full_shard, full_steps, val_tokens)
    return status, message + "."


def _report_pilot(reporter: Reporter, live: LiveEta, spec: RunSpec, full_train: Any, full_steps: int,
                  val_tokens: int) -> str:
    """Emit the `eta` event predicting the full run from the pilot's timings; returns its sentence."""
    cfg = spec.train
    full_plan = step_token_plan([len(e.input_ids) for e in full_train], cfg.micro_batch, cfg.grad_accum,
                                cfg.seed, full_steps)
    prediction = predict_from_pilot(live, plan=full_plan, total_steps=full_steps, eval_every=cfg.eval_every,
                                    save_every=cfg.save_every, eval_tokens=val_tokens)
    if prediction is None:
        return "The pilot was too short to time past its warm-up, so there is no prediction"
    reporter.emit("eta", pilot=reporter.summary.get("pilot"), pilot_steps=live.total_steps, **prediction)
    return (f"The full run ({full_steps} steps) should take {format_duration(prediction['eta_s'])} "
            f"({format_duration(prediction['eta_low_s'])} to {format_duration(prediction['eta_high_s'])}), "
            "from its first step, warm-up excluded")

