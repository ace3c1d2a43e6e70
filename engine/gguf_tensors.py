"""The tensors of a merged Hugging Face folder, renamed, permuted and quantised for a GGUF file.

Names come from gguf's tensor-name map; Llama's Q/K rows are permuted as llama.cpp's converter does (it
stores rotary pairs interleaved, Hugging Face stores them in halves). A Llama-3 rope scaling becomes the
`rope_freqs` tensor, computed as that converter computes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: Rows of a Q8_0 block: a tensor whose last dimension does not divide stays f16 (as llama.cpp's converter does).
Q8_BLOCK = 32


def permute_for_rope(weights: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """Hugging Face's rotary halves -> llama.cpp's interleaved pairs (`LlamaModel.permute` of the converter)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _state_dict(hf_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    from safetensors import safe_open

    for path in sorted(hf_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield key, fh.get_tensor(key).float().numpy()


def llama3_rope_factors(config: dict[str, Any]) -> np.ndarray:
    """The per-frequency factors of a `rope_type = llama3` scaling."""
    scaling = config["rope_scaling"]
    base = float(config.get("rope_theta", 10000.0))
    dim = int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
    factor = float(scaling.get("factor", 8.0))
    low, high = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
    old_context = float(scaling.get("original_max_position_embeddings", 8192))
    factors = []
    for freq in 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim)):
        wavelen = 2 * math.pi / freq
        if wavelen < old_context / high:
            factors.append(1.0)
        elif wavelen > old_context / low:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def gguf_tensors(hf_dir: Path, config: dict[str, Any], arch: str) -> Iterator[tuple[str, np.ndarray]]:
    """(gguf name, float32 array) for every tensor llama.cpp needs, in the order the checkpoint holds them."""
    import gguf

    from engine.gguf_convert import GgufError

    arch_enum = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}[arch]
    names = gguf.get_tensor_name_map(arch_enum, int(config["num_hidden_layers"]))
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    tied = bool(config.get("tie_word_embeddings", False))
    for key, array in _state_dict(hf_dir):
        if key.endswith("rotary_emb.inv_freq") or (tied and key == "lm_head.weight"):
            continue
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise GgufError(f"The checkpoint holds a tensor llama.cpp has no name for ({key}); use llama.cpp's "
                            "convert_hf_to_gguf.py")
        if arch == "llama" and key.endswith("q_proj.weight"):
            array = permute_for_rope(array, heads, heads)
        elif arch == "llama" and key.endswith("k_proj.weight"):
            array = permute_for_rope(array, heads, kv_heads)
        yield name, array
    scaling = config.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "llama3":
        yield gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", llama3_rope_factors(config)


def encode_tensor(array: np.ndarray, quant: str) -> tuple[np.ndarray, Any]:
    """The array as stored, and its gguf type: 1-D tensors float32, matrices f16 or Q8_0."""
    import gguf

    if array.ndim <= 1:
        return array.astype(np.float32), gguf.GGMLQuantizationType.F32
    if quant == "q8_0" and array.shape[-1] % Q8_BLOCK == 0:
        qtype = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(array.astype(np.float32), qtype), qtype
    return array.astype(np.float16), gguf.GGMLQuantizationType.F16
