"""Loading the model and tokenizer, choosing device and precision, and applying the training method.

Methods are a table (`METHODS`) of functions that take the loaded base model and return the model to train;
quantised and weight-decomposed methods (qlora, dora, qdora) slot in there, with their load-time settings
(a `BitsAndBytesConfig`) added by `base_load_kwargs`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from engine.spec import MethodSpec, ModelSpec, RunSpec, looks_local


class ModelError(Exception):
    """A model problem the user can fix (missing model, pickled weights, no GPU); one sentence."""


@dataclass(frozen=True)
class Precision:
    """How the run computes: `name` is reported; `autocast` is the compute dtype (None: plain fp32)."""

    name: str
    autocast: torch.dtype | None
    base_dtype: torch.dtype
    loss_scaling: bool
    reason: str


def choose_device(requested: str) -> torch.device:
    """`auto` is the first CUDA GPU when there is one, else the CPU."""
    if requested == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"train.device is {requested!r} but no CUDA GPU is visible; use 'cpu' or 'auto'.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"train.device {requested!r} does not exist; this machine has "
                             f"{torch.cuda.device_count()} GPU(s).")
    return device


def choose_precision(requested: str, device: torch.device, method: str, master_weights: str = "fp32") -> Precision:
    """bf16 where the hardware has it, else fp16 with loss scaling on CUDA; fp32 on the CPU.

    Full fine-tuning keeps fp32 master weights under autocast, or (`master_weights` bf16, in bf16 compute) bf16
    weights, gradients and optimizer states as HF Trainer does with a bf16 model; adapter methods keep the frozen
    base in the compute dtype (half the memory) and their trainable adapters in fp32.
    """
    cuda = device.type == "cuda"
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if requested == "auto":
        if not cuda:
            name, reason = "fp32", "the CPU trains in fp32"
        elif bf16_ok:
            name, reason = "bf16", "this GPU supports bf16"
        else:
            name, reason = "fp16", "this GPU lacks bf16, so fp16 with loss scaling"
    else:
        name, reason = requested, "as the spec asks"
    if name == "fp16" and not cuda:
        raise ModelError("train.precision fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU.")
    if name == "bf16" and cuda and not bf16_ok:
        raise ModelError("train.precision bf16 is not supported by this GPU; use fp16 or auto.")
    if name == "fp32":
        return Precision("fp32", None, torch.float32, False, reason)
    dtype = torch.bfloat16 if name == "bf16" else torch.float16
    fp32_master = method == "full" and not (master_weights == "bf16" and name == "bf16")
    base = torch.float32 if fp32_master else dtype
    if method == "full" and not fp32_master:
        reason += "; bf16 master weights and optimizer states"
    return Precision(name, dtype, base, name == "fp16", reason)


def load_tokenizer(spec: ModelSpec) -> Any:
    """The tokenizer, with a pad token (the end-of-sequence token when it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            spec.name, revision=spec.revision or None, trust_remote_code=spec.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelError(_unknown_architecture(spec, exc) or _not_found(spec, exc)) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _not_found(spec: ModelSpec, exc: Exception) -> str:
    if looks_local(spec.name):
        from pathlib import Path

        if not Path(spec.name).expanduser().is_dir():
            return f"model.name {spec.name!r} is not a folder; give an existing model folder or a hub id."
        where = "folder"
    else:
        where = "hub id (or it is not downloaded and the hub is offline)"
    return f"model.name {spec.name!r} could not be loaded as a {where} ({first_sentence(exc)}); check the name."


def first_sentence(exc: BaseException, limit: int = 160) -> str:
    """An error's first sentence for a one-line message, cut at a word (never mid-word) when it is long."""
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
    text = text.split(". ")[0].rstrip(".")
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return text


def _unknown_architecture(spec: ModelSpec, exc: Exception) -> str | None:
    """The sentence for a config whose model type this transformers does not know, else None."""
    import re

    import transformers

    found = re.search(r"model type `([^`]*)` but Transformers does not recognize", str(exc))
    if found is None:
        return None
    return (f"model.name {spec.name!r} is a {found.group(1)!r} model, which transformers {transformers.__version__} "
            "does not know; upgrade transformers, or set model.trust_remote_code = true if the model ships its "
            "own code and you trust it.")


def _damaged_weights(spec: ModelSpec, exc: Exception) -> str:
    """The sentence for weights safetensors cannot read, naming the file when it can be found."""
    from pathlib import Path

    from safetensors import safe_open

    folder = Path(spec.name).expanduser()
    for file in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except Exception as bad:  # safetensors raises its own error and OSError for a damaged file
            return (f"model.name {spec.name!r} has a damaged weights file {file.name} ({first_sentence(bad)}); "
                    "download or copy the model again.")
    return (f"model.name {spec.name!r} has damaged safetensors weights ({first_sentence(exc)}); download or copy "
            "the model again.")


#: Methods that load the base in 4 bits through bitsandbytes.
QUANTISED = ("qlora", "qdora")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def compute_dtype(method: MethodSpec, precision: Precision) -> torch.dtype:
    """The dtype 4-bit layers dequantise to: the spec's, or (auto) the run's compute dtype."""
    if method.compute_dtype != "auto":
        return _DTYPES[method.compute_dtype]
    return precision.autocast or torch.float32


def quantization_config(method: MethodSpec, precision: Precision) -> Any:
    """The `BitsAndBytesConfig` of a 4-bit method: NF4 or FP4, double quantisation, compute dtype."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=method.quant_type,
        bnb_4bit_use_double_quant=method.double_quant,
        bnb_4bit_compute_dtype=compute_dtype(method, precision),
        bnb_4bit_quant_storage=torch.uint8,
    )


def base_load_kwargs(spec: RunSpec, precision: Precision, device: torch.device | None = None) -> dict[str, Any]:
    """Keyword arguments for `from_pretrained`; quantised methods add their `quantization_config` here."""
    kwargs: dict[str, Any] = {
        "dtype": precision.base_dtype,
        "trust_remote_code": spec.model.trust_remote_code,
        "use_safetensors": None if spec.model.allow_pickle else True,
    }
    if spec.model.revision:
        kwargs["revision"] = spec.model.revision
    if spec.model.attn_implementation:
        kwargs["attn_implementation"] = spec.model.attn_implementation
    if spec.method.kind in QUANTISED:
        kwargs["quantization_config"] = quantization_config(spec.method, precision)
        # bitsandbytes quantises while loading, on the device the layers will live on
        kwargs["device_map"] = {"": str(device or "cpu")}
    return kwargs


def _random_quantised(spec: RunSpec, precision: Precision, kwargs: dict[str, Any],
                      device: torch.device | None) -> Any:
    """Random weights, quantised: bitsandbytes quantises only while loading, so save them and load them back."""
    import tempfile

    from transformers import AutoModelForCausalLM

    plain = RunSpec(name=spec.name, model=spec.model, data=spec.data,
                    method=MethodSpec(kind="lora"), train=spec.train)
    model = load_base_model(plain, precision, device)
    with tempfile.TemporaryDirectory(prefix="slmtui-random-") as tmp:
        model.save_pretrained(tmp)
        del model
        return AutoModelForCausalLM.from_pretrained(tmp, **{**kwargs, "use_safetensors": True, "revision": "main"})


def load_base_model(spec: RunSpec, precision: Precision, device: torch.device | None = None) -> Any:
    """The base causal LM: pretrained weights, or random weights from its config (`init = "random"`)."""
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs = base_load_kwargs(spec, precision, device)
    try:
        if spec.model.init == "random" and spec.method.kind in QUANTISED:
            model = _random_quantised(spec, precision, kwargs, device)
        elif spec.model.init == "random":
            config = AutoConfig.from_pretrained(
                spec.model.name, revision=spec.model.revision or None, trust_remote_code=spec.model.trust_remote_code
            )
            extra = {k: kwargs[k] for k in ("attn_implementation",) if k in kwargs}
            with torch.device(device or "cpu"):  # initialise on the device: much faster on a GPU
                model = AutoModelForCausalLM.from_config(
                    config, dtype=precision.base_dtype, trust_remote_code=spec.model.trust_remote_code, **extra
                )
        else:
            model = AutoModelForCausalLM.from_pretrained(spec.model.name, **kwargs)
    except OSError as exc:
        if not spec.model.allow_pickle and "safetensors" in str(exc).lower():
            raise ModelError(f"model.name {spec.model.name!r} has no safetensors weights; set "
                             "model.allow_pickle = true only if you trust its pickled weights.") from exc
        raise ModelError(_not_found(spec.model, exc)) from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelError(f"model.name {spec.model.name!r} needs its own code; set "
                             "model.trust_remote_code = true only if you trust it.") from exc
        raise ModelError(_unknown_architecture(spec.model, exc) or _not_found(spec.model, exc)) from exc
    except SafetensorError as exc:
        raise ModelError(_damaged_weights(spec.model, exc)) from exc
    return model


def enable_checkpointing(model: Any) -> None:
    """Recompute activations in the backward pass (non-reentrant, so frozen embeddings need no grad hook)."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 renamed it
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def lora_config(method: MethodSpec, **extra: Any) -> Any:
    """The peft `LoraConfig` for a method spec (DoRA sets `use_dora` through `extra`)."""
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=method.rank,
        lora_alpha=method.alpha,  # peft scales by alpha/r in float anyway
        lora_dropout=method.dropout,
        target_modules=method.target_modules,
        bias="none",
        **extra,
    )


def apply_lora(model: Any, spec: RunSpec) -> Any:
    """Freeze the base and attach LoRA adapters (fp32 adapters on a half-precision base)."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(spec.method), autocast_adapter_dtype=True)


def apply_dora(model: Any, spec: RunSpec) -> Any:
    """LoRA with weight decomposition (DoRA): a trained magnitude per output feature on top of the adapters."""
    from peft import get_peft_model

    model = get_peft_model(model, lora_config(spec.method, use_dora=True), autocast_adapter_dtype=True)
    keep_compute_dtype(model)
    return model


def keep_compute_dtype(model: Any) -> int:
    """Cast the output of PEFT's 4-bit DoRA layers back to their input's dtype.

    Under CUDA autocast PEFT 0.21's bitsandbytes DoRA path returns the fp32 result of its magnitude scaling as
    is, so the residual stream and everything after the first adapted layer would run (and be saved) in fp32.
    Returns how many layers got the hook.
    """
    try:
        import bitsandbytes as bnb
    except ImportError:  # no 4-bit layers without it, so nothing to fix
        return 0
    from peft.tuners.lora import LoraLayer

    def cast_back(module: Any, args: tuple[Any, ...], output: Any) -> Any:
        if args and isinstance(output, torch.Tensor) and output.dtype != args[0].dtype:
            return output.to(args[0].dtype)
        return output

    hooked = 0
    for module in model.modules():
        layer: Any = module  # peft's LoraLayer (read untyped: see pyproject's mypy overrides)
        if isinstance(layer, LoraLayer) and isinstance(layer.get_base_layer(), bnb.nn.Linear4bit) and \
                any(layer.use_dora.values()):
            module.register_forward_hook(cast_back)
            hooked += 1
    return hooked


def apply_full(model: Any, spec: RunSpec) -> Any:
    """Train every weight."""
    model.requires_grad_(True)
    return model


#: method kind -> function(base model, spec) -> model to train; qlora/qdora differ from lora/dora in loading only.
METHODS: dict[str, Callable[[Any, RunSpec], Any]] = {
    "lora": apply_lora, "full": apply_full, "qlora": apply_lora, "dora": apply_dora, "qdora": apply_dora,
}


def check_bitsandbytes(device: torch.device) -> None:
    """4-bit methods need bitsandbytes, with a backend for the device."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ModelError("method.kind qlora/qdora needs bitsandbytes; pip install bitsandbytes or use lora.") from exc


@dataclass
class LoadedModel:
    """What training needs from loading: the model to train, its tokenizer and what to report."""

    model: Any
    tokenizer: Any
    device: torch.device
    precision: Precision
    params_total: int
    params_trainable: int

    @property
    def is_adapter(self) -> bool:
        """Whether the model is a peft model (save the adapter, not the whole model)."""
        return hasattr(self.model, "peft_config")


def count_parameters(model: Any) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = trainable = 0
    for p in model.parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    return total, trainable


def load_for_training(spec: RunSpec, device: torch.device | None = None) -> LoadedModel:
    """Load tokenizer and base model, apply the method, move to the device, set up checkpointing."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    apply = METHODS.get(spec.method.kind)
    if apply is None:
        raise ModelError(f"method.kind {spec.method.kind!r} is not available in this version; use lora or full.")
    device = device or choose_device(spec.train.device)
    precision = choose_precision(spec.train.precision, device, spec.method.kind, spec.train.master_weights)
    if spec.method.kind in QUANTISED:
        check_bitsandbytes(device)
    tokenizer = load_tokenizer(spec.model)
    torch.manual_seed(spec.train.seed)
    model = load_base_model(spec, precision, device)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if spec.train.gradient_checkpointing:
        enable_checkpointing(model)
        model.config.use_cache = False
    model = apply(model, spec)
    if spec.method.kind not in QUANTISED:  # 4-bit models were loaded onto the device (and refuse .to)
        model.to(device)
    total, trainable = count_parameters(model)
    if trainable == 0:
        raise ModelError("method.target_modules matched no layer of this model; name layers it has.")
    return LoadedModel(model, tokenizer, device, precision, total, trainable)
