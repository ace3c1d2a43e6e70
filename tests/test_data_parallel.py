"""Two gloo processes through DistributedDataParallel or FSDP2 train exactly as one process does on the same global
batch: the same step losses and gradient norms (each rank's shard is every other example; one process takes them
in order, twice the micro-batch). A sharded run checkpoints whole weights and resumes on one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.modeling import load_for_training
from engine.train.loop import Trainer
from tests.conftest import REPO
from tests.data_parallel_case import STEPS, case_examples, case_spec

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("kind", "packing", "strategy"), [("lora", "off", "ddp"), ("full", "auto", "ddp"),
                                                         ("full", "auto", "fsdp")])
def test_two_ranks_train_as_one_process_on_the_same_global_batch(tiny_model_dir: Path, tmp_path: Path, kind: str,
                                                                  packing: str, strategy: str) -> None:
    out = tmp_path / "ranks.json"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(REPO / "tests" / "data_parallel_worker.py"), str(tiny_model_dir), str(out), kind,
                           packing, strategy], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = json.loads(out.read_text())
    assert ranks["wrapped"] == ("DistributedDataParallel" if strategy == "ddp" else "FSDPStepLoss")

    spec = case_spec(tiny_model_dir, kind, packing, micro_batch=4)
    loaded = load_for_training(spec)
    train, validation = case_examples(loaded.tokenizer)
    trainer = Trainer(loaded, spec, train, validation, total_steps=STEPS, shuffle=False)
    steps = [trainer.train_step() for _ in range(STEPS)]
    assert ranks["samples"] == [s.samples for s in steps] == [8] * STEPS
    assert ranks["loss"] == pytest.approx([s.loss.item() for s in steps], rel=1e-4)
    assert ranks["grad_norm"] == pytest.approx([s.grad_norm.item() for s in steps], rel=1e-4)
    if strategy == "fsdp":
        assert ranks["val_loss"] == pytest.approx(trainer.evaluate()["val_loss"], rel=1e-4)
