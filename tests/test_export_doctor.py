"""`export` (adapter and merged model) on a short tiny run, and `doctor` (rules on made-up facts, and for real)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from engine.commands.doctor import diagnose
from engine.commands.export import main as export_main
from engine.train.loop import StopFlag
from engine.train.run import execute
from tests.conftest import Cli
from tests.test_engine_run import make_run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A 4-step LoRA run (its folder stands in HOME/runs for the CLI test)."""
    runs = tmp_path_factory.mktemp("home") / "runs"
    runs.mkdir()
    run_dir = make_run(runs, tiny_model_dir, max_steps=4, eval_every=0, save_every=0, eval_samples=0)
    assert execute(run_dir, StopFlag()) == "completed"
    return run_dir


def test_the_merged_model_loads_alone_and_matches_base_plus_adapter(trained_run: Path, tmp_path: Path,
                                                                   tiny_model_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    assert export_main([str(trained_run), str(out), "--merge"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "merged" and result["dtype"] == "float32" and result["bytes"] > 0
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()

    merged = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer("Classify ticket 7: my order", return_tensors="pt")
    generated = merged.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert generated.shape[1] == ids["input_ids"].shape[1] + 4

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        base_logits = base(**ids).logits
        adapted = PeftModel.from_pretrained(copy.deepcopy(base), str(trained_run / "adapter"))(**ids).logits
        merged_logits = merged(**ids).logits
    assert torch.allclose(merged_logits, adapted, atol=1e-4)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-4)  # the adapter did something
    assert export_main([str(trained_run), str(out)]) == 2  # not empty: refused
    assert "not empty" in capsys.readouterr().err


def test_cli_exports_the_adapter_alone(cli: Cli, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "adapter"
    runs = str(trained_run.parent)
    result = cli.json("export", trained_run.name[:12], str(out), "--json", SLMTUI_RUNS=runs, OMP_NUM_THREADS="1")
    assert result["kind"] == "adapter" and result["out"] == str(out)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file()
    missing = cli("export", "nope", str(tmp_path / "x"), SLMTUI_RUNS=runs)
    assert missing.returncode == 1 and "No run matches" in missing.stderr


def facts(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "env": {"torch": "2.13.0+cpu", "transformers": "5.24.0", "peft": "0.22.1", "bitsandbytes": "0.50.2"},
        "cuda": {"available": False, "torch_cuda": None, "devices": [], "bf16": False, "nvidia_gpus": None},
        "smoke_4bit": {"device": "cpu", "ok": True, "rel_error": 0.1, "backend": "CPU", "error": None},
        "disk": [{"what": "home", "path": "/h", "free_gib": 100.0, "total_gib": 200.0}],
        "conflicts": [], "transformers_min_peft": "0.22.0", "python": "3.11.7",
    }
    for key, value in changes.items():
        if isinstance(value, dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


@pytest.mark.parametrize(("changes", "severity", "words"), [
    ({"cuda": {"nvidia_gpus": 2}}, "error", "CPU build"),
    ({"cuda": {"nvidia_gpus": 1, "torch_cuda": "12.6"}}, "error", "cannot use"),
    ({"cuda": {"available": True, "torch_cuda": "12.6", "bf16": True, "nvidia_gpus": 1}}, "error",
     "CPU library on a CUDA machine"),
    ({"smoke_4bit": {"ok": False, "error": "RuntimeError: no kernel"}}, "error", "smoke test failed"),
    ({"env": {"peft": "0.21.2"}}, "warning", "wants peft >= 0.22.0"),
    ({"env": {"bitsandbytes": None}}, "warning", "qlora and qdora cannot run"),
    ({"conflicts": [{"package": "peft", "version": "0.21", "requires": "torch>=3", "installed": "2.13"}]},
     "warning", "requires torch>=3"),
    ({"disk": [{"what": "runs", "path": "/r", "free_gib": 3.0, "total_gib": 10.0}]}, "warning", "Only 3.0 GiB"),
    ({"python": "3.9.18"}, "error", "older than 3.10"),
])
def test_doctor_rules(changes: dict[str, Any], severity: str, words: str) -> None:
    found = [p for p in diagnose(facts(**changes)) if words in p["problem"]]
    assert len(found) == 1 and found[0]["severity"] == severity and found[0]["fix"]


def test_a_healthy_cuda_box_has_no_problems() -> None:
    healthy = facts(cuda={"available": True, "torch_cuda": "12.6", "bf16": True, "nvidia_gpus": 1,
                          "devices": [{"name": "H100"}]}, smoke_4bit={"backend": "CUDA", "device": "cuda:0"})
    assert diagnose(healthy) == []
    assert [p["severity"] for p in diagnose(facts())] == ["info"]  # the CPU box: said, not an error


def test_doctor_runs_for_real(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    from slmtui.cli.doctor import print_report

    report = cli.json("doctor", "--json", OMP_NUM_THREADS="1")
    assert report["env"]["torch"] and report["smoke_4bit"]["ok"] is True  # NF4 on this machine's backend
    assert 0.01 < report["smoke_4bit"]["rel_error"] < 0.25
    assert {d["what"] for d in report["disk"]} == {"home", "runs"}
    assert all({"severity", "problem", "fix"} <= set(p) for p in report["problems"])
    assert report["ok"] == (not any(p["severity"] == "error" for p in report["problems"]))
    print_report(report)
    text = capsys.readouterr().out
    assert "4-bit smoke test" in text and "passed on cpu" in text
    assert text.count("fix: ") == len(report["problems"])
