"""Two ranks of tests/test_data_parallel.py's resharding test, run under torchrun: resume a LoRA run checkpointed
by one process, sharded over both ranks; rank 0 saves the state it holds then (gathered whole), and after one
more step it checkpoints (each rank writing its optimizer shard) and saves the state again."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from engine.modeling import load_for_training
from engine.train.distributed import end_rank, init_distributed, shutdown_distributed
from engine.train.loop import Trainer
from engine.train.sharded_state import gathered_optimizer_state, gathered_weights
from tests.data_parallel_case import STEPS, case_examples, case_spec


def main() -> None:
    model_dir, run_dir, checkpoint, out = sys.argv[1:5]
    dist, device = init_distributed("cpu")
    spec = case_spec(Path(model_dir), "lora", "off", micro_batch=2)
    loaded = load_for_training(spec, device)
    train, validation = case_examples(loaded.tokenizer)
    trainer = Trainer(loaded, spec, train[dist.rank :: dist.world], validation, total_steps=STEPS, shuffle=False)
    trainer.dist = dist
    trainer.use_data_parallel("fsdp")
    trainer.restore(Path(checkpoint))
    restored = {"weights": gathered_weights(trainer), "optimizer": gathered_optimizer_state(trainer)}
    if dist.is_main:  # now: on the CPU, a gathered tensor that was never sharded is the one training updates
        torch.save(restored, out + ".restored")
    trainer.train_step()
    trainer.save(Path(run_dir))
    stepped = {"weights": gathered_weights(trainer), "optimizer": gathered_optimizer_state(trainer)}
    if dist.is_main:
        torch.save({"stepped": stepped, "step": trainer.step}, out)
    shutdown_distributed(wait_for_peers=True)
    end_rank(0)  # as the engine's ranks end


if __name__ == "__main__":
    main()
