"""A merged Hugging Face Llama or Qwen2/Qwen3 folder as one GGUF file, for llama.cpp and Ollama.

Follows llama.cpp's `convert_hf_to_gguf.py` for these architectures, through the `gguf` package: its writer,
its tensor-name map and `SpecialVocab` (merges, special token ids, the chat template). Llama's Q and K
projections are permuted into llama.cpp's rotary layout, as that converter does; Qwen's are not. Norms and
other 1-D tensors stay float32; `q8_0` is quantised by gguf's numpy code. `q4_k_m` is not: gguf-py cannot
quantise to it, so it is refused before any work, pointing at llama.cpp's `llama-quantize`.
"""

from __future__ import annotations

import json
from hashlib import sha256
from pathlib import Path
from typing import Any

#: Hugging Face `model_type` -> gguf architecture name (`gguf.MODEL_ARCH_NAMES` spells them this way).
ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
QUANTS = ("f16", "q8_0", "q4_k_m")
#: llama.cpp's pre-tokenizer names for the hashes its converter knows, for the architectures above.
PRE_TOKENIZER_HASHES = {
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",
    "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen",
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",
}
#: The text llama.cpp's converter tokenizes to recognise a pre-tokenizer (copied from it).
CHECK_TEXT = ("\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ "
              "🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
              "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, "
              "'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL")


class GgufError(Exception):
    """A conversion the user must change; one sentence."""


def check_convertible(config: dict[str, Any], quant: str) -> str:
    """The gguf architecture name for a model `config.json`, or `GgufError` before any work is done."""
    if quant == "q4_k_m":
        raise GgufError("The gguf package cannot quantise to q4_k_m; export --quant f16 and run llama.cpp's "
                        "`llama-quantize model.gguf model-q4_k_m.gguf Q4_K_M` on it")
    if quant not in QUANTS:
        raise GgufError(f"Unknown quantisation {quant!r}; use one of {', '.join(QUANTS)}")
    model_type = str(config.get("model_type", ""))
    if model_type not in ARCHITECTURES:
        raise GgufError(f"GGUF export converts {', '.join(sorted(ARCHITECTURES))} models, not {model_type or 'this'} "
                        "one; export --merge and convert it with llama.cpp's convert_hf_to_gguf.py")
    scaling = config.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type")) if isinstance(scaling, dict) else None
    if kind not in (None, "default", "llama3", "linear"):
        raise GgufError(f"GGUF export does not convert {kind!r} rope scaling; use llama.cpp's convert_hf_to_gguf.py")
    return ARCHITECTURES[model_type]


#: The splitting regexes of llama.cpp's `llama-bpe` (Llama 3) and `qwen2` pre-tokenizers (they differ in digits).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")


def _known_pre_tokenizers() -> dict[str, Any]:
    from tokenizers import Regex
    from tokenizers import pre_tokenizers as pt

    def split(regex: str) -> Any:
        return pt.Sequence([pt.Split(Regex(regex), behavior="isolated"),
                            pt.ByteLevel(add_prefix_space=False, use_regex=False)])

    return {"gpt-2": pt.ByteLevel(add_prefix_space=False), "llama-bpe": split(LLAMA3_SPLIT),
            "qwen2": split(QWEN2_SPLIT)}


def pre_tokenizer_name(tokenizer: Any) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenizer: by llama.cpp's hash of a released model's tokens,
    else the known one that splits llama.cpp's check text exactly as this tokenizer does."""
    found = PRE_TOKENIZER_HASHES.get(sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest())
    if found:
        return found
    pre = tokenizer.backend_tokenizer.pre_tokenizer
    pieces = pre.pre_tokenize_str(CHECK_TEXT) if pre is not None else None
    for name, known in _known_pre_tokenizers().items():
        if known.pre_tokenize_str(CHECK_TEXT) == pieces:
            return name
    raise GgufError("The tokenizer's pre-tokenizer is not one llama.cpp recognises; convert the merged model "
                    "with llama.cpp's convert_hf_to_gguf.py")


def _vocabulary(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens and token types as llama.cpp's `get_vocab_base` makes them."""
    import gguf

    reverse = {id_: token for token, id_ in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        token = reverse[i]
        if token in added:
            if not decoder[i].normalized:
                token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
            special = decoder[i].special or (token.startswith("<|") and token.endswith("|>"))
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    return tokens, types


def write_vocabulary(writer: Any, hf_dir: Path, vocab_size: int) -> dict[str, Any]:
    """The BPE vocabulary, merges, special tokens and chat template; returns what the Modelfile needs."""
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    tokenizer_json = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if (tokenizer_json.get("model") or {}).get("type") != "BPE":
        raise GgufError("GGUF export converts byte-level BPE tokenizers only; convert this model with llama.cpp's "
                        "convert_hf_to_gguf.py")
    tokens, types = _vocabulary(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(tokenizer))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=vocab_size)
    if special.chat_template is None and tokenizer.chat_template:  # transformers 5 keeps it in chat_template.jinja
        special.chat_template = tokenizer.chat_template
    probe = tokenizer("a").input_ids
    special.add_special_token["bos"] = bool(probe) and probe[0] == tokenizer.bos_token_id
    special.add_special_token["eos"] = bool(probe) and probe[-1] == tokenizer.eos_token_id and len(probe) > 1
    special.add_to_gguf(writer, quiet=True)
    return {"chat_template": special.chat_template, "bos_token": tokenizer.bos_token,
            "eos_token": tokenizer.eos_token, "add_bos": special.add_special_token["bos"],
            "vocab": set(tokenizer.get_vocab())}


def write_hyperparameters(writer: Any, config: dict[str, Any], file_type: int) -> None:
    """The architecture's numbers, as llama.cpp's converter writes them."""
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or config["hidden_size"] // heads)
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_file_type(file_type)
    scaling = config.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "linear":
        import gguf

        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(scaling["factor"]))


def write_gguf(hf_dir: Path, out_file: Path, quant: str, name: str) -> dict[str, Any]:
    """Convert the merged model in `hf_dir` to `out_file`; returns the tokenizer facts and tensor count."""
    import gguf

    from engine.gguf_tensors import encode_tensor, gguf_tensors

    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    arch = check_convertible(config, quant)
    file_type = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant]
    writer = gguf.GGUFWriter(out_file, arch)
    try:
        writer.add_name(name)
        write_hyperparameters(writer, config, int(file_type))
        vocab = write_vocabulary(writer, hf_dir, int(config["vocab_size"]))
        count = 0
        for tensor_name, array in gguf_tensors(hf_dir, config, arch):
            data, qtype = encode_tensor(array, quant)
            writer.add_tensor(tensor_name, data, raw_dtype=qtype)
            count += 1
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return {**vocab, "arch": arch, "tensors": count}
