"""QLoRA, DoRA and QDoRA train; the fused loss equals the standard one; an OOM is shrunk and survived."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.modeling import load_for_training
from engine.train.loop import Trainer
from tests.test_train_loop import make_spec
from tests.train_helpers import Ex, build_examples, instruction_rows


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path) -> list[Ex]:
    from engine.modeling import load_tokenizer

    return build_examples(load_tokenizer(make_spec(tiny_model_dir, "lora").model), instruction_rows(40))


@pytest.mark.parametrize("kind", ["qlora", "dora", "qdora"])
def test_method_trains_and_loss_falls(tiny_model_dir: Path, examples: list[Ex], kind: str) -> None:
    import bitsandbytes as bnb

    spec = make_spec(tiny_model_dir, kind, micro_batch=4, lr=5e-3, schedule="constant")
    spec.method.quant_type = "fp4" if kind == "qdora" else "nf4"
    loaded = load_for_training(spec)
    layers = [m for m in loaded.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert bool(layers) == kind.startswith("q")
    if layers:
        weight = layers[0].weight
        assert isinstance(weight, bnb.nn.Params4bit) and weight.quant_type == spec.method.quant_type
    magnitudes = [n for n, _ in loaded.model.named_parameters() if "lora_magnitude" in n]
    assert bool(magnitudes) == kind.endswith("dora")
    trainer = Trainer(loaded, spec, examples[:36], examples[36:], total_steps=20)
    losses = [trainer.train_step().loss.item() for _ in range(20)]
    assert sum(losses[-4:]) / 4 < losses[0] - 0.5, losses


def test_qdora_output_stays_in_the_compute_dtype(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CUDA autocast PEFT's 4-bit DoRA returns fp32; simulate that state and check the cast back."""
    import torch

    spec = make_spec(tiny_model_dir, "qdora", precision="bf16")
    loaded = load_for_training(spec)
    real = torch.is_autocast_enabled
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda *a: True if not a else real(*a))
    seen: list[torch.dtype] = []
    down = loaded.model.get_base_model().model.layers[-1].mlp.down_proj
    down.register_forward_hook(lambda m, a, o: seen.append(o.dtype))
    ids = torch.randint(0, loaded.model.config.vocab_size, (2, 12))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loaded.model(input_ids=ids)
    assert seen == [torch.bfloat16]


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_fused_loss_equals_standard_loss_and_gradients(tiny_model_dir: Path, kind: str) -> None:
    import torch

    from engine.train.evaluation import token_loss_sum
    from engine.train.fused_loss import fused_token_loss_sum

    loaded = load_for_training(make_spec(tiny_model_dir, kind))
    model = loaded.model
    torch.manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (3, 40))
    labels = ids.clone()
    labels[:, :7] = -100
    labels[2, 30:] = -100
    mask = torch.ones_like(ids)
    mask[2, 30:] = 0
    batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    results = []
    for fn in (token_loss_sum, lambda m, b: fused_token_loss_sum(m, b, chunk=16)):
        model.zero_grad(set_to_none=True)
        loss, n = fn(model, batch)
        loss.backward()
        results.append((loss.detach(), n, {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}))
    (l1, n1, g1), (l2, n2, g2) = results
    assert n1 == n2 == 89
    torch.testing.assert_close(l2, l1, rtol=1e-6, atol=1e-4)
    assert set(g1) == set(g2)
    for name in g1:
        torch.testing.assert_close(g2[name], g1[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fused_loss_trains_like_the_standard_loss(tiny_model_dir: Path, examples: list[Ex]) -> None:
    curves = []
    for loss in ("standard", "fused"):
        spec = make_spec(tiny_model_dir, "lora", micro_batch=4, lr=5e-3, schedule="constant", loss=loss, seed=3)
        trainer = Trainer(load_for_training(spec), spec, examples[:36], examples[36:], total_steps=5)
        assert trainer.loss_kind == loss
        curves.append([trainer.train_step().loss.item() for _ in range(5)])
    assert curves[1] == pytest.approx(curves[0], rel=1e-4)


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _run(tiny_model_dir: Path, home: Path, name: str, oom_at: str, **train: Any) -> tuple[str, list[dict[str, Any]]]:
    """An 8-step lora run with an OOM injected at `oom_at`; padded micro-batches unless `train` asks for packing."""
    import os

    from engine.protocol import SPEC_FILE
    from engine.spec import dump_spec
    from engine.train.loop import StopFlag
    from engine.train.run import execute
    from tests.train_helpers import write_jsonl

    home.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(home / f"{name}.jsonl", instruction_rows(48))
    spec = make_spec(tiny_model_dir, "lora", micro_batch=4, grad_accum=1, lr=5e-3, schedule="constant",
                     max_steps=8, eval_every=0, save_every=0, eval_samples=0, **{"packing": "off", **train})
    spec.data.path = str(data)
    run_dir = home / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / SPEC_FILE).write_text(dump_spec(spec))
    os.environ["SLMTUI_TEST_OOM_AT_STEP"] = oom_at
    try:
        status = execute(run_dir, StopFlag())
    finally:
        del os.environ["SLMTUI_TEST_OOM_AT_STEP"]
    return status, _events(run_dir)


def test_oom_is_shrunk_and_survived_with_the_same_effective_batch(tiny_model_dir: Path, home: Path) -> None:
    from engine.train import oom

    oom._injected.clear()
    status, events = _run(tiny_model_dir, home, "shrink", "3")
    assert status == "completed"
    [event] = [e for e in events if e["type"] == "oom"]
    assert event["step"] == 4 and event["action"] == "shrink"
    assert (event["micro_batch"], event["grad_accum"]) == (2, 2)
    assert event["batch_shape"][0] == 4 and event["longest_seq"] > 0
    changes = event["post_mortem"]["changes"]
    assert {c["spec"].get("train", {}).get("gradient_checkpointing") for c in changes} >= {True}
    assert all(c["saves_gib"] is not None for c in changes)
    assert changes == sorted(changes, key=lambda c: -c["saves_gib"])
    assert "[train]" in event["post_mortem"]["suggested_spec_toml"]
    assert (home / "runs" / "shrink" / oom.POST_MORTEM_FILE).exists()
    steps = [e for e in events if e["type"] == "metrics"]
    assert [e["step"] for e in steps] == list(range(1, 9))  # the curve continues: no step lost or repeated
    assert all(e["samples_per_s"] > 0 for e in steps)
    assert steps[-1]["loss"] < steps[0]["loss"]


def test_oom_that_persists_turns_on_checkpointing_then_stops(tiny_model_dir: Path, home: Path) -> None:
    status, events = _run(tiny_model_dir, home, "persist", "2:0")
    actions = [e["action"] for e in events if e["type"] == "oom"]
    assert actions == ["shrink", "shrink", "checkpointing", "stop"]
    assert status == "oom" and events[-1]["status"] == "oom"


def test_rehearsal_and_estimate_in_a_cpu_run(tiny_model_dir: Path, home: Path) -> None:
    status, events = _run(tiny_model_dir, home, "rehearse", "", rehearse="on")
    assert status == "completed" and not [e for e in events if e["type"] == "oom"]
    types = [e["type"] for e in events]
    assert types.index("started") < types.index("rehearsal") < types.index("metrics")
    [rehearsal] = [e for e in events if e["type"] == "rehearsal"]
    assert rehearsal["measured_gib"] is None and rehearsal["micro_batch"] == 4
    estimate = events[types.index("started")]["estimate"]
    assert estimate["total_gib"] > 0 and estimate["setup"]["batch"] == 4 and "weights" in estimate["breakdown"]


def test_oom_stop_ends_at_once(tiny_model_dir: Path, home: Path) -> None:
    status, events = _run(tiny_model_dir, home, "stop", "1:0", on_oom="stop")
    assert status == "oom" and [e["action"] for e in events if e["type"] == "oom"] == ["stop"]


def test_validation_with_the_fused_loss_equals_the_standard(tiny_model_dir: Path, examples: list[Ex]) -> None:
    spec = make_spec(tiny_model_dir, "lora", micro_batch=4)
    trainer = Trainer(load_for_training(spec), spec, examples[:36], examples[36:], total_steps=1)
    from engine.train.evaluation import validation_loss
    from engine.train.fused_loss import fused_token_loss_sum

    args = (trainer.model, examples[30:], 4, trainer.pad_id, trainer.device, None)
    assert validation_loss(*args, fused_token_loss_sum) == pytest.approx(validation_loss(*args), rel=1e-6)
