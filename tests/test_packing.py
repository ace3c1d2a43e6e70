"""Padding-free packing on the tiny model: each example keeps its own loss and attention, a packed step is the
padded step, the OOM guard halves the token budget, and auto falls back to padding where packing is not exact."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from engine.modeling import load_for_training
from engine.spec import RunSpec
from engine.train.batching import collate
from engine.train.evaluation import token_loss_sum
from engine.train.loop import Trainer
from engine.train.packing import (
    Packer,
    choose_packer,
    collate_packed,
    collate_packed_rows,
    group_rows,
    model_inputs,
    pack_rows,
    padding_stats,
)
from tests.test_train_loop import make_spec
from tests.train_helpers import Ex, build_examples, instruction_rows


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path) -> list[Ex]:
    from engine.modeling import load_tokenizer

    return build_examples(load_tokenizer(make_spec(tiny_model_dir, "lora").model), instruction_rows(48))


def eval_model(tiny_model_dir: Path, attention: str) -> Any:
    spec = make_spec(tiny_model_dir, "lora")
    spec.model.attn_implementation = attention
    return load_for_training(spec).model.eval()


def test_rows_keep_the_order_and_the_budget(examples: list[Ex]) -> None:
    budget = 3 * max(len(e.input_ids) for e in examples[:12])
    rows = pack_rows(examples[:12], budget)
    assert [e for row in rows for e in row] == examples[:12]
    assert all(sum(len(e.input_ids) for e in row) <= budget for row in rows) and len(rows) > 1
    assert [len(row) for row in pack_rows(examples[:3], 1)] == [1, 1, 1]  # a long example alone in its row
    batch = collate_packed(examples[:2])
    first = len(examples[0].input_ids)
    assert batch["position_ids"][0, first].item() == 0 and batch["labels"][0, first].item() == -100
    assert padding_stats([2, 4, 3], 2) == {"tokens": 9, "padded_tokens": 11, "ratio": round(9 / 11, 4)}


def test_rows_make_micro_batches_within_the_budget(examples: list[Ex]) -> None:
    longest = max(len(e.input_ids) for e in examples[:24])
    packer = Packer(tokens=6 * longest, row_tokens=2 * longest)
    assert packer.shape() == (3, 2 * longest)
    rows = pack_rows(examples[:24], packer.row_budget)
    groups = group_rows(rows, packer.tokens)
    assert [row for group in groups for row in group] == rows
    for group in groups:
        width = max(sum(len(e.input_ids) for e in row) for row in group)
        assert len(group) * width <= packer.tokens
    batches = packer.micro_batches(examples[:24])
    assert len(batches) == len(groups) and max(b["input_ids"].shape[0] for b in batches) > 1
    two = collate_packed_rows([examples[:1], examples[1:3]])
    short = len(examples[0].input_ids)
    assert two["input_ids"].shape == (2, len(examples[1].input_ids) + len(examples[2].input_ids))
    assert (two["labels"][0, short:] == -100).all() and (two["position_ids"][0, short:] == 0).all()
    assert Packer(tokens=100, row_tokens=1024).shape() == (1, 100)  # a budget under a row: one row of it


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_each_example_in_a_packed_row_has_its_own_loss(tiny_model_dir: Path, examples: list[Ex],
                                                        attention: str) -> None:
    model = eval_model(tiny_model_dir, attention)
    row = examples[:4]
    with torch.no_grad():
        packed = collate_packed(row)
        logits = model(**model_inputs(model, packed)).logits[0]
        start = 0
        for example in row:
            end = start + len(example.input_ids)
            targets = packed["labels"][0, start + 1 : end]
            own = torch.nn.functional.cross_entropy(logits[start : end - 1], targets, ignore_index=-100,
                                                    reduction="sum")
            alone, _ = token_loss_sum(model, collate([example], pad_id=0))
            assert own.item() == pytest.approx(alone.item(), abs=1e-5, rel=1e-6)
            start = end
        total, count = token_loss_sum(model, packed)
        padded, padded_count = token_loss_sum(model, collate(row, pad_id=0))
    assert count == padded_count and total.item() == pytest.approx(padded.item(), rel=1e-6)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_attention_does_not_cross_examples(tiny_model_dir: Path, examples: list[Ex], attention: str) -> None:
    model = eval_model(tiny_model_dir, attention)
    a, b = examples[0], examples[1]
    changed = Ex([(t + 7) % 500 for t in a.input_ids], a.labels, a.prompt, a.response)
    with torch.no_grad():
        before = model(**model_inputs(model, collate_packed([a, b]))).logits[0, len(a.input_ids):]
        after = model(**model_inputs(model, collate_packed([changed, b]))).logits[0, len(a.input_ids):]
    assert torch.equal(before, after)


@pytest.mark.parametrize(("loss", "rows"), [("standard", 1), ("fused", 1), ("standard", 2)],
                         ids=["standard-one-row", "fused-one-row", "standard-two-rows"])
def test_a_packed_step_is_the_padded_step(tiny_model_dir: Path, examples: list[Ex], loss: str, rows: int) -> None:
    curves = {}
    for packing in ("off", "auto"):
        torch.manual_seed(0)
        spec = make_spec(tiny_model_dir, "lora", micro_batch=4, grad_accum=2, lr=5e-3, schedule="constant",
                         packing=packing, loss=loss)
        trainer = Trainer(load_for_training(spec), spec, examples[:40], examples[40:], total_steps=4)
        assert trainer.loss_kind == loss
        trainer.packer = choose_packer(spec, trainer.model)
        if packing == "auto":  # rows of about three examples: not the padded micro-batches of four
            assert trainer.packer is not None and trainer.packer.row_tokens == spec.data.max_length  # sdpa: rows
            row = 3 * max(len(e.input_ids) for e in examples)
            trainer.packer.tokens, trainer.packer.row_tokens = rows * row, row
        steps = [trainer.train_step() for _ in range(4)]
        curves[packing] = ([s.loss.item() for s in steps], [s.grad_norm.item() for s in steps],
                           [s.samples for s in steps], trainer.stream.state)
    (loss_off, norm_off, samples_off, state_off), (loss_on, norm_on, samples_on, state_on) = curves.values()
    assert loss_on == pytest.approx(loss_off, rel=1e-5) and norm_on == pytest.approx(norm_off, rel=1e-4)
    assert samples_on == samples_off == [8] * 4 and state_on == state_off
    assert trainer.packer is not None
    assert max(b["input_ids"].shape[0] for b in trainer.packer.micro_batches(examples[:8])) == rows


def test_auto_falls_back_to_padding_where_packing_is_not_exact() -> None:
    lines: list[str] = []
    spec = RunSpec()
    spec.train.packing = "auto"

    def fake(model_type: str, **config: Any) -> Any:
        def forward(input_ids: Any, position_ids: Any = None) -> None: ...
        return SimpleNamespace(config=SimpleNamespace(model_type=model_type, _attn_implementation="sdpa", **config),
                               forward=forward)

    assert choose_packer(spec, fake("gpt2"), lines.append) is None
    assert choose_packer(spec, fake("mistral", sliding_window=256), lines.append) is None
    assert choose_packer(spec, fake("qwen2", sliding_window=4096, use_sliding_window=False)) == Packer(8 * 1024, 1024)
    assert len(lines) == 2 and "gpt2" in lines[0] and "sliding window" in lines[1]
    spec.train.packing = "off"
    assert choose_packer(spec, fake("llama")) is None


def test_oom_halves_the_token_budget_and_keeps_the_examples(tiny_model_dir: Path, home: Path) -> None:
    from engine.train import oom
    from tests.test_methods_oom import _run

    oom._injected.clear()
    status, events = _run(tiny_model_dir, home, "packed-oom", "3:2048", packing="auto", micro_batch_tokens=4096)
    assert status == "completed"
    [started] = [e for e in events if e["type"] == "started"]
    assert started["packing"]["on"] and started["packing"]["micro_batch_tokens"] == 4096
    setup = started["estimate"]["setup"]  # the budget in rows of max_length (sdpa: no row longer than that)
    assert 0 < started["packing"]["ratio"] < 1 and (setup["batch"], setup["seq"]) == (4, 1024)
    [event] = [e for e in events if e["type"] == "oom"]
    assert event["action"] == "shrink" and event["micro_batch_tokens"] == 2048
    assert (event["micro_batch"], event["grad_accum"]) == (4, 1) and event["batch_shape"][0] == 1
    steps = [e for e in events if e["type"] == "metrics"]
    assert [e["step"] for e in steps] == list(range(1, 9))
    assert os.environ.get(oom.TEST_OOM_ENV) is None


def test_a_packed_rehearsal_keeps_the_budget_that_fits(tiny_model_dir: Path, home: Path) -> None:
    from tests.test_methods_oom import _run

    status, events = _run(tiny_model_dir, home, "packed-rehearse", "", rehearse="on", packing="auto")
    assert status == "completed"
    [rehearsal] = [e for e in events if e["type"] == "rehearsal"]
    assert rehearsal["micro_batch_tokens"] == rehearsal["requested_micro_batch_tokens"] == 4 * 1024
    assert rehearsal["measured_gib"] is None and rehearsal["micro_batch"] == 4 and rehearsal["estimate_gib"] > 0
