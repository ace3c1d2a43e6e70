"""The training loop in-process on the tiny model: loss falls, and matches HF Trainer on the same batches."""

from __future__ import annotations

from collections.abc import Sized
from pathlib import Path
from typing import Any

import pytest

from engine.modeling import load_for_training
from engine.spec import RunSpec
from engine.train.loop import Trainer
from engine.train.packing import choose_packer
from engine.train.schedule import get_lr
from tests.train_helpers import Ex, build_examples, instruction_rows


def make_spec(model_dir: Path, kind: str, **train: Any) -> RunSpec:
    spec = RunSpec(name="t")
    spec.model.name = str(model_dir)
    spec.method.kind = kind
    spec.method.dropout = 0.0
    spec.train.device = "cpu"
    for key, value in train.items():
        setattr(spec.train, key, value)
    return spec


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path) -> list[Ex]:
    from engine.modeling import load_tokenizer

    return build_examples(load_tokenizer(make_spec(tiny_model_dir, "lora").model), instruction_rows(48))


@pytest.mark.parametrize(("step", "schedule", "expected"), [
    (0, "cosine", 0.0), (2, "cosine", 0.5), (4, "cosine", 1.0), (14, "cosine", 0.0), (9, "cosine", 0.5),
    (9, "linear", 0.5), (14, "linear", 0.0), (9, "constant", 1.0), (1, "constant", 0.25),
])
def test_get_lr_warms_up_then_decays(step: int, schedule: str, expected: float) -> None:
    assert get_lr(step, base_lr=1.0, warmup_steps=4, total_steps=14, schedule=schedule) == pytest.approx(expected)


@pytest.mark.parametrize(("kind", "lr"), [("lora", 5e-3), ("full", 3e-3)])
def test_loss_falls(tiny_model_dir: Path, examples: list[Ex], kind: str, lr: float) -> None:
    spec = make_spec(tiny_model_dir, kind, micro_batch=4, lr=lr, schedule="constant")
    loaded = load_for_training(spec)
    assert (loaded.params_trainable < loaded.params_total) == (kind == "lora")
    trainer = Trainer(loaded, spec, examples[:40], examples[40:], total_steps=30)
    losses = [trainer.train_step().loss.item() for _ in range(30)]
    assert sum(losses[-5:]) / 5 < losses[0] - 0.5, losses  # nats; the untrained loss is ln(vocab) ~ 6.2
    before = trainer.evaluate()
    assert before["val_loss"] < losses[0] and len(before["samples"]) == 3
    assert {"prompt", "reference", "output"} <= set(before["samples"][0])


def hf_trainer_losses(spec: RunSpec, examples: list[Ex], tmp_path: Path) -> list[float]:
    from torch.utils.data import SequentialSampler
    from transformers import Trainer as HFTrainer
    from transformers import TrainingArguments

    from engine.train.batching import Collator

    collator = Collator(load_for_training(spec).tokenizer.pad_token_id)

    class InOrder(HFTrainer):
        def _get_train_sampler(self, *args: Any, **kwargs: Any) -> SequentialSampler:
            dataset = self.train_dataset
            assert isinstance(dataset, Sized)
            return SequentialSampler(dataset)

    cfg = spec.train
    args = TrainingArguments(
        output_dir=str(tmp_path / "hf"), per_device_train_batch_size=cfg.micro_batch,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr, lr_scheduler_type=cfg.schedule,
        warmup_steps=cfg.warmup_steps, max_steps=10, logging_steps=1, optim="adamw_torch", weight_decay=0.0,
        max_grad_norm=cfg.max_grad_norm, report_to=[], save_strategy="no", use_cpu=True, seed=cfg.seed,
        remove_unused_columns=False, disable_tqdm=True, dataloader_num_workers=0,
    )
    model = load_for_training(spec).model
    trainer = InOrder(model=model, args=args, train_dataset=examples,
                      data_collator=lambda rows: collator(rows))
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.parametrize(("kind", "grad_accum"), [("lora", 1), ("lora", 4), ("full", 4)])
def test_loss_matches_hf_trainer(tiny_model_dir: Path, examples: list[Ex], tmp_path: Path, kind: str,
                                 grad_accum: int) -> None:
    spec = make_spec(tiny_model_dir, kind, micro_batch=2, grad_accum=grad_accum, lr=2e-3, warmup_steps=2,
                     schedule="cosine")
    trainer = Trainer(load_for_training(spec), spec, examples, [], total_steps=10, shuffle=False)
    ours = [trainer.train_step().loss.item() for _ in range(10)]
    theirs = hf_trainer_losses(spec, examples, tmp_path)
    assert len(theirs) == 10
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == pytest.approx(b, rel=1e-3), (step, ours, theirs)
    # the curve moved: equality is not just the untrained model's loss repeated
    assert abs(ours[-1] - ours[0]) > 1e-2


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_restoring_a_checkpoint_continues_the_same_curve(tiny_model_dir: Path, examples: list[Ex], tmp_path: Path,
                                                         kind: str) -> None:
    spec = make_spec(tiny_model_dir, kind, micro_batch=4, grad_accum=2, lr=3e-3, warmup_steps=2)
    straight = Trainer(load_for_training(spec), spec, examples, [], total_steps=8)
    expected = [straight.train_step().loss.item() for _ in range(8)]

    first = Trainer(load_for_training(spec), spec, examples, [], total_steps=8)
    head = [first.train_step().loss.item() for _ in range(4)]
    folder = first.save(tmp_path)
    second = Trainer(load_for_training(spec), spec, examples, [], total_steps=8)  # fresh weights
    second.restore(folder)
    assert second.step == 4
    tail = [second.train_step().loss.item() for _ in range(4)]
    assert head + tail == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("packing", ["off", "auto"])
def test_a_resume_keeps_what_an_out_of_memory_shrink_found(tiny_model_dir: Path, examples: list[Ex], tmp_path: Path,
                                                          packing: str) -> None:
    spec = make_spec(tiny_model_dir, "lora", micro_batch=4, grad_accum=1, packing=packing)
    first = Trainer(load_for_training(spec), spec, examples, [], total_steps=4)
    first.packer = choose_packer(spec, first.model)
    first.train_step()
    # what the OOM guard leaves after two shrinks: a smaller micro-batch (or token budget), checkpointing on
    first.cfg.micro_batch, first.cfg.grad_accum = 2, 2
    if first.packer is not None:
        first.packer.tokens //= 2
    first.turn_on_checkpointing()
    folder = first.save(tmp_path)

    fresh = make_spec(tiny_model_dir, "lora", micro_batch=4, grad_accum=1, packing=packing)  # the spec as written
    second = Trainer(load_for_training(fresh), fresh, examples, [], total_steps=4)
    second.packer = choose_packer(fresh, second.model)
    kept = second.restore(folder)
    assert (second.cfg.micro_batch, second.cfg.grad_accum, second.stream.micro_batch) == (2, 2, 2)
    assert second.cfg.gradient_checkpointing and second.model.get_base_model().is_gradient_checkpointing
    assert "micro-batch 2 with gradient accumulation 2" in kept and "gradient checkpointing" in kept
    if packing == "auto":
        assert second.packer is not None and second.packer.tokens == 4 * spec.data.max_length // 2
        assert f"micro-batch tokens {second.packer.tokens}" in kept
    assert second.train_step().samples == 4  # the same examples a step
    written = make_spec(tiny_model_dir, "lora", micro_batch=4, grad_accum=1, packing=packing)
    third = Trainer(load_for_training(written), written, examples, [], total_steps=4)
    third.packer = choose_packer(written, third.model)
    (tmp_path / "again").mkdir()
    assert third.restore(second.save(tmp_path / "again")) == kept  # and the next checkpoint keeps it too


def test_bf16_with_checkpointing_keeps_fp32_adapters_on_a_bf16_base(tiny_model_dir: Path, examples: list[Ex]) -> None:
    import torch

    spec = make_spec(tiny_model_dir, "lora", micro_batch=4, lr=5e-3, precision="bf16", gradient_checkpointing=True)
    loaded = load_for_training(spec)
    assert loaded.precision.autocast == torch.bfloat16
    params = list(loaded.model.parameters())
    assert {p.dtype for p in params if p.requires_grad} == {torch.float32}
    assert {p.dtype for p in params if not p.requires_grad} == {torch.bfloat16}
    trainer = Trainer(loaded, spec, examples[:32], [], total_steps=8)
    losses = [trainer.train_step().loss.item() for _ in range(8)]
    assert losses[-1] < losses[0] - 0.3, losses
