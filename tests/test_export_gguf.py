"""`export --format gguf` on a short tiny-Llama run: the GGUF read back with gguf's reader, the Modelfile, the
refusals, and (where llama-cpp-python is installed) the parity check against transformers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.commands.export import main as export_main
from engine.gguf_parity import llama_cpp_available
from engine.gguf_tensors import permute_for_rope
from engine.protocol import SUMMARY_FILE, read_events, read_json
from engine.train.loop import StopFlag
from engine.train.run import execute
from tests.conftest import Cli
from tests.test_engine_run import make_run

#: The parity tests: CI does not build llama-cpp-python (about 7 minutes), so there they skip and say why.
needs_llama_cpp = pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed, so "
                                     "llama.cpp cannot load the GGUF (README: From checkpoint to deployment)")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A 4-step LoRA run on the tiny Llama."""
    run_dir = make_run(tmp_path_factory.mktemp("runs"), tiny_model_dir, max_steps=4, eval_every=0, save_every=0,
                       eval_samples=0)
    assert execute(run_dir, StopFlag()) == "completed"
    return run_dir


@pytest.fixture(scope="module")
def merged_state(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The run's merged model (the `--merge` export), as float32 arrays."""
    from safetensors.numpy import load_file

    out = tmp_path_factory.mktemp("merged") / "m"
    assert export_main([str(trained_run), str(out), "--merge", "--dtype", "fp32"]) == 0
    return load_file(str(out / "model.safetensors"))


def export_gguf(run_dir: Path, out: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    assert export_main([str(run_dir), str(out), "--format", "gguf", *flags]) == 0, capsys.readouterr().err
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def field(reader: Any, key: str) -> Any:
    return reader.fields[key].contents()


def test_f16_gguf_holds_the_merged_weights_tokenizer_and_template(trained_run: Path, tmp_path: Path,
                                                                 merged_state: dict[str, np.ndarray],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import gguf
    from transformers import AutoTokenizer

    result = export_gguf(trained_run, tmp_path / "out", capsys)
    assert result["kind"] == "gguf" and result["arch"] == "llama" and result["quant"] == "f16"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Modelfile", Path(result["gguf"]).name]
    reader = gguf.GGUFReader(result["gguf"])
    tokenizer = AutoTokenizer.from_pretrained(json.loads((trained_run / "adapter" / "adapter_config.json")
                                                         .read_text())["base_model_name_or_path"])
    assert field(reader, "general.architecture") == "llama"
    assert field(reader, "tokenizer.chat_template") == tokenizer.chat_template
    assert field(reader, "tokenizer.ggml.model") == "gpt2" and field(reader, "tokenizer.ggml.pre") == "gpt-2"
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == len(tokenizer) and tokens[tokenizer.eos_token_id] == "<|eot_id|>"
    assert field(reader, "tokenizer.ggml.eos_token_id") == tokenizer.eos_token_id
    assert len(field(reader, "tokenizer.ggml.merges")) > 100

    tensors = {t.name: t for t in reader.tensors}
    heads, kv_heads = 4, 2
    expected = {
        "token_embd.weight": merged_state["model.embed_tokens.weight"],
        "blk.1.attn_q.weight": permute_for_rope(merged_state["model.layers.1.self_attn.q_proj.weight"], heads, heads),
        "blk.1.attn_k.weight": permute_for_rope(merged_state["model.layers.1.self_attn.k_proj.weight"], heads,
                                                kv_heads),
        "blk.0.attn_v.weight": merged_state["model.layers.0.self_attn.v_proj.weight"],
        "blk.0.ffn_down.weight": merged_state["model.layers.0.mlp.down_proj.weight"],
        "output_norm.weight": merged_state["model.norm.weight"],
    }
    assert len(tensors) == len(merged_state) and "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    for name, want in expected.items():
        got = np.asarray(tensors[name].data, dtype=np.float32).reshape(want.shape)
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4, err_msg=name)
    unpermuted = np.asarray(tensors["blk.1.attn_q.weight"].data, dtype=np.float32)
    assert not np.allclose(unpermuted, merged_state["model.layers.1.self_attn.q_proj.weight"], atol=1e-3)

    modelfile = (tmp_path / "out" / "Modelfile").read_text()
    assert modelfile.startswith(f"FROM ./{Path(result['gguf']).name}\n")
    assert '<|start_header_id|>{{ .Role }}<|end_header_id|>' in modelfile
    assert 'PARAMETER stop "<|eot_id|>"' in modelfile
    if not llama_cpp_available():
        assert result["parity"] == {"checked": False, "reason": result["parity"]["reason"]}
        assert "llama-cpp-python is not installed" in result["parity"]["reason"]
    assert result["recorded"] is True
    summary = read_json(trained_run / SUMMARY_FILE)
    assert summary["export"]["out"] == str(tmp_path / "out") and summary["export"]["quant"] == "f16"
    exported = [e for e in read_events(trained_run / "events.jsonl") if e["type"] == "exported"]
    assert exported[-1]["out"] == str(tmp_path / "out")


def test_q8_0_tensors_dequantize_close_to_the_merged_ones(trained_run: Path, tmp_path: Path,
                                                         merged_state: dict[str, np.ndarray],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import gguf

    result = export_gguf(trained_run, tmp_path / "q8", capsys, "--quant", "q8_0")
    tensors = {t.name: t for t in gguf.GGUFReader(result["gguf"]).tensors}
    tensor = tensors["blk.0.ffn_gate.weight"]
    assert tensor.tensor_type == gguf.GGMLQuantizationType.Q8_0
    want = merged_state["model.layers.0.mlp.gate_proj.weight"]
    got = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(want.shape)
    assert np.abs(got - want).max() <= np.abs(want).max() / 127 + 1e-6  # one Q8_0 step at most
    assert not np.array_equal(got, want)


def test_cli_exports_gguf_and_the_journal_records_it(cli: Cli, trained_run: Path, tmp_path: Path) -> None:
    from slmtui.reconcile import reconcile
    from slmtui.store import Store

    out = tmp_path / "cli-gguf"
    done = cli("export", trained_run.name[:12], str(out), "--format", "gguf", "--quant", "q8_0",
               SLMTUI_RUNS=str(trained_run.parent), OMP_NUM_THREADS="1")
    assert done.returncode == 0, done.stderr
    assert f"{out / trained_run.name.split('-', 2)[-1]}" in done.stdout and "Modelfile" in done.stdout
    assert ("Parity check skipped" in done.stdout) != llama_cpp_available()
    store = Store(tmp_path / "home")
    reconcile(store, trained_run.parent)
    texts = [e.text for e in store.entries(run=trained_run.name) if f"Exported to gguf (q8_0) in {out}." in e.text]
    assert len(texts) == 1
    assert ("Parity with transformers on" in texts[0]) == llama_cpp_available()


def test_a_run_an_engine_holds_is_left_alone(trained_run: Path) -> None:
    from engine.gguf_export import record
    from engine.runlock import RunLock

    before = (trained_run / "events.jsonl").read_bytes(), (trained_run / SUMMARY_FILE).read_bytes()
    engine_lock = RunLock(trained_run)
    engine_lock.acquire()
    try:
        result = {"out": "/x", "format": "gguf", "quant": "f16", "bytes": 1, "parity": {"checked": False}}
        assert record(trained_run, result) is False
    finally:
        engine_lock.release()
    assert ((trained_run / "events.jsonl").read_bytes(), (trained_run / SUMMARY_FILE).read_bytes()) == before


@pytest.mark.parametrize(("name", "stem"), [("demo", "demo"), ("my run/v2", "my-run-v2"), ("../..", "model"),
                                            ("tickets\x1b[31m", "tickets-31m")])
def test_the_gguf_file_is_named_after_the_run_safely(name: str, stem: str) -> None:
    from engine.gguf_export import file_stem

    assert file_stem(name) == stem


@pytest.mark.parametrize(("flags", "words"), [
    (["--quant", "q4_k_m"], "llama-quantize"),
    (["--quant", "q3"], "Unknown quantisation"),
])
def test_what_gguf_cannot_do_is_one_sentence_before_any_work(trained_run: Path, tmp_path: Path, flags: list[str],
                                                             words: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "refused"
    assert export_main([str(trained_run), str(out), "--format", "gguf", *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not out.exists()


def test_an_architecture_it_cannot_convert_is_refused(trained_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from engine.gguf_convert import GgufError, check_convertible

    with pytest.raises(GgufError, match="not gemma2 one"):
        check_convertible({"model_type": "gemma2"}, "f16")
    with pytest.raises(GgufError, match="'yarn' rope scaling"):
        check_convertible({"model_type": "qwen2", "rope_scaling": {"type": "yarn", "factor": 4}}, "f16")
    assert check_convertible({"model_type": "qwen3"}, "q8_0") == "qwen3"


@needs_llama_cpp
@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_llama_cpp_behaves_like_transformers(trained_run: Path, tmp_path: Path, quant: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    result = export_gguf(trained_run, tmp_path / quant, capsys, "--quant", quant)
    parity = result["parity"]
    print(json.dumps({k: v for k, v in parity.items() if k != "chat_template"}), file=sys.stderr)
    assert parity["checked"] and parity["examples"] > 0, parity
    assert parity["chat_template"]["identical"], parity["chat_template"]
    assert parity["tokenization_identical"] == parity["examples"]
    if quant == "f16":
        assert parity["top1_agreement_decisive"] >= 0.99 and parity["greedy_identical"] == parity["examples"], parity
        assert abs(parity["perplexity_gap"]) < 0.01
    assert parity["passed"], parity["problems"]


@pytest.fixture(scope="module")
def sharp_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with larger attention weights: attention (and so the rotary layout) decides its next
    tokens, which a random init at std 0.02 barely lets it do (there, even unpermuted Q/K agree on top-1)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("sharp")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        for name, weights in model.named_parameters():
            scale = {"q_proj": 10.0, "k_proj": 10.0, "v_proj": 30.0, "o_proj": 30.0, "embed": 2.0}
            weights.mul_(next((v for k, v in scale.items() if k in name), 1.0))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def chat_examples(model_dir: Path, n: int = 4) -> list[Any]:
    """A few prompt/response rows of the tiny corpus as the data preparation makes them (response scored)."""
    from transformers import AutoTokenizer

    from engine.data.prepare import Example
    from tests.conftest import TINY_CORPUS

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for line in TINY_CORPUS[::150][:n]:
        prompt, response = line.split(" Reply: ")
        head = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
        tail = [*tokenizer(response, add_special_tokens=False).input_ids, tokenizer.eos_token_id]
        head = list(head["input_ids"] if hasattr(head, "keys") else head)  # a BatchEncoding in transformers 5
        rows.append(Example(input_ids=head + tail, labels=[-100] * len(head) + tail, prompt=prompt,
                            response=response))
    return rows


@needs_llama_cpp
def test_parity_holds_where_attention_matters_and_catches_an_unpermuted_conversion(
        sharp_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.gguf_tensors
    from engine.gguf_convert import write_gguf
    from engine.gguf_parity import parity_check

    examples = chat_examples(sharp_model_dir)
    write_gguf(sharp_model_dir, tmp_path / "right.gguf", "f16", "sharp")
    right = parity_check(sharp_model_dir, tmp_path / "right.gguf", "f16", examples)
    print(json.dumps({k: v for k, v in right.items() if k != "chat_template"}), file=sys.stderr)
    assert right["passed"] and right["top1_agreement_decisive"] >= 0.99, right["problems"]
    monkeypatch.setattr(engine.gguf_tensors, "permute_for_rope", lambda weights, *heads: weights)
    write_gguf(sharp_model_dir, tmp_path / "wrong.gguf", "f16", "sharp")
    wrong = parity_check(sharp_model_dir, tmp_path / "wrong.gguf", "f16", examples)
    print(json.dumps({k: v for k, v in wrong.items() if k != "chat_template"}), file=sys.stderr)
    assert not wrong["passed"] and wrong["top1_agreement_decisive"] < 0.5 and wrong["greedy_identical"] == 0
    assert any("top-1 next token matches transformers' at" in p for p in wrong["problems"])
