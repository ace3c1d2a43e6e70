"""The catalog: every model's parameter count derived from its config numbers matches the stated count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.catalog import CatalogModel, ModelShape, count_params, load_catalog, shape_from_config

CATALOG = load_catalog()


@pytest.mark.parametrize("model", CATALOG.models, ids=lambda m: m.name)
def test_derived_parameter_count_matches_stated(model: CatalogModel) -> None:
    assert model.derived_params == pytest.approx(model.params, rel=0.02)


def test_exact_counts_of_known_checkpoints() -> None:
    # Totals the published safetensors hold: a wrong formula or a wrong config number breaks these exactly.
    assert CATALOG.model("Qwen/Qwen2.5-0.5B").derived_params == 494_032_768  # type: ignore[union-attr]
    assert CATALOG.model("gemma-3-1b").derived_params == 999_885_952  # type: ignore[union-attr]
    assert CATALOG.model("smollm2-135m").derived_params == 134_515_008  # type: ignore[union-attr]


def test_catalog_spans_small_to_sixteen_billion_and_is_well_formed() -> None:
    sizes = [m.params for m in CATALOG.models]
    assert min(sizes) < 200e6 and 14e9 < max(sizes) < 16.5e9
    names = [m.name for m in CATALOG.models]
    assert len(names) == len(set(names))
    for m in CATALOG.models:
        assert m.shape.num_attention_heads % m.shape.num_key_value_heads == 0, m.name
        assert m.license and "/" in m.hub_id and m.context_length >= 2048
    assert CATALOG.model("meta-llama/Llama-3.1-8B").gated and not CATALOG.model("qwen3-8b").gated  # type: ignore[union-attr]


@pytest.mark.parametrize(("reported", "name"), [
    ("NVIDIA H100 80GB HBM3", "H100-80GB"), ("Tesla T4", "T4"), ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
    ("NVIDIA A100-SXM4-80GB", "A100-80GB"), ("NVIDIA GeForce RTX 4090", "RTX-4090"), ("NVIDIA H200", "H200"),
    ("Tesla V100-SXM2-32GB", "V100-32GB"), ("l40s", "L40S"), ("NVIDIA RTX A6000", "RTX-A6000"),
])
def test_gpu_lookup_by_driver_name(reported: str, name: str) -> None:
    gpu = CATALOG.gpu(reported)
    assert gpu is not None and gpu.name == name
    assert CATALOG.gpu("Voodoo 5") is None


def test_shape_from_hf_config_files(tiny_model_dir: Path) -> None:
    tiny = shape_from_config(json.loads((tiny_model_dir / "config.json").read_text()))
    assert tiny.vocab_size == 512 and tiny.num_hidden_layers >= 1
    gemma3 = shape_from_config({"model_type": "gemma3", "text_config": {
        "hidden_size": 2560, "num_hidden_layers": 34, "num_attention_heads": 8, "num_key_value_heads": 4,
        "head_dim": 256, "intermediate_size": 10240, "vocab_size": 262208}, "vision_config": {
        "num_hidden_layers": 27, "hidden_size": 1152, "intermediate_size": 4304, "patch_size": 14, "image_size": 896}})
    assert count_params(gemma3) == CATALOG.model("gemma-3-4b").derived_params  # type: ignore[union-attr]
    assert gemma3.tie_word_embeddings and gemma3.qk_norm and gemma3.norms_per_layer == 4
    qwen2 = shape_from_config({"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24,
                               "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864,
                               "vocab_size": 151936, "tie_word_embeddings": True})
    assert count_params(qwen2) == 494_032_768
    with pytest.raises(ValueError, match="intermediate_size"):
        shape_from_config({"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1, "vocab_size": 9})


def test_fused_projection_models_count_the_same() -> None:
    phi = CATALOG.model("phi-3.5-mini").shape  # type: ignore[union-attr]
    as_llama = ModelShape(**{**phi.__dict__, "model_type": "llama"})
    assert count_params(phi) == count_params(as_llama)
    assert len(phi.linear_shapes()) == 4 and len(as_llama.linear_shapes()) == 7
