"""The built-in demo's run spec: LoRA on the tiny demo model and the shipped support-ticket dataset.

Light (no ML stack): the dataset and model are built by `python -m engine make-demo`; this module only
says where they are and how the demo trains.
"""

from __future__ import annotations

from pathlib import Path

from engine.paths import demo_dir
from engine.spec import DataSpec, MethodSpec, ModelSpec, RunSpec, TrainSpec

DEMO_NAME = "demo"
#: Optimizer steps of a default demo run (about 1.8 epochs of the 2,700 training tickets): 60-120 s on a 2-core
#: CPU, from idle (~13k tokens/s on one torch thread) to shared with other jobs (docs/benchmarks.md).
DEMO_STEPS = 600


def demo_spec(home: Path, steps: int | None = None) -> RunSpec:
    """The demo run: LoRA r=16 on the demo model, micro-batch 8, eight validation passes with generations."""
    root = demo_dir(home)
    max_steps = DEMO_STEPS if steps is None else steps
    return RunSpec(
        name=DEMO_NAME,
        model=ModelSpec(name=str(root / "model")),
        data=DataSpec(path=str(root / "data" / "tickets.jsonl"), max_length=256),
        method=MethodSpec(kind="lora", rank=16, alpha=32.0, dropout=0.0),
        train=TrainSpec(micro_batch=8, lr=2e-3, schedule="cosine", warmup_steps=10, max_steps=max_steps,
                        eval_every=max(10, max_steps // 8), save_every=0, eval_samples=2, device="cpu",
                        seed=0),
    )
