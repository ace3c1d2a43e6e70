"""Logs of runs trained elsewhere, as the tools that write them do: an HF Trainer `trainer_state.json` and a
TensorBoard log folder (torch's `SummaryWriter`, the one the Trainer's TensorBoard callback uses)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: The run both logs describe: 60 steps, a loss logged every 5, an evaluation every 20.
MAX_STEPS, LOG_EVERY, EVAL_EVERY, STEPS_PER_EPOCH = 60, 5, 20, 30


def train_loss(step: int) -> float:
    return 2.0 + 1.5 * math.exp(-step / 20)


def eval_loss(step: int) -> float:
    return train_loss(step) + 0.12


def trainer_state(runtime: float = 95.25) -> dict[str, Any]:
    """A trainer_state.json's content as `Trainer.save_state` writes it at the end of a 2-epoch run."""
    history: list[dict[str, Any]] = []
    for step in range(LOG_EVERY, MAX_STEPS + 1, LOG_EVERY):
        epoch = step / STEPS_PER_EPOCH
        history.append({"epoch": epoch, "grad_norm": 1.3 - step / 100, "learning_rate": 5e-5 * (1 - step / MAX_STEPS),
                        "loss": round(train_loss(step), 4), "step": step})
        if step % EVAL_EVERY == 0:
            history.append({"epoch": epoch, "eval_loss": eval_loss(step), "eval_runtime": 1.234,
                            "eval_samples_per_second": 81.0, "eval_steps_per_second": 10.2, "step": step})
    history.append({"epoch": 2.0, "step": MAX_STEPS, "total_flos": 1234567.0, "train_loss": 2.61,
                    "train_runtime": runtime, "train_samples_per_second": 5.04, "train_steps_per_second": 0.63})
    return {
        "best_global_step": 60, "best_metric": eval_loss(60), "best_model_checkpoint": "out/checkpoint-60",
        "epoch": 2.0, "eval_steps": EVAL_EVERY, "global_step": MAX_STEPS, "is_hyper_param_search": False,
        "is_local_process_zero": True, "is_world_process_zero": True, "log_history": history,
        "logging_steps": LOG_EVERY, "max_steps": MAX_STEPS, "num_input_tokens_seen": 0, "num_train_epochs": 2,
        "save_steps": 30, "stateful_callbacks": {"TrainerControl": {"args": {"should_training_stop": True}}},
        "total_flos": 1234567.0, "train_batch_size": 8, "trial_name": None, "trial_params": None,
    }


def write_trainer_state(folder: Path) -> Path:
    """`folder/checkpoint-60/trainer_state.json`, indented as the Trainer writes it."""
    path = folder / "checkpoint-60" / "trainer_state.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(trainer_state(), indent=2, sort_keys=True) + "\n")
    return path


def write_tensorboard_log(folder: Path) -> Path:
    """`folder/runs/<date>_<host>/events.out.tfevents.*` with the Trainer's tags; returns `folder/runs`."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(folder / "runs" / "Dec02_12-00-00_gpu-box"))
    for step in range(LOG_EVERY, MAX_STEPS + 1, LOG_EVERY):
        writer.add_scalar("train/loss", train_loss(step), step)
        writer.add_scalar("train/learning_rate", 5e-5 * (1 - step / MAX_STEPS), step)
        writer.add_scalar("train/epoch", step / STEPS_PER_EPOCH, step)
        if step % EVAL_EVERY == 0:
            writer.add_scalar("eval/loss", eval_loss(step), step)
    writer.close()
    return folder / "runs"
