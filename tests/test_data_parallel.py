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
import torch

from engine.modeling import load_for_training
from engine.train.loop import Trainer
from tests.conftest import REPO
from tests.data_parallel_case import STEPS, case_examples, case_spec

pytestmark = pytest.mark.slow


def rank_env() -> dict[str, str]:
    """One thread per rank; a rank that crashes in native code prints its Python stack (a rank once aborted with
    "terminate called without an active exception" and nothing else to go on)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}


@pytest.mark.parametrize(("kind", "packing", "strategy"), [("lora", "off", "ddp"), ("full", "auto", "ddp"),
                                                         ("full", "auto", "fsdp"), ("lora", "auto", "fsdp"), ("dora", "off", "fsdp"), ("qlora", "off", "ddp")])
def test_two_ranks_train_as_one_process_on_the_same_global_batch(tiny_model_dir: Path, tmp_path: Path, kind: str,
                                                                  packing: str, strategy: str) -> None:
    out = tmp_path / "ranks.json"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(REPO / "tests" / "data_parallel_worker.py"), str(tiny_model_dir), str(out), kind,
                           packing, strategy], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=rank_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-12000:]
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


def trainable_state(trainer: Trainer) -> dict[str, dict]:
    """The trainer's trainable weights and optimizer state by parameter name (unsharded)."""
    from engine.train.sharded_state import named_optimizer_state

    weights = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    return {"weights": weights, "optimizer": named_optimizer_state(trainer)}


def assert_same_state(got: dict, want: dict) -> None:
    """`got` holds exactly `want`'s trainable weights and Adam moments (and, gathered, maybe more weights)."""
    assert want["weights"] and set(want["weights"]) <= set(got["weights"])  # gathered: tied frozen weights too
    for name, tensor in want["weights"].items():
        assert torch.equal(got["weights"][name], tensor), name
    got_state, want_state = got["optimizer"]["state"], want["optimizer"]["state"]
    assert set(got_state) == set(want_state) == set(want["weights"])
    for name, slots in want_state.items():
        for slot in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(got_state[name][slot]), torch.as_tensor(slots[slot])), (name, slot)


def test_a_checkpoint_moves_exactly_between_one_process_and_two_sharded_ranks(tiny_model_dir: Path,
                                                                              tmp_path: Path) -> None:
    """1 → 2: two FSDP ranks resume a one-process checkpoint holding exactly its weights and Adam moments.
    2 → 1: the checkpoint they write (an optimizer shard from each rank) resumes in one process exactly."""
    from engine.spec import dump_spec
    from engine.train.checkpoint import OPTIMIZER_SHARDED, checkpoint_folder, load_state

    spec = case_spec(tiny_model_dir, "lora", "off", micro_batch=4)
    loaded = load_for_training(spec)
    train, validation = case_examples(loaded.tokenizer)
    single = Trainer(loaded, spec, train, validation, total_steps=STEPS, shuffle=False)
    for _ in range(2):
        single.train_step()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "spec.toml").write_text(dump_spec(spec))
    checkpoint = single.save(run_dir)
    out = tmp_path / "ranks.pt"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(REPO / "tests" / "resharding_worker.py"), str(tiny_model_dir), str(run_dir),
                           str(checkpoint), str(out)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=rank_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-12000:]
    assert_same_state(torch.load(f"{out}.restored", weights_only=True), trainable_state(single))
    ranks = torch.load(out, weights_only=True)

    sharded = checkpoint_folder(run_dir, ranks["step"])
    assert ranks["step"] == 3 and load_state(sharded)["optimizer_keys"] == OPTIMIZER_SHARDED
    again = Trainer(load_for_training(spec), spec, train, validation, total_steps=STEPS, shuffle=False)
    again.restore(sharded)
    assert_same_state(ranks["stepped"], trainable_state(again))


@pytest.mark.parametrize("kind", ["lora", "dora"])
def test_a_saved_adapter_maps_back_to_every_trainable_parameter(tiny_model_dir: Path, tmp_path: Path,
                                                                kind: str) -> None:
    """How a sharded run reads an adapter checkpoint: by the model's own parameter names (DoRA's magnitudes are
    saved under another name than the parameter's)."""
    from engine.spec import dump_spec
    from engine.train.sharded_state import weights_by_name

    spec = case_spec(tiny_model_dir, kind, "off", micro_batch=4)
    loaded = load_for_training(spec)
    train, validation = case_examples(loaded.tokenizer)
    trainer = Trainer(loaded, spec, train, validation, total_steps=STEPS, shuffle=False)
    trainer.train_step()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "spec.toml").write_text(dump_spec(spec))
    named = weights_by_name(load_for_training(spec).model, trainer.save(run_dir))
    trained = trainable_state(trainer)["weights"]
    assert set(named) == set(trained) and any("magnitude" in name for name in named) == (kind == "dora")
    for name, tensor in trained.items():
        assert torch.equal(named[name], tensor), name
