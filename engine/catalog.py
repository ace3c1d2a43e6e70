"""The model catalog and GPU table (`engine/catalog.json`), and model shapes read from any `config.json`.

Light (stdlib only): the console imports it. `ModelShape` holds the numbers of a decoder's `config.json` that
memory and size depend on; `count_params` derives the parameter count from them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("catalog.json")

# Families whose config.json leaves these implicit.
_QKV_BIAS_TYPES = {"qwen2", "qwen2_vl", "qwen2_5_vl"}
_FOUR_NORM_TYPES = {"gemma2", "gemma3", "gemma3_text"}  # pre- and post-norms around attention and MLP
_QK_NORM_TYPES = {"qwen3", "gemma3", "gemma3_text", "olmo2"}
_FUSED_QKV_TYPES = {"phi3"}  # one qkv_proj and one gate_up_proj


@dataclass(frozen=True)
class VisionShape:
    """A SigLIP-style vision tower (frozen when fine-tuning text, but its weights are loaded)."""

    num_hidden_layers: int
    hidden_size: int
    intermediate_size: int
    patch_size: int
    image_size: int

    def count_params(self, text_hidden: int) -> int:
        """Encoder, patch and position embeddings, and the projector into the text model."""
        h, i = self.hidden_size, self.intermediate_size
        layer = 4 * (h * h + h) + 2 * h * i + i + h + 4 * h
        embeddings = 3 * self.patch_size**2 * h + h + (self.image_size // self.patch_size) ** 2 * h
        projector = h + h * text_hidden
        return self.num_hidden_layers * layer + embeddings + 2 * h + projector


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer's config.json (a Llama/Qwen/Gemma/Phi/Mistral block)."""

    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    head_dim: int | None = None
    model_type: str = "llama"
    attention_bias: bool | None = None
    context_length: int | None = None
    vision: VisionShape | None = None

    @property
    def head_size(self) -> int:
        """Per-head width: `head_dim` where the config states it, else hidden / heads."""
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.head_size

    @property
    def kv_dim(self) -> int:
        return self.num_key_value_heads * self.head_size

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias if self.attention_bias is not None else self.model_type in _QKV_BIAS_TYPES

    @property
    def norms_per_layer(self) -> int:
        return 4 if self.model_type in _FOUR_NORM_TYPES else 2

    @property
    def qk_norm(self) -> bool:
        return self.model_type in _QK_NORM_TYPES

    @property
    def fused_projections(self) -> bool:
        return self.model_type in _FUSED_QKV_TYPES

    def linear_shapes(self) -> list[tuple[str, int, int]]:
        """(name, in_features, out_features) of each linear layer in one decoder block, as PEFT sees them."""
        h, q, kv, i = self.hidden_size, self.q_dim, self.kv_dim, self.intermediate_size
        if self.fused_projections:
            return [("qkv_proj", h, q + 2 * kv), ("o_proj", q, h), ("gate_up_proj", h, 2 * i), ("down_proj", i, h)]
        return [("q_proj", h, q), ("k_proj", h, kv), ("v_proj", h, kv), ("o_proj", q, h),
                ("gate_proj", h, i), ("up_proj", h, i), ("down_proj", i, h)]

    def layer_linear_params(self) -> int:
        """Weights of the linear layers of one block (what QLoRA quantises)."""
        return sum(fan_in * fan_out for _, fan_in, fan_out in self.linear_shapes())

    def layer_other_params(self) -> int:
        """Biases and norm weights of one block (kept in 16 bits under QLoRA)."""
        bias = self.q_dim + 2 * self.kv_dim if self.qkv_bias else 0
        qk_norm = 2 * self.head_size if self.qk_norm else 0
        return bias + self.norms_per_layer * self.hidden_size + qk_norm

    def embedding_params(self) -> int:
        """Input embeddings, plus the output head when it is not tied to them."""
        one = self.vocab_size * self.hidden_size
        return one if self.tie_word_embeddings else 2 * one

    def vision_params(self) -> int:
        return self.vision.count_params(self.hidden_size) if self.vision else 0


def count_params(shape: ModelShape) -> int:
    """Total parameters derived from the config numbers."""
    per_layer = shape.layer_linear_params() + shape.layer_other_params()
    return shape.num_hidden_layers * per_layer + shape.embedding_params() + shape.hidden_size + shape.vision_params()


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    """Read a `config.json` (plain, or multimodal with a `text_config`); raises ValueError naming a missing key."""
    text = config.get("text_config") or config
    model_type = str(config.get("model_type") or text.get("model_type") or "llama")

    def need(key: str, *aliases: str) -> int:
        for k in (key, *aliases):
            if text.get(k) is not None:
                return int(text[k])
        raise ValueError(f"config.json has no `{key}`; it does not describe a decoder-only transformer.")

    heads = need("num_attention_heads", "n_head")
    vision = None
    vc = config.get("vision_config")
    if isinstance(vc, dict) and all(k in vc for k in ("num_hidden_layers", "hidden_size", "intermediate_size")):
        vision = VisionShape(int(vc["num_hidden_layers"]), int(vc["hidden_size"]), int(vc["intermediate_size"]),
                             int(vc.get("patch_size", 14)), int(vc.get("image_size", 224)))
    tied = config.get("tie_word_embeddings", text.get("tie_word_embeddings", True))
    return ModelShape(
        num_hidden_layers=need("num_hidden_layers", "n_layer"),
        hidden_size=need("hidden_size", "n_embd"),
        num_attention_heads=heads,
        num_key_value_heads=int(text.get("num_key_value_heads") or heads),
        intermediate_size=need("intermediate_size", "n_inner"),
        vocab_size=need("vocab_size"),
        tie_word_embeddings=bool(tied),
        head_dim=int(text["head_dim"]) if text.get("head_dim") else None,
        model_type=model_type,
        attention_bias=text.get("attention_bias") if model_type not in _QKV_BIAS_TYPES else True,
        context_length=int(text["max_position_embeddings"]) if text.get("max_position_embeddings") else None,
        vision=vision,
    )


@dataclass(frozen=True)
class CatalogModel:
    """One catalog entry: a shape plus what a user needs to choose it."""

    name: str
    hub_id: str
    shape: ModelShape
    params: float  # as the model card states it
    license: str
    gated: bool
    context_length: int
    note: str = ""

    @property
    def derived_params(self) -> int:
        return count_params(self.shape)


@dataclass(frozen=True)
class GpuModel:
    """A common GPU and its memory (GiB, as the driver reports it, approximately)."""

    name: str
    memory_gib: float
    aliases: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Catalog:
    """The catalog file, loaded."""

    models: tuple[CatalogModel, ...]
    gpus: tuple[GpuModel, ...]

    def model(self, name: str) -> CatalogModel | None:
        """A model by catalog name or hub id, case-insensitive."""
        key = name.strip().lower()
        return next((m for m in self.models if key in (m.name.lower(), m.hub_id.lower())), None)

    def gpu(self, name: str) -> GpuModel | None:
        """A GPU by table name, alias, or a driver-reported name such as "NVIDIA H100 80GB HBM3"."""
        key = _norm(name)
        for g in self.gpus:
            if key in {_norm(g.name), *map(_norm, g.aliases)}:
                return g
        padded = f" {key} "
        matches = [(len(_norm(a)), g) for g in self.gpus for a in (g.name, *g.aliases) if f" {_norm(a)} " in padded]
        return max(matches, key=lambda pair: pair[0])[1] if matches else None


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower().replace("nvidia", "")).split())


def _model(entry: dict[str, Any]) -> CatalogModel:
    v = entry.get("vision")
    shape = ModelShape(
        num_hidden_layers=entry["num_hidden_layers"], hidden_size=entry["hidden_size"],
        num_attention_heads=entry["num_attention_heads"], num_key_value_heads=entry["num_key_value_heads"],
        intermediate_size=entry["intermediate_size"], vocab_size=entry["vocab_size"],
        tie_word_embeddings=entry["tie_word_embeddings"], head_dim=entry.get("head_dim"),
        model_type=entry["model_type"], attention_bias=entry.get("attention_bias"),
        context_length=entry["context_length"], vision=VisionShape(**v) if v else None,
    )
    return CatalogModel(name=entry["name"], hub_id=entry["hub_id"], shape=shape, params=float(entry["params"]),
                        license=entry["license"], gated=bool(entry["gated"]),
                        context_length=int(entry["context_length"]), note=entry.get("note", ""))


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Read the catalog file (cached)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    gpus = tuple(GpuModel(g["name"], float(g["memory_gib"]), tuple(g.get("aliases", ()))) for g in data["gpus"])
    return Catalog(models=tuple(_model(e) for e in data["models"]), gpus=gpus)
