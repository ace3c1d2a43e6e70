"""`python -m engine export RUN_DIR OUT [--merge] [--dtype D] [--format gguf --quant Q]`: a run's weights as a
model others load.

Without `--merge` OUT gets the adapter alone (and the tokenizer): load it with peft on top of the base model.
With `--merge` the base is loaded in a floating-point dtype (never quantised: a QLoRA/QDoRA run is dequantised),
the adapter applied and merged, and OUT is a plain model `AutoModelForCausalLM.from_pretrained` loads.
A full fine-tuning run's model is copied either way. The weights are the run's final ones, else its newest
checkpoint's. With `--format gguf` OUT gets one GGUF file for llama.cpp and an Ollama `Modelfile`, checked
against the merged model when llama-cpp-python is installed (`engine/gguf_export.py`). Prints one JSON object; user errors are one sentence on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.protocol import SPEC_FILE
from engine.safe_text import visible

DTYPES = ("auto", "bf16", "fp16", "fp32")
FORMATS = ("hf", "gguf")


class ExportError(Exception):
    """An export the user must change; one sentence."""


def weights_source(run_dir: Path) -> Path:
    """The run's final `adapter/` or `model/`, else its newest checkpoint's."""
    for name in ("adapter", "model"):
        if (run_dir / name).is_dir():
            return run_dir / name
    steps = sorted((run_dir / "checkpoints").glob("step-*/"), reverse=True)
    for folder in steps:
        for name in ("adapter", "model"):
            if any((folder / name).glob("*.safetensors")):
                return folder / name
    raise ExportError(f"Run {run_dir.name} has no weights yet (no final adapter or model, no checkpoint); "
                      "train it first.")


def _dtype(name: str, model_dir: str) -> Any:
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if name != "auto":
        return table[name]
    try:  # the base model's own dtype, as its config states it
        config = json.loads((Path(model_dir) / "config.json").read_text())
        stated = str(config.get("dtype") or config.get("torch_dtype") or "")
    except (OSError, ValueError):
        stated = ""
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(stated, torch.float32)


def merge(spec: Any, adapter: Path, out: Path, dtype_name: str) -> str:
    """Load the base unquantised in `dtype_name`, apply the adapter, merge it in and save to `out`; returns the
    dtype's name."""
    import torch
    from peft import PeftModel

    from engine.modeling import Precision, load_base_model, load_tokenizer

    dtype = _dtype(dtype_name, spec.model.name)
    # a plain LoRA load: no quantization_config, so QLoRA/QDoRA adapters merge into dequantised weights
    plain = replace(spec, method=replace(spec.method, kind="lora"))
    torch.manual_seed(spec.train.seed)  # a random-init base (benches, tests) is rebuilt exactly as it trained
    base = load_base_model(plain, Precision("export", None, dtype, False, "export"))
    model = PeftModel.from_pretrained(base, str(adapter), is_trainable=False)
    merged = model.merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    load_tokenizer(spec.model).save_pretrained(out)
    return str(dtype).removeprefix("torch.")


def export(run_dir: Path, out: Path, do_merge: bool, dtype_name: str = "auto", fmt: str = "hf",
           quant: str = "f16") -> dict[str, Any]:
    """Write the run's model or adapter (or, `fmt="gguf"`, a GGUF and Modelfile) to `out`; returns what was
    written."""
    from engine.modeling import ModelError, load_tokenizer
    from engine.spec import SpecError, load_spec

    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file, and the export writes a folder; choose a new folder.")
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty; choose a new folder.")
    try:
        spec = load_spec(run_dir / SPEC_FILE, check_files=False)
    except SpecError as exc:
        raise ExportError(str(exc)) from None
    source = weights_source(run_dir)
    if fmt == "gguf":
        return _export_gguf(run_dir, spec, source, out, quant, dtype_name)
    is_adapter = source.name == "adapter"
    kind, dtype = ("merged" if do_merge else "adapter") if is_adapter else "model", None
    try:
        if kind == "merged":
            dtype = merge(spec, source, out, dtype_name)
        else:
            shutil.copytree(source, out, dirs_exist_ok=True)
            if not (out / "tokenizer_config.json").exists():  # checkpoints keep weights only
                load_tokenizer(spec.model).save_pretrained(out)
    except ModelError as exc:
        raise ExportError(f"The base model cannot be loaded to merge into ({exc})") from None
    from engine.train.checkpoint import folder_bytes  # torch: loaded only once there is work to do

    size = folder_bytes(out)
    return {"run": run_dir.name, "out": str(out), "kind": kind, "source": str(source), "dtype": dtype,
            "base_model": spec.model.name, "bytes": size}


def _export_gguf(run_dir: Path, spec: Any, source: Path, out: Path, quant: str, dtype_name: str) -> dict[str, Any]:
    from engine.gguf_convert import GgufError
    from engine.gguf_export import export_gguf, record
    from engine.modeling import ModelError

    try:
        found = export_gguf(run_dir, spec, source, out, quant, dtype_name)
    except GgufError as exc:
        raise ExportError(str(exc)) from None
    except ModelError as exc:
        raise ExportError(f"The base model cannot be loaded to merge into ({exc})") from None
    from engine.train.checkpoint import folder_bytes  # torch: loaded only once there is work to do

    size = folder_bytes(out)
    result = {"run": run_dir.name, "out": str(out), "kind": "gguf", "source": str(source),
              "base_model": spec.model.name, "bytes": size, **found}
    result["recorded"] = record(run_dir, result)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine export", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder")
    parser.add_argument("out", type=Path, help="the folder to write (new or empty)")
    parser.add_argument("--merge", action="store_true", help="merge the adapter into the base: a standalone model")
    parser.add_argument("--dtype", choices=DTYPES, default="auto",
                        help="merged model's dtype [auto: the base model's own, else fp32]")
    parser.add_argument("--format", choices=FORMATS, default="hf", dest="fmt",
                        help="hf: safetensors folder; gguf: one GGUF file and an Ollama Modelfile [hf]")
    parser.add_argument("--quant", default="f16", help="GGUF tensor type: f16, q8_0 (q4_k_m: use llama-quantize)")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    try:
        if not (run_dir / SPEC_FILE).is_file():
            raise ExportError(f"{run_dir} is not a run folder (no {SPEC_FILE}); give a run id or folder.")
        result = export(run_dir, args.out.expanduser().resolve(), args.merge, args.dtype, args.fmt, args.quant)
    except ExportError as exc:
        print(visible(str(exc).rstrip(".") + "."), file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
