"""`slmtui gpus` and `slmtui estimate`, run in-process against a fake NVML and a fake hub cache."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import slmtui.gpu
from slmtui.cli import planning
from slmtui.cli._common import UserError
from tests.gpu_fakes import FakeNvml

REPO = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser()
    planning.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    assert args.handler(args) == 0
    return capsys.readouterr().out


def fake_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    module = FakeNvml(count=count).module
    monkeypatch.setattr(slmtui.gpu, "inventory", lambda module_=None: slmtui.gpu.Nvml(module).snapshot())


def test_gpus_json_without_gpu_exits_zero_with_reason(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fake_gpus(monkeypatch, 0)
    data = json.loads(run(capsys, "gpus", "--json"))
    assert data["gpus"] == [] and "No NVIDIA GPU" in data["error"]
    assert "No NVIDIA GPU" in run(capsys, "gpus")


def test_gpus_with_two_gpus_shows_what_fits(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fake_gpus(monkeypatch, 2)
    data = json.loads(run(capsys, "gpus", "--json", "--seq", "512"))
    assert data["error"] is None and [g["index"] for g in data["gpus"]] == [0, 1]
    fits = {(r["model"], r["method"]): r for r in data["gpus"][0]["what_fits"]}
    assert fits[("qwen2.5-0.5b", "full")]["verdict"] == "fits"  # 78 GiB free on the fake H100
    assert fits[("qwen3-14b", "full")]["verdict"] == "exceeds" and fits[("qwen3-14b", "qlora")]["max_micro_batch"] > 0
    monkeypatch.setenv("COLUMNS", "160")
    text = run(capsys, "gpus")
    assert "NVIDIA H100 80GB HBM3" in text and "what fits in 78.0 GiB free" in text and "gen 5 x16" in text


def test_estimate_catalog_name_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = json.loads(run(capsys, "estimate", "--model", "qwen2.5-0.5b", "--method", "full", "--batch", "16",
                         "--seq", "512", "--loss", "standard", "--json"))
    assert out["model"] == "qwen2.5-0.5b" and out["total_gib"] == pytest.approx(32.51, rel=0.10)
    assert set(out["breakdown"]) >= {"weights", "activations", "logits", "optimizer states", "cuda context"}
    assert out["gpu"] is None and out["setup"]["loss"] == "standard"


def test_estimate_model_folder_config_file_and_gpu(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    by_dir = json.loads(run(capsys, "estimate", "--model", str(tiny_model_dir), "--json", "--gpu", "T4"))
    by_file = json.loads(run(capsys, "estimate", "--model", str(tiny_model_dir / "config.json"), "--json"))
    assert by_dir["total_gib"] == by_file["total_gib"] > 0.5
    assert by_dir["gpu"]["name"] == "T4" and by_dir["gpu"]["verdict"] == "fits"
    assert by_dir["gpu"]["max_micro_batch"] > 8
    text = run(capsys, "estimate", "--model", "llama-3.1-8b", "--method", "full", "--gpu", "24")
    assert "exceeds" in text and "does not fit" in text and "total" in text


def test_estimate_hub_id_from_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        run(capsys, "estimate", "--model", "acme/tiny-qwen")
    repo = tmp_path / "models--acme--tiny-qwen"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({
        "model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
        "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936, "tie_word_embeddings": True}))
    out = json.loads(run(capsys, "estimate", "--model", "acme/tiny-qwen", "--json"))
    catalog = json.loads(run(capsys, "estimate", "--model", "Qwen/Qwen2.5-0.5B", "--json"))
    assert out["model"] == "acme/tiny-qwen" and out["total_gib"] == catalog["total_gib"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "no-such-model"], "not a folder, a config.json, a catalog model or a hub id"),
    (["--model", "qwen2.5-0.5b", "--gpu", "Voodoo"], "Unknown GPU 'Voodoo'"),
    (["--model", "qwen2.5-0.5b", "--batch", "0"], "at least 1"),
])
def test_estimate_user_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match=message) as err:
        run(capsys, "estimate", *argv)
    assert "\n" not in str(err.value)


def test_estimate_folder_without_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match=r"has no config\.json"):
        run(capsys, "estimate", "--model", str(tmp_path))


def test_gpu_here_uses_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpus(monkeypatch, 1)
    name, capacity = planning.gpu_capacity("here")
    assert capacity == 78.0 and "free now" in name
    fake_gpus(monkeypatch, 0)
    with pytest.raises(UserError, match="No NVIDIA GPU"):
        planning.gpu_capacity("here")


def test_planning_never_imports_the_ml_stack(tiny_model_dir: Path) -> None:
    code = ("import sys, argparse; from slmtui.cli import planning; p = argparse.ArgumentParser(); "
            "planning.register(p.add_subparsers()); "
            f"a = p.parse_args(['estimate', '--model', {str(tiny_model_dir)!r}, '--json']); a.handler(a); "
            "a = p.parse_args(['gpus', '--json']); a.handler(a); "
            "bad = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'datasets') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr




def test_gpus_over_four_shards_what_one_does_not_hold(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fake_gpus(monkeypatch, 1)
    one = {(r["model"], r["method"]): r for r in json.loads(run(capsys, "gpus", "--json"))["gpus"][0]["what_fits"]}
    data = json.loads(run(capsys, "gpus", "--json", "--over", "4"))
    four = {(r["model"], r["method"]): r for r in data["gpus"][0]["what_fits"]}
    assert one[("qwen3-14b", "full")]["verdict"] == "exceeds" and one[("qwen3-14b", "full")]["shards"] == 1
    assert four[("qwen3-14b", "full")]["shards"] == 4 and four[("qwen3-14b", "qlora")]["shards"] == 1
    assert four[("qwen2.5-0.5b", "full")] == one[("qwen2.5-0.5b", "full")]  # one GPU holds it: not sharded
    monkeypatch.setenv("COLUMNS", "160")
    text = run(capsys, "gpus", "--over", "4")
    assert "Training over 4 such GPUs, per GPU; fsdp: sharded over all 4" in " ".join(text.split()) and " fsdp" in text


def test_estimate_per_gpu_under_fsdp_and_qlora_refused(capsys: pytest.CaptureFixture[str]) -> None:
    whole = json.loads(run(capsys, "estimate", "--model", "qwen2.5-7b", "--method", "full", "--json"))
    four = json.loads(run(capsys, "estimate", "--model", "qwen2.5-7b", "--method", "full", "--fsdp", "4", "--json"))
    assert four["setup"]["shards"] == 4 and four["total_gib"] < whole["total_gib"] / 2
    assert any("FSDP over 4 GPUs" in note for note in four["notes"])
    parser = argparse.ArgumentParser()
    planning.register(parser.add_subparsers())
    args = parser.parse_args(["estimate", "--model", "qwen2.5-7b", "--method", "qlora", "--fsdp", "2"])
    with pytest.raises(UserError, match="FSDP shards full, lora, dora, not qlora"):
        args.handler(args)
