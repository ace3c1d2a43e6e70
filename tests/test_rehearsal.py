"""Fit rehearsal on the CPU (runs, changes nothing, reports that memory is not measured), its micro-batch
choice, and the calibration file."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.calibration import load_calibration, ratio_for, record_ratio
from engine.catalog import load_catalog
from engine.estimate import calibrate, estimate_peak_memory
from engine.train.rehearsal import choose_micro_batch, should_rehearse


def test_should_rehearse() -> None:
    import torch

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert not should_rehearse("auto", cpu) and should_rehearse("auto", gpu)
    assert should_rehearse("on", cpu) and not should_rehearse("off", gpu)


@pytest.mark.parametrize(("measured", "capacity", "effective", "expected"), [
    ({8: 40.0, 4: 24.0}, 80.0, 32, 16),   # 8 + 4/sample: 72 GiB usable -> 16; 16 divides 32
    ({8: 40.0, 4: 24.0}, 80.0, 8, 8),     # never above the effective batch
    ({8: 40.0, 4: 24.0}, 30.0, 24, 4),    # 27 usable -> 4.75 -> 4
    ({8: 40.0, 4: 24.0}, 30.0, 10, 2),    # 4 fits, yet only 1, 2, 5, 10 divide 10
    ({1: 50.0}, 40.0, 16, 1),              # even 1 is over: 1, and the OOM guard takes over
])
def test_choose_micro_batch(measured: dict[int, float], capacity: float, effective: int, expected: int) -> None:
    assert choose_micro_batch(measured, capacity, effective)[0] == expected


def test_calibration_is_kept_per_model_method_gpu_and_applied(home: Path) -> None:
    assert ratio_for("m", "lora", "H100") is None and load_calibration() == {}
    record_ratio("m", "lora", "H100", 1.10)
    entry = record_ratio("m", "lora", "H100", 1.20)
    assert entry["ratio"] == pytest.approx(1.15) and entry["samples"] == 2
    assert ratio_for("m", "lora", "H100") == pytest.approx(1.15)
    assert ratio_for("m", "qlora", "H100") is None
    (home / "calibration.json").write_text("not json")
    assert load_calibration() == {}
    model = load_catalog().model("Qwen/Qwen2.5-0.5B")
    assert model is not None
    est = estimate_peak_memory(model.shape)
    scaled = calibrate(est, 1.15)
    assert scaled.total_gib == pytest.approx(est.total_gib * 1.15, abs=1e-3)
    assert scaled.breakdown["calibration"] == pytest.approx(scaled.total_gib - est.total_gib, abs=2e-3)
    assert calibrate(est, None) is est


def test_rehearsal_on_the_cpu_reports_and_leaves_training_unchanged(tiny_model_dir: Path) -> None:
    from engine.modeling import load_for_training, load_tokenizer
    from engine.train.loop import Trainer
    from engine.train.rehearsal import rehearse
    from tests.test_train_loop import make_spec
    from tests.train_helpers import build_examples, instruction_rows

    class Collect:
        def __init__(self) -> None:
            self.events: list[tuple[str, dict[str, object]]] = []

        def emit(self, type: str, **fields: object) -> None:
            self.events.append((type, fields))

        def log(self, text: str, level: str = "info") -> None:
            self.events.append(("log", {"text": text}))

    spec = make_spec(tiny_model_dir, "lora", micro_batch=4, grad_accum=2, lr=5e-3, schedule="constant")
    spec.method.dropout = 0.1  # consumes the RNG: the rehearsal must restore it
    examples = build_examples(load_tokenizer(spec.model), instruction_rows(24))
    curves = []
    for rehearsed in (False, True):
        trainer = Trainer(load_for_training(spec), spec, examples, [], total_steps=3)
        if rehearsed:
            reporter = Collect()
            fields = rehearse(trainer, reporter)  # type: ignore[arg-type]
            assert fields["measured_gib"] is None and fields["ratio"] is None
            assert (fields["micro_batch"], fields["grad_accum"]) == (4, 2)
            assert fields["longest_seq"] == max(len(e.input_ids) for e in examples)
            assert fields["estimate_gib"] > 0
            assert [t for t, _ in reporter.events] == ["rehearsal", "log"]
            assert not any(p.grad is not None for p in trainer.params)
        curves.append([trainer.train_step().loss.item() for _ in range(3)])
    assert curves[1] == curves[0]


def test_train_rehearse_flag_sets_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    import slmtui.launch
    from slmtui.cli import runs as runs_cli

    (tmp_path / "data.jsonl").write_text('{"text": "hello"}\n')
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text('name = "r"\n[model]\nname = "Qwen/Qwen2.5-0.5B"\n[data]\npath = "data.jsonl"\n')
    launched = []
    monkeypatch.setattr(slmtui.launch, "launch", lambda spec, runs_dir, **kw: launched.append(spec.train.rehearse))
    runs_cli.launch_spec(spec_path, tmp_path / "runs")
    runs_cli.launch_spec(spec_path, tmp_path / "runs", rehearse=True)
    assert launched == ["auto", "on"]
    parser = argparse.ArgumentParser()
    runs_cli.register(parser.add_subparsers())
    assert parser.parse_args(["train", "s.toml", "--rehearse"]).rehearse is True
