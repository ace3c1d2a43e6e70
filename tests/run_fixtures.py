"""Synthetic run folders for tests of the run table, diffs and curves (no engine, no model: fast)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.protocol import EventWriter, write_json_atomic
from engine.spec import MethodSpec, RunSpec, TrainSpec, dump_spec, spec_to_dict

ENV = {"torch": "2.13.0", "transformers": "5.24.0", "peft": "0.21.0", "gpu": None, "python": "3.12.3"}


def make_run(runs: Path, run_id: str, *, rank: int = 16, lr: float = 2e-4, losses: list[float] | None = None,
             val: list[tuple[int, float]] | None = None, env: dict[str, Any] | None = None,
             status: str = "completed", started: float = 1_795_670_000.0, seconds: float = 125.0,
             fingerprint: str = "f00dfacecafe0123", payload_bytes: int = 0,
             tokens_per_s: float | None = None) -> Path:
    """A finished run folder: spec.toml, events.jsonl (started, metrics, eval, finished) and summary.json; with
    `tokens_per_s`, its metrics carry a throughput rising to it and a CPU run's resident memory."""
    spec = replace(RunSpec(name=run_id.split("-", 2)[-1]), method=MethodSpec(rank=rank),
                   train=TrainSpec(lr=lr, micro_batch=4, grad_accum=2))
    spec.model.name = "tiny-llama"
    spec.data.path = "tickets.jsonl"
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text(dump_spec(spec), encoding="utf-8")
    losses = losses if losses is not None else [2.5 - 0.1 * i for i in range(10)]
    val = val if val is not None else [(5, losses[len(losses) // 2] + 0.05), (10, losses[-1] + 0.05)]
    with EventWriter(run_dir / "events.jsonl", run=run_id) as events:
        events.emit("started", spec=spec_to_dict(spec), env=env or ENV, precision="fp32", device="cpu",
                    data={"fingerprint": fingerprint, "description": ["Read 40 rows."]}, t=started)
        for step, loss in enumerate(losses, start=1):
            system = {"tokens_per_s": tokens_per_s * min(1.0, step / 5), "rss_gib": 1.5 + 0.01 * step} \
                if tokens_per_s is not None else {}
            events.emit("metrics", step=step, loss=loss, lr=lr, t=started + step, **system)
        for step, value in val:
            events.emit("eval", step=step, val_loss=value, perplexity=2.718**value, t=started + step)
        events.emit("finished", status=status, summary={"message": ""}, t=started + seconds)
    best_val = min(val, key=lambda p: p[1]) if val else None
    write_json_atomic(run_dir / "summary.json", {
        "run": run_id, "status": status, "step": len(losses), "total_steps": len(losses), "started": started,
        "ended": started + seconds, "latest": {"step": len(losses), "loss": losses[-1] if losses else None},
        "best": {"val_loss": best_val[1], "val_step": best_val[0]} if best_val else {}})
    if payload_bytes:
        (run_dir / "adapter").mkdir()
        (run_dir / "adapter" / "weights.bin").write_bytes(b"\0" * payload_bytes)
    return run_dir
