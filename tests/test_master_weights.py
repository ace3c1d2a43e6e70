"""Full fine-tuning's master weights: fp32 under bf16 autocast (the default) or pure bf16 as HF Trainer keeps a bf16
model, which halves the weights', gradients' and optimizer states' memory and estimates no more than HF's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.estimate import TrainSetup, estimate_peak_memory
from engine.modeling import load_for_training
from engine.train.loop import Trainer
from tests.test_train_loop import make_spec
from tests.train_helpers import Ex, build_examples, instruction_rows


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path) -> list[Ex]:
    from engine.modeling import load_tokenizer

    return build_examples(load_tokenizer(make_spec(tiny_model_dir, "full").model), instruction_rows(40))


@pytest.mark.parametrize("master", ["fp32", "bf16"])
def test_full_fine_tuning_keeps_its_master_weights_in_the_dtype_asked(tiny_model_dir: Path, examples: list[Ex],
                                                                     master: str) -> None:
    spec = make_spec(tiny_model_dir, "full", micro_batch=4, lr=2e-3, schedule="constant", precision="bf16",
                     master_weights=master)
    loaded = load_for_training(spec)
    want = torch.float32 if master == "fp32" else torch.bfloat16
    assert {p.dtype for p in loaded.model.parameters()} == {want}
    assert (master == "bf16") == ("bf16 master weights" in loaded.precision.reason)
    trainer = Trainer(loaded, spec, examples[:36], examples[36:], total_steps=12)
    losses = [trainer.train_step().loss.item() for _ in range(12)]
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5, losses
    states = [t for state in trainer.optimizer.state.values() for t in state.values()
              if isinstance(t, torch.Tensor) and t.dim() > 0]
    assert states and {t.dtype for t in states} == {want}


def test_bf16_master_weights_estimate_half_the_state_and_no_more_than_hf() -> None:
    from engine.catalog import load_catalog

    entry = load_catalog().model("qwen2.5-0.5b")
    assert entry is not None
    setup = TrainSetup(method="full", batch=4, seq=512, precision="bf16")
    fp32 = estimate_peak_memory(entry.shape, setup)
    bf16 = estimate_peak_memory(entry.shape, setup, master_weights="bf16")
    hf = estimate_peak_memory(entry.shape, setup, runner="hf")
    assert bf16.total_gib <= hf.total_gib
    per_param = (fp32.total_gib - bf16.total_gib) * 2**30 / fp32.params_total
    # weights, gradients and two Adam moments: 16 bytes a parameter against 8, and fp32 masters also keep the
    # 16-bit copies autocast makes of the weights (up to 2 bytes a parameter)
    assert 8 <= per_param <= 10


def test_a_sharded_full_fine_tuning_estimates_its_share_per_gpu() -> None:
    from engine.catalog import load_catalog
    from engine.spec import RunSpec
    from slmtui.fit import estimate_spec

    entry = load_catalog().model("qwen2.5-7b")
    assert entry is not None
    setup = TrainSetup(method="full", batch=1, seq=1024, precision="bf16")
    whole = estimate_peak_memory(entry.shape, setup)
    four = estimate_peak_memory(entry.shape, setup, shards=4)
    held = ("weights", "optimizer states")
    for part in held:
        assert four.breakdown[part] < whole.breakdown[part] / 3
    assert four.breakdown["activations"] == whole.breakdown["activations"]  # each GPU runs its own batch
    assert any("FSDP over 4 GPUs" in note for note in four.notes)
    with pytest.raises(ValueError, match="FSDP shards full, lora, dora, not qlora"):
        estimate_peak_memory(entry.shape, setup, method="qlora", shards=2)

    spec = RunSpec()
    spec.model.name, spec.method.kind, spec.data.max_length = "qwen2.5-7b", "full", 1024
    spec.train.micro_batch, spec.train.packing, spec.train.devices = 1, "off", 4
    on_one = estimate_spec(spec, "A100-80GB", 80.0)  # auto: unsharded it does not fit, so the engine shards it
    assert on_one.estimate.setup.shards == 4 and on_one.verdict == "fits"
    assert "on each of 4 A100-80GB (FSDP)" in on_one.sentence()
    spec.train.strategy = "ddp"
    assert estimate_spec(spec, "A100-80GB", 80.0).verdict == "exceeds"


def test_lora_shards_its_base_model_and_qlora_is_refused_in_one_sentence() -> None:
    from engine.catalog import load_catalog
    from engine.spec import RunSpec, SpecError, parse_spec, spec_to_dict
    from slmtui.fit import estimate_spec

    entry = load_catalog().model("qwen2.5-14b")
    assert entry is not None
    setup = TrainSetup(method="lora", batch=1, seq=1024, precision="bf16")
    whole, two = estimate_peak_memory(entry.shape, setup), estimate_peak_memory(entry.shape, setup, shards=2)
    for part in ("adapter weights", "optimizer states"):
        assert two.breakdown[part] == pytest.approx(whole.breakdown[part] / 2, abs=0.002), part
    assert two.breakdown["weights"] < whole.breakdown["weights"] * 0.7  # half, plus what is gathered whole

    spec = RunSpec()
    spec.model.name, spec.method.kind, spec.data.max_length = "qwen2.5-14b", "lora", 1024
    spec.train.micro_batch, spec.train.packing, spec.train.devices = 1, "off", 2
    auto = estimate_spec(spec, "A100-40GB", 40.0)  # unsharded it does not fit: the engine shards it, as here
    assert whole.total_gib > 40 and auto.estimate.setup.shards == 2
    assert "on each of 2 A100-40GB (FSDP)" in auto.sentence()
    spec.method.kind, spec.train.strategy = "qlora", "fsdp"
    spec.data.path = "rows.jsonl"
    with pytest.raises(SpecError) as info:
        parse_spec(spec_to_dict(spec), check_files=False)
    [problem] = info.value.problems
    assert problem.field == "train.strategy" and "does not shard qlora's 4-bit base model" in problem.message
