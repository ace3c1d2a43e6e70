"""Optional speed-ups of a training step: liger-kernel's fused Triton kernels and torch.compile of the decoder layers.

`train.kernels = "auto"` swaps Liger's RMSNorm, SwiGLU MLP and rotary embedding into a model liger-kernel knows,
on a CUDA device, when liger-kernel is installed (the `gpu` extra): less memory for activations and fewer kernel
launches, the same maths. The loss stays the engine's own (fused or standard), so Liger's losses are not used.
`train.compile = true` compiles each decoder layer with torch.compile (the first steps are slower while it
compiles; a layer compiled once serves every layer of the same shape).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

#: The torch.compile backend; tests use a cheaper one to check the wiring.
COMPILE_BACKEND = "inductor"


def base_of(model: Any) -> Any:
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def why_no_kernels(model_type: str, device_type: str) -> str:
    """Why Liger's kernels cannot be used here; "" when they can."""
    if device_type != "cuda":
        return "they are Triton kernels for CUDA GPUs"
    if importlib.util.find_spec("liger_kernel") is None:
        return "liger-kernel is not installed (pip install 'slmtui[gpu]')"
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return f"liger-kernel has no kernels for {model_type} models"
    return ""


def apply_liger(model: Any) -> None:
    """Swap Liger's RMSNorm, SwiGLU and RoPE into `model` in place (its losses left alone)."""
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=base_of(model), rope=True, rms_norm=True, swiglu=True,
                                    cross_entropy=False, fused_linear_cross_entropy=False)


def use_kernels(setting: str, model: Any, device_type: str, log: Callable[[str], Any]) -> bool:
    """Apply Liger's kernels when `train.kernels` is auto and they can be used; say why not on a GPU."""
    if setting == "off":
        return False
    reason = why_no_kernels(str(base_of(model).config.model_type), device_type)
    if reason:
        if device_type == "cuda":
            log(f"Fused kernels are off: {reason}.")
        return False
    apply_liger(model)
    log("Fused kernels on: Liger's RMSNorm, SwiGLU and RoPE.")
    return True


def decoder_layers(model: Any) -> list[Any]:
    """The model's decoder layers (`model.model.layers` in the Llama family), or none it can find."""
    inner = getattr(base_of(model), "model", None)
    layers = getattr(inner, "layers", None)
    return list(layers) if layers is not None else []


def compile_layers(model: Any, log: Callable[[str], Any]) -> int:
    """torch.compile each decoder layer in place; the number compiled."""
    layers = decoder_layers(model)
    if not layers:
        log("train.compile found no decoder layers to compile in this model; it runs uncompiled.")
        return 0
    for layer in layers:
        layer.compile(backend=COMPILE_BACKEND)
    log(f"Compiled {len(layers)} decoder layers with torch.compile ({COMPILE_BACKEND}); the first steps compile.")
    return len(layers)
