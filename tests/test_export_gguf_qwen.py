"""The GGUF converter on tiny random Qwen2 and Qwen3 models (the tiny tokenizer, their own layouts: Qwen2's Q/K/V
biases and Qwen3's Q/K norms, unpermuted Q/K, an untied output) and, where llama-cpp-python is installed, their
parity with transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_export_gguf import chat_examples, field, needs_llama_cpp

#: Per architecture: the tensor only it has, and the pre-tokenizer transformers gives the tiny tokenizer there
#: (transformers 5 rebuilds a `qwen2` model's tokenizer with Qwen2's digit-by-digit split).
LAYOUTS = {"qwen2": ("blk.0.attn_q.bias", "qwen2"), "qwen3": ("blk.0.attn_q_norm.weight", "gpt-2")}


def tiny_qwen(kind: str, tokenizer_dir: Path, out: Path) -> Path:
    """A random two-layer Qwen model on the tiny tokenizer, with attention strong enough to matter."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen3Config

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config_class = {"qwen2": Qwen2Config, "qwen3": Qwen3Config}[kind]
    config = config_class(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=16 if kind == "qwen2" else 32,
                          max_position_embeddings=512, tie_word_embeddings=False,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    scale = {"q_proj": 10.0, "k_proj": 10.0, "v_proj": 30.0, "o_proj": 30.0, "embed": 2.0}
    with torch.no_grad():
        for name, weights in model.named_parameters():
            weights.mul_(next((v for k, v in scale.items() if k in name), 1.0))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.parametrize("kind", sorted(LAYOUTS))
def test_qwen_converts_with_its_own_layout(kind: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    import gguf
    from safetensors.numpy import load_file

    from engine.gguf_convert import write_gguf

    model_dir = tiny_qwen(kind, tiny_model_dir, tmp_path / kind)
    facts = write_gguf(model_dir, tmp_path / "model.gguf", "f16", kind)
    reader = gguf.GGUFReader(tmp_path / "model.gguf")
    only_here, pre = LAYOUTS[kind]
    assert facts["arch"] == kind and field(reader, "general.architecture") == kind
    assert field(reader, "tokenizer.ggml.pre") == pre
    assert field(reader, f"{kind}.attention.key_length") == (16 if kind == "qwen2" else 32)
    tensors = {t.name: t for t in reader.tensors}
    assert only_here in tensors and "output.weight" in tensors
    state = load_file(str(model_dir / "model.safetensors"))
    q = state["model.layers.1.self_attn.q_proj.weight"]  # Qwen's rotary layout is llama.cpp's: no permutation
    np.testing.assert_allclose(np.asarray(tensors["blk.1.attn_q.weight"].data, dtype=np.float32).reshape(q.shape), q,
                               rtol=2e-3, atol=1e-3)


@needs_llama_cpp
@pytest.mark.parametrize("kind", sorted(LAYOUTS))
def test_llama_cpp_runs_qwen_like_transformers(kind: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    from engine.gguf_convert import write_gguf
    from engine.gguf_parity import parity_check

    model_dir = tiny_qwen(kind, tiny_model_dir, tmp_path / kind)
    write_gguf(model_dir, tmp_path / "model.gguf", "f16", kind)
    parity = parity_check(model_dir, tmp_path / "model.gguf", "f16", chat_examples(model_dir))
    assert parity["passed"], parity["problems"]
    assert parity["top1_agreement_decisive"] >= 0.99 and parity["tricky_text_tokenized_identically"]


CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.mark.parametrize(("template", "vocab", "has", "lacks"), [
    (CHATML, {"<|im_end|>", "<|endoftext|>"}, ['TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}',
                                               'PARAMETER stop "<|endoftext|>"', 'PARAMETER stop "<|im_end|>"'], ["# "]),
    ("{{ messages[0]['content'] }} [/INST]", {"</s>"}, ["#   {{ messages[0]['content'] }} [/INST]",
                                                       'PARAMETER stop "</s>"'], ["TEMPLATE"]),
    (None, set(), ["FROM ./m.gguf"], ["TEMPLATE", "#"]),
])
def test_modelfile_translates_known_templates_and_quotes_the_others(template: str | None, vocab: set[str],
                                                                    has: list[str], lacks: list[str]) -> None:
    from engine.ollama_modelfile import modelfile_text

    eos = "<|endoftext|>" if "<|endoftext|>" in vocab else ("</s>" if vocab else None)
    text = modelfile_text("m.gguf", {"chat_template": template, "bos_token": "<s>", "eos_token": eos,
                                     "add_bos": True, "vocab": vocab})
    assert all(h in text for h in has) and not any(x in text for x in lacks), text
