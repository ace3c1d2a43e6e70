"""`slmtui gpus` and `slmtui estimate`: know what the machine has and what a run will need before starting it."""

from __future__ import annotations

import argparse
from typing import Any

from engine.protocol import GIB
from slmtui.cli._common import UserError, plain_console, print_json

#: Methods of the what-fits table (slmtui.fit.FIT_METHODS; repeated so this module imports nothing heavy).
FIT_METHODS = ("full", "lora", "qlora")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `gpus` and `estimate`."""
    gpus = sub.add_parser("gpus", help="list the GPUs, what runs on them, and which models fit",
                          description="List each NVIDIA GPU (memory, load, temperature, power, clocks, PCIe, ECC, "
                          "MIG, processes) and, for its free memory now, which catalog models fit per method.")
    gpus.add_argument("--seq", type=int, default=1024, help="sequence length for the what-fits table [1024]")
    gpus.add_argument("--over", type=int, default=1, metavar="N",
                      help="train over N GPUs like each one: what fits on each, a full or LoRA run one GPU does not "
                           "hold sharded over all N (FSDP), as train.strategy auto does [1]")
    gpus.add_argument("--json", action="store_true", help='print {"gpus": [...], "error": null or a reason}')
    gpus.set_defaults(handler=run_gpus)

    est = sub.add_parser("estimate", help="predict the peak GPU memory of a training step",
                         description="Predict the peak GPU memory of one training step, with a breakdown.")
    est.add_argument("--model", required=True,
                     help="a folder with config.json, a config.json, a catalog name or a hub id (cached config)")
    est.add_argument("--method", default="lora", choices=("lora", "qlora", "dora", "qdora", "full"))
    est.add_argument("--batch", type=int, default=8, help="micro-batch size [8]")
    est.add_argument("--seq", type=int, default=1024, help="tokens per sequence [1024]")
    est.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32"))
    est.add_argument("--rank", type=int, default=16, help="LoRA rank [16]")
    est.add_argument("--targets", default="all-linear", choices=("all-linear", "attention"))
    est.add_argument("--dropout", type=float, default=0.0, help="LoRA dropout (a copy and a mask per layer) [0]")
    est.add_argument("--optimizer", default="adamw", choices=("adamw", "adamw8bit", "sgd", "adafactor"))
    est.add_argument("--grad-checkpointing", action="store_true", help="recompute activations in backward")
    est.add_argument("--runner", default="engine", choices=("engine", "hf"),
                     help="engine: this project's loop (fp32 masters for full fine-tuning); hf: plain HF Trainer "
                          "with a 16-bit model [engine]")
    est.add_argument("--loss", default="fused", choices=("fused", "standard"),
                     help="fused: the engine's chunked loss; standard: fp32 logits as HF computes them [fused]")
    est.add_argument("--no-double-quant", action="store_true", help="QLoRA without double quantisation")
    est.add_argument("--gpu", help='a GPU name (H100, "RTX 4090"), a size in GiB, or "here" (free memory now)')
    est.add_argument("--fsdp", type=int, default=1, metavar="N",
                     help="per GPU when FSDP shards the run over N GPUs (full, lora, dora) [1: not sharded]")
    est.add_argument("--json", action="store_true", help="print one JSON object")
    est.set_defaults(handler=run_estimate)


# ------------------------------------------------------------------ gpus


def run_gpus(args: argparse.Namespace) -> int:
    from slmtui.fit import fit_table
    from slmtui.gpu import inventory

    if args.over < 1:
        raise UserError(f"--over {args.over}: train over at least 1 GPU.")
    inv = inventory()
    data = inv.to_dict()
    for gpu, out in zip(inv.gpus, data["gpus"], strict=True):
        if isinstance(gpu.memory_free, int):
            rows = fit_table(gpu.memory_free / GIB, args.seq, FIT_METHODS, gpus=args.over)
            out["what_fits"] = [vars(r) for r in rows]
    if args.json:
        print_json(data)
    else:
        _print_gpus(data, args.seq, args.over)
    return 0


def _print_gpus(data: dict[str, Any], seq: int, over: int) -> None:
    from rich.table import Table

    from slmtui.fit import fit_cell

    console = plain_console()
    if data["error"]:
        console.print(data["error"])
        return
    console.print(f"driver {data['driver_version'] or 'n/a'}, CUDA {data['cuda_version'] or 'n/a'}")
    table = Table("#", "name", "memory used / total", "GPU / mem", "temp", "power")
    details = Table("#", "SM / mem clock", "PCIe", "ECC corr. / uncorr.", "MIG", "UUID")
    for g in data["gpus"]:
        table.add_row(str(g["index"]), _na(g["name"]), f"{_gib(g['memory_used'])} / {_gib(g['memory_total'])} GiB",
                      f"{_na(g['gpu_util'])} / {_na(g['memory_util'])} %", f"{_na(g['temperature'])} °C",
                      f"{_na(_round(g['power_draw']))} / {_na(_round(g['power_limit']))} W")
        details.add_row(str(g["index"]), f"{_na(g['sm_clock'])} / {_na(g['memory_clock'])} MHz",
                        f"gen {_na(g['pcie_gen'])} x{_na(g['pcie_width'])}",
                        f"{_na(g['ecc_corrected'])} / {_na(g['ecc_uncorrected'])}", _na(g["mig_mode"]),
                        _na(g["uuid"]))
    console.print(table)
    console.print(details)
    procs = Table("GPU", "pid", "user", "GPU memory", "command")
    for g in data["gpus"]:
        for p in g["processes"] or []:
            procs.add_row(str(g["index"]), str(p["pid"]), _na(p["user"]), f"{_gib(p['gpu_memory'])} GiB",
                          _na(p["command"])[:80])
    if procs.row_count:
        console.print(procs)
    for g in data["gpus"]:
        if "what_fits" not in g:
            continue
        fit = Table("model", *FIT_METHODS, title=f"GPU {g['index']}: what fits in {_gib(g['memory_free'])} GiB free "
                    f"at {seq} tokens (largest micro-batch)",
                    caption=f"Training over {over} such GPUs, per GPU; fsdp: sharded over all {over}, as one GPU "
                            "does not hold it." if over > 1 else None)
        cells: dict[str, dict[str, str]] = {}
        for r in g["what_fits"]:
            cells.setdefault(r["model"], {})[r["method"]] = fit_cell(r["verdict"], r["max_micro_batch"], r["shards"])
        for model, by_method in cells.items():
            fit.add_row(model, *(by_method.get(m, "") for m in FIT_METHODS))
        console.print(fit)


def _na(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _round(value: Any) -> Any:
    return None if value is None else round(value)


def _gib(value: Any) -> str:
    return "n/a" if value is None else f"{value / GIB:.1f}"


# ------------------------------------------------------------------ estimate


def resolve_model(spec: str) -> tuple[str, Any]:
    """A model argument -> (label, ModelShape): a folder, a config.json, a catalog name or a cached hub id."""
    from slmtui.fit import FitError, resolve_shape

    try:
        return resolve_shape(spec)
    except FitError as exc:
        raise UserError(f"{exc} See `slmtui estimate --help`." if "is not a folder" in str(exc) else str(exc)) from None


def gpu_capacity(name: str) -> tuple[str, float]:
    """--gpu: a catalog GPU, a size in GiB, or "here" (the free memory of the first GPU now)."""
    from engine.catalog import load_catalog

    try:
        size = float(name)
        if size > 0:
            return f"{size:g} GiB", size
    except ValueError:
        pass
    if name.lower() == "here":
        from slmtui.gpu import inventory

        inv = inventory()
        free = inv.gpus[0].memory_free if inv.gpus else None
        if not isinstance(free, int):
            raise UserError(inv.error or "The GPU's free memory cannot be read; name a GPU instead of `here`.")
        return f"GPU 0 ({inv.gpus[0].name}, free now)", free / GIB
    gpu = load_catalog().gpu(name)
    if gpu is None:
        names = ", ".join(g.name for g in load_catalog().gpus)
        raise UserError(f"Unknown GPU {name!r}: use a size in GiB or one of {names}.")
    return gpu.name, gpu.memory_gib


def run_estimate(args: argparse.Namespace) -> int:
    from engine.estimate import TrainSetup, estimate_peak_memory, largest_micro_batch, verdict

    label, shape = resolve_model(args.model)
    setup = TrainSetup(method=args.method, batch=args.batch, seq=args.seq, precision=args.precision,
                       rank=args.rank, targets=args.targets, dropout=args.dropout, optimizer=args.optimizer,
                       gradient_checkpointing=args.grad_checkpointing, loss=args.loss, runner=args.runner,
                       double_quant=not args.no_double_quant, shards=args.fsdp)
    try:
        est = estimate_peak_memory(shape, setup)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out = {"model": label, **est.to_dict(), "gpu": None}
    if args.gpu:
        gpu_name, capacity = gpu_capacity(args.gpu)
        out["gpu"] = {"name": gpu_name, "memory_gib": round(capacity, 2),
                      "verdict": verdict(est.total_gib, capacity),
                      "max_micro_batch": largest_micro_batch(shape, setup, capacity)}
    if args.json:
        print_json(out)
    else:
        _print_estimate(out)
    return 0


def _print_estimate(out: dict[str, Any]) -> None:
    from rich.table import Table

    s = out["setup"]
    title = (f"{out['model']}: {s['method']}, {s['batch']} × {s['seq']} tokens, {s['precision']}, "
             f"{s['optimizer']}, {s['loss']} loss" + (", checkpointing" if s["gradient_checkpointing"] else ""))
    table = Table("component", "GiB")
    for name, gib in out["breakdown"].items():
        if gib:
            table.add_row(name, f"{gib:.2f}")
    table.add_row("total", f"{out['total_gib']:.2f}", style="bold")
    console = plain_console()
    console.print(title)
    console.print(table)
    console.print(f"{out['params_total'] / 1e9:.2f}B parameters, {out['params_trainable'] / 1e6:.1f}M trained; "
                  f"memory peaks in the {out['peak_phase']}.")
    for note in out["notes"]:
        console.print(note)
    if out["gpu"]:
        g = out["gpu"]
        best = (f"largest micro-batch that fits: {g['max_micro_batch']}" if g["max_micro_batch"]
                else "even a micro-batch of 1 does not fit")
        console.print(f"{g['name']} ({g['memory_gib']} GiB): {g['verdict']}; {best}.")
