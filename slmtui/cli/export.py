"""`slmtui export RUN OUT [--merge] [--format gguf --quant Q]`: a run's weights as a folder others load (or a GGUF
file and an Ollama Modelfile), via `python -m engine export`."""

from __future__ import annotations

import argparse
from pathlib import Path

from slmtui.cli._common import UserError, print_json, say


def register(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="write a run's adapter, or a merged model, to a folder",
                            description="Without --merge, write the run's adapter (and tokenizer) to OUT; with "
                            "--merge, load the base model unquantised, merge the adapter into it (QLoRA runs are "
                            "dequantised) and write a model that from_pretrained loads. Uses the final weights, "
                            "else the newest checkpoint. --format gguf writes one GGUF file for llama.cpp and an "
                            "Ollama Modelfile (Llama, SmolLM, Qwen2/Qwen3), then checks it against the merged "
                            "model when llama-cpp-python is installed.")
    export.add_argument("run", help="run id, unique prefix, or last")
    export.add_argument("out", type=Path, help="a new (or empty) folder to write")
    export.add_argument("--merge", action="store_true", help="merge the adapter into the base model")
    export.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                        help="dtype of the merged model [auto: the base model's own]")
    export.add_argument("--format", choices=("hf", "gguf"), default="hf",
                        help="hf: a safetensors folder; gguf: a GGUF file and Ollama Modelfile [hf]")
    export.add_argument("--quant", choices=("f16", "q8_0", "q4_k_m"), default="f16",
                        help="GGUF tensor type [f16]; q4_k_m: quantise the f16 file with llama.cpp's llama-quantize")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from engine.paths import runs_dir
    from slmtui.engine_proc import EngineError, run_engine_json
    from slmtui.runs import RunNotFound, read_run, resolve_run

    try:
        run_dir = resolve_run(args.run, runs_dir())
    except RunNotFound as exc:
        raise UserError(str(exc)) from None
    if read_run(run_dir).status == "running":
        say(f"Run {run_dir.name} is still running; exporting its newest weights so far.", err=True)
    argv = [str(run_dir), str(args.out.expanduser().resolve()), "--dtype", args.dtype, "--format", args.format,
            "--quant", args.quant]
    try:
        result = run_engine_json("export", *argv, *(["--merge"] if args.merge else []))
    except EngineError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print_json(result)
        return 0
    if result["kind"] == "gguf":
        from slmtui.model_export import gguf_lines

        for line in gguf_lines(result):
            say(line)
        return 0  # a failed parity check is news, said above; the export itself did its job
    what = {"merged": "a merged model", "adapter": "the adapter", "model": "the fully fine-tuned model"}[result["kind"]]
    say(f"Wrote {what} of run {result['run']} to {result['out']} ({result['bytes'] / 1e6:.1f} MB).")
    if result["kind"] == "adapter":
        say(f"Load it with peft on top of {result['base_model']}, or pass --merge for a standalone model.")
    return 0

