"""One training run from its folder: read the spec, prepare data, load the model, train, report.

Errors a user can cause end as a `log` event and a `finished` event of status `failed` with one sentence;
errors of the program also keep their traceback in engine.log.
"""

from __future__ import annotations

import math
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from engine.modeling import ModelError, load_for_training
from engine.paths import cache_dir
from engine.protocol import SPEC_FILE
from engine.spec import SpecError, load_spec, spec_to_dict, total_steps
from engine.train.environment import environment_fingerprint
from engine.train.loop import StopFlag, Trainer, fit
from engine.train.rehearsal import planned_estimate, rehearse, should_rehearse
from engine.train.reporting import Reporter, open_mirrors


class TrainError(Exception):
    """A run the user must change (no training examples, say); one sentence."""


def _user_errors() -> tuple[type[Exception], ...]:
    from engine.data import DataError

    return (SpecError, ModelError, TrainError, DataError)


def _data_summary(prepared: Any) -> dict[str, Any]:
    return {
        "fingerprint": prepared.fingerprint,
        "report": prepared.report,
        "description": prepared.description,
        "train": len(prepared.train),
        "validation": len(prepared.validation),
        "test": len(prepared.test),
    }


def execute(run_dir: Path, stop: StopFlag) -> str:
    """Run the training of `run_dir` to its end; returns the finished status (events say the rest)."""
    reporter = Reporter(run_dir, run_dir.name)
    started = time.time()
    status, message = "failed", ""
    try:
        status, message = _train(run_dir, reporter, stop)
    except _user_errors() as exc:
        message = str(exc)
        reporter.log(message, level="error")
    except torch.OutOfMemoryError as exc:
        status, message = "oom", f"Out of memory: {str(exc).splitlines()[0]}; lower train.micro_batch or data.max_length."
        reporter.log(message, level="error")
    except Exception as exc:
        traceback.print_exc()
        message = f"The engine failed unexpectedly ({type(exc).__name__}: {exc}); see engine.log."
        reporter.log(message, level="error")
    summary = {
        "message": message,
        "steps": reporter.summary["step"],
        "total_steps": reporter.summary["total_steps"],
        "seconds": round(time.time() - started, 2),
        "latest": reporter.summary["latest"],
        "best": reporter.summary["best"],
    }
    reporter.emit("finished", status=status, summary=summary)
    reporter.close()
    return status


def _train(run_dir: Path, reporter: Reporter, stop: StopFlag) -> tuple[str, str]:
    from engine.data import prepare

    spec = load_spec(run_dir / SPEC_FILE)
    if spec.train.devices > 1:
        raise TrainError("train.devices > 1 (several GPUs) is not available in this version; set devices = 1.")
    reporter.log(f"Loading {spec.model.name} for {spec.method.kind} training.")
    loaded = load_for_training(spec)
    reporter.log(f"Preparing the data from {spec.data.path}.")
    prepared = prepare(spec.data, loaded.tokenizer, cache_dir=cache_dir(), log=reporter.log)
    prepared.save_split(run_dir)
    if not prepared.train:
        raise TrainError("The training split is empty; add rows or lower data.val_fraction and data.test_fraction.")
    steps = total_steps(spec.train, len(prepared.train))
    trainer = Trainer(loaded, spec, prepared.train, prepared.validation, steps)
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
        effective_batch=spec.train.micro_batch * spec.train.grad_accum,
    )
    open_mirrors(reporter, spec.train.report_to, spec_dict)
    if should_rehearse(spec.train.rehearse, loaded.device):
        rehearse(trainer, reporter)
    status = fit(trainer, reporter, run_dir, stop)
    loss = reporter.summary["latest"].get("loss")
    message = f"{status.capitalize()} at step {trainer.step} of {steps}"
    if isinstance(loss, float) and math.isfinite(loss):
        message += f", loss {loss:.4f}"
    if trainer.best_val_loss is not None:
        message += f", best validation loss {trainer.best_val_loss:.4f}"
    return status, message + "."
