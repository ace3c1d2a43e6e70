"""Reading the HF Trainer's `trainer_state.json` (stdlib only).

Its `log_history` is a list of dicts, one per logging or evaluation step: training entries carry `loss`,
`learning_rate`, `grad_norm`, `epoch` and `step`; evaluation entries `eval_loss` (and `eval_runtime`...); the
last entry of a finished training carries `train_runtime` and `train_loss` (the mean, not a step's loss).
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.external.log import ACCEPTED, ExternalLog, ExternalLogError, number

#: trainer_state.json's per-step keys -> the names of a `metrics` event.
_TRAIN_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "epoch": "epoch"}
#: Its settings kept in the imported run's spec, as `train.NAME`.
_SETTINGS = {"max_steps": "max_steps", "train_batch_size": "micro_batch", "num_train_epochs": "epochs",
             "eval_steps": "eval_every", "save_steps": "save_every", "logging_steps": "log_every"}
#: Far more than the log of any real run (a million logged steps is about 150 MB): beyond it, not one.
MAX_BYTES = 1 << 30


def read_trainer_state(path: Path) -> ExternalLog:
    """An `ExternalLog` from a trainer_state.json; `ExternalLogError` (one sentence) when it is not one."""
    if path.stat().st_size > MAX_BYTES:
        raise ExternalLogError(f"{path} is over {MAX_BYTES >> 30} GiB, too large to be a trainer_state.json; "
                               f"give {ACCEPTED}.")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ExternalLogError(f"{path} is not text, so not a trainer_state.json; give {ACCEPTED}.") from None
    except ValueError as exc:
        raise ExternalLogError(f"{path} is not JSON ({exc}); give {ACCEPTED}.") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise ExternalLogError(f"{path} has no log_history list, so it is not a trainer_state.json written by the "
                               f"HF Trainer; give {ACCEPTED}.")
    assert isinstance(state, dict)
    log = ExternalLog("trainer_state", path)
    runtime = None
    for entry in history:
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            continue
        step = entry["step"]
        if "train_runtime" in entry:  # the closing summary: its train_loss is the run's mean, not a step's
            runtime = number(entry.get("train_runtime"))
            continue
        if number(entry.get("eval_loss")) is not None:
            log.add(step, "val_loss", float(entry["eval_loss"]))
        if number(entry.get("loss")) is not None:
            for key, name in _TRAIN_KEYS.items():
                value = number(entry.get(key))
                if value is not None:
                    log.add(step, name, value)
    if not log.train and not log.evals:
        raise ExternalLogError(f"The log_history of {path} has no training or evaluation loss to import.")
    log.last_step = state.get("global_step") if isinstance(state.get("global_step"), int) else max(log.steps)
    log.total_steps = state.get("max_steps") if isinstance(state.get("max_steps"), int) else None
    log.settings = {name: state[key] for key, name in _SETTINGS.items()
                    if number(state.get(key)) is not None and state[key] > 0}
    log.ended = path.stat().st_mtime  # the Trainer writes it at each save, the last one at the end
    log.started = log.ended - runtime if runtime is not None and runtime >= 0 else None
    return log
