"""One rank of tests/test_data_parallel.py, run under torchrun: a few steps of the tiny model on this rank's shard
through the engine's data-parallel step; rank 0 writes the step losses and gradient norms as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.modeling import load_for_training
from engine.train.distributed import end_rank, init_distributed, shutdown_distributed
from engine.train.loop import Trainer
from tests.data_parallel_case import STEPS, case_examples, case_spec


def main() -> None:
    model_dir, out, kind, packing, strategy = sys.argv[1:6]
    dist, device = init_distributed("cpu")
    spec = case_spec(Path(model_dir), kind, packing, micro_batch=2)
    loaded = load_for_training(spec, device)
    train, validation = case_examples(loaded.tokenizer)
    trainer = Trainer(loaded, spec, train[dist.rank :: dist.world], validation, total_steps=STEPS, shuffle=False)
    trainer.dist = dist
    dist.broadcast_trainable(trainer.model)
    trainer.use_data_parallel(strategy)
    steps = [trainer.train_step() for _ in range(STEPS)]
    figures = {"loss": [dist.mean(s.loss).item() for s in steps], "grad_norm": [s.grad_norm.item() for s in steps],
               "samples": [dist.total(s.samples, loaded.device) for s in steps], "wrapped": type(trainer.step_loss).__name__}
    if strategy == "fsdp":  # every rank evaluates a sharded model, and gets the one answer
        figures["val_loss"] = trainer.evaluate()["val_loss"]
    if dist.is_main:
        Path(out).write_text(json.dumps(figures))
    shutdown_distributed(wait_for_peers=True)
    end_rank(0)  # as the engine's ranks end


if __name__ == "__main__":
    main()
