"""Loading a model for evaluation and generation: a hub id, a model folder, an adapter, or a run folder.

A run folder stands for what it trained: its final `adapter/` on top of the base model its spec names (or
its full `model/`). An adapter folder (`adapter_config.json`) names its base model itself. Prompts are
rendered the way the data pipeline renders them for training, so a fine-tuned model sees what it learnt.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from engine.modeling import (
    QUANTISED,
    ModelError,
    Precision,
    check_bitsandbytes,
    choose_device,
    choose_precision,
    load_base_model,
    load_tokenizer,
)
from engine.protocol import GIB, SPEC_FILE
from engine.spec import DataSpec, MethodSpec, ModelSpec, RunSpec, SpecError, load_spec, looks_local

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class ModelRef:
    """What a `--model` argument stands for: a base model, optionally an adapter on it, optionally a run's."""

    label: str
    base: ModelSpec
    adapter: str | None = None
    run_dir: str | None = None
    data: DataSpec | None = None  # the run's data settings (template, system prompt) when it is a run
    seed: int = 0
    origin: ModelSpec | None = None  # the model a run started from (a full fine-tune's `base` is its result)
    method: MethodSpec | None = None  # a run's method: a QLoRA run's base is loaded in 4 bits, as it trained

    @property
    def kind(self) -> str:
        """"adapter" or "model"."""
        return "adapter" if self.adapter else "model"

    def to_json(self) -> dict[str, Any]:
        """How results describe the model."""
        return {"model": self.label, "kind": self.kind, "base": self.base.name, "adapter": self.adapter,
                "run": Path(self.run_dir).name if self.run_dir else None}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} cannot be read ({exc}); point --model at another folder.") from None
    return data if isinstance(data, dict) else {}


def _run_spec(run_dir: Path) -> RunSpec:
    try:
        return load_spec(run_dir / SPEC_FILE, check_files=False)
    except SpecError as exc:
        raise ModelError(f"the run {run_dir.name} has a broken spec ({exc.messages[0]})") from None


def _owning_run(folder: Path) -> Path | None:
    """The run folder an adapter lives in (`RUN/adapter`, `RUN/checkpoints/step-N/adapter`), if any."""
    for parent in list(folder.parents)[:3]:
        if (parent / SPEC_FILE).is_file():
            return parent
    return None


def resolve_model_ref(ref: str) -> ModelRef:
    """Interpret `--model`; raises `ModelError` (one sentence) when it names nothing usable."""
    path = Path(ref).expanduser()
    if not path.exists():
        if looks_local(ref) or ref.count("/") > 1:
            raise ModelError(f"--model {ref!r} is not a folder; give a model folder, a run folder or a hub id.")
        return ModelRef(label=ref, base=ModelSpec(name=ref))
    if not path.is_dir():
        raise ModelError(f"--model {ref!r} is a file; give the folder that holds config.json or adapter_config.json.")
    path = path.resolve()
    if (path / SPEC_FILE).is_file():
        spec = _run_spec(path)
        if (path / "adapter" / ADAPTER_CONFIG).is_file():
            return ModelRef(label=ref, base=spec.model, adapter=str(path / "adapter"), run_dir=str(path),
                            data=spec.data, seed=spec.train.seed, method=spec.method)
        if (path / "model" / "config.json").is_file():
            full = replace(spec.model, name=str(path / "model"), init="pretrained")
            return ModelRef(label=ref, base=full, run_dir=str(path), data=spec.data, seed=spec.train.seed,
                            origin=spec.model)
        raise ModelError(f"the run {path.name} has no final adapter or model yet; evaluate it once it has "
                         "completed, or point --model at one of its checkpoints' folders.")
    if (path / ADAPTER_CONFIG).is_file():
        base_name = str(_read_json(path / ADAPTER_CONFIG).get("base_model_name_or_path") or "")
        run = _owning_run(path)
        if run is not None:
            spec = _run_spec(run)
            return ModelRef(label=ref, base=spec.model, adapter=str(path), run_dir=str(run), data=spec.data,
                            seed=spec.train.seed, method=spec.method)
        if not base_name:
            raise ModelError(f"the adapter {ref!r} does not name its base model; evaluate it from its run folder.")
        return ModelRef(label=ref, base=ModelSpec(name=base_name), adapter=str(path))
    if (path / "config.json").is_file():
        return ModelRef(label=ref, base=ModelSpec(name=str(path)))
    raise ModelError(f"--model {ref!r} holds no config.json, adapter_config.json or {SPEC_FILE}; "
                     "point it at a model, adapter or run folder.")


def base_of(ref: ModelRef) -> ModelRef:
    """The base model alone (what an adapter is compared against), with the run's data settings kept."""
    origin = ref.origin or ref.base
    return ModelRef(label=origin.name, base=origin, data=ref.data, seed=ref.seed, method=ref.method)


@dataclass
class InferenceModel:
    """A model ready to score and generate: eval mode, on its device, with its tokenizer."""

    model: Any
    tokenizer: Any
    device: torch.device
    precision: Precision
    params_total: int
    ref: ModelRef
    load_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def load_for_inference(ref: ModelRef, device: str = "auto", precision: str = "auto") -> InferenceModel:
    """Load the tokenizer (the adapter's own copy when it has one), the base model and the adapter."""
    import time

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr is for one-sentence errors
    started = time.perf_counter()
    dev = choose_device(device)
    method = ref.method if ref.method is not None and ref.method.kind in QUANTISED else MethodSpec(kind="lora")
    prec = choose_precision(precision, dev, method.kind)  # no training: the base in the compute dtype
    if method.kind in QUANTISED:
        check_bitsandbytes(dev)
    tok_source = ref.base
    if ref.adapter and (Path(ref.adapter) / "tokenizer_config.json").is_file():
        tok_source = replace(ref.base, name=ref.adapter)
    tokenizer = load_tokenizer(tok_source)
    torch.manual_seed(ref.seed)  # `init = "random"` bases are rebuilt from the run's seed
    model = load_base_model(RunSpec(model=ref.base, method=method), prec, dev)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if ref.adapter:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, ref.adapter)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"the adapter {ref.adapter} does not fit its base {ref.base.name} ({first}).") from None
    if method.kind not in QUANTISED:  # 4-bit models were loaded onto the device (and refuse .to)
        model.to(dev)
    model.eval()
    total = sum(p.numel() for p in model.parameters())
    return InferenceModel(model, tokenizer, dev, prec, total, ref, time.perf_counter() - started)


def render_prompt(tokenizer: Any, user_text: str, data: DataSpec | None = None) -> str:
    """The text a model is prompted with for one user message: the training template up to the answer."""
    from engine.data.format import Formatter
    from engine.data.shape import Row

    template = data.template if data else "auto"
    system = data.system_prompt if data else ""
    formatter = Formatter(tokenizer, template)
    row = Row(line=0, fields={"prompt": user_text, "completion": ""})
    return formatter.render(row, "prompt_completion", system).prompt


def prompt_token_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a rendered prompt (it already holds the BOS token when the template adds one)."""
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def reset_peak_memory(device: torch.device) -> None:
    """Start peak tracking afresh (CUDA only; the CPU's peak is the process's)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> tuple[float, str]:
    """Peak memory in GiB and what it measures: torch's peak allocation on CUDA, peak RSS on the CPU."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / GIB, 3), "cuda allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(rss * scale / GIB, 3), "process peak RSS"


def set_threads(threads: int) -> None:
    """Pin torch's CPU threads (two threads under contention were 20x slower than one)."""
    if threads > 0:
        torch.set_num_threads(threads)
