"""Synthetic run folders for the monitor's tests: events written with the real `EventWriter`, no training."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil

from engine.protocol import EventWriter, write_json_atomic

SUGGESTED = {"name": "fixed", "train": {"micro_batch": 4, "grad_accum": 2, "gradient_checkpointing": True}}


def write_run(home: Path, run_id: str, steps: int, *, alive: bool, total: int = 1000, status: str | None = None,
              oom: bool = False, t0: float = 1_795_677_000.0, evals: int = 50) -> Path:
    """A run folder with `steps` metrics events (an eval every `evals` steps); `alive` points its pid file at
    this test process (so it reads as running), else at no process; `status` adds a `finished` event."""
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text('name = "synthetic"\n')
    me = psutil.Process(os.getpid())
    pid = {"pid": me.pid, "create_time": me.create_time()} if alive else {"pid": 2**22 + 4321, "create_time": 1.0}
    (run_dir / "engine.pid").write_text(json.dumps(pid))
    with EventWriter(run_dir / "events.jsonl", run_id) as writer:
        writer.emit("started", t=t0, total_steps=total, precision="fp32", device="cpu", params_total=623_232,
                    params_trainable=65_536, spec={"name": "synthetic"})
        for step in range(1, steps + 1):
            append_metrics(writer, step, t0)
            if step % evals == 0:
                writer.emit("eval", t=t0 + step * 0.25, step=step, val_loss=4.0 - step / 400, perplexity=40.0,
                            samples=[{"prompt": "Ticket: my parcel is late", "output": "Category: shipping",
                                      "reference": "Category: shipping Reply: sorry"}])
        if oom:
            writer.emit("oom", t=t0 + steps * 0.25, step=steps + 1, batch_shape=[16, 1024], longest_seq=1024,
                        mem_at_failure_gib=79.1, message="CUDA out of memory", action="stop",
                        post_mortem={"changes": [{"change": "halve micro_batch to 8", "saves_gib": 12.5}],
                                     "suggested_spec": SUGGESTED})
        if status:
            writer.emit("finished", t=t0 + steps * 0.25 + 1, status=status,
                        summary={"message": f"{status.capitalize()} at step {steps}."})
    summary: dict[str, Any] = {"run": run_id, "status": status or "running", "step": steps, "total_steps": total,
                               "started": t0, "latest": {"loss": loss_at(steps)}, "best": {}}
    write_json_atomic(run_dir / "summary.json", summary)
    return run_dir


def loss_at(step: int) -> float:
    return 2.0 + 3.0 / (1 + step / 50)


def append_metrics(writer: EventWriter, step: int, t0: float) -> None:
    writer.emit("metrics", t=t0 + step * 0.25, step=step, epoch=step / 1000, loss=loss_at(step), lr=2e-4,
                grad_norm=0.5 + (step % 7) / 10, tokens_per_s=12_000.0 + step % 13, samples_per_s=100.0,
                mem_allocated_gib=1.5, mem_reserved_gib=2.0, mem_peak_gib=2.5)
