"""`slmtui doctor`: what this machine can train with and what to fix, from `python -m engine doctor`."""

from __future__ import annotations

import argparse
from typing import Any

from slmtui.cli._common import UserError, plain_console, print_json


def register(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="check the environment: versions, CUDA, bf16, 4-bit layers, disk",
                            description="Check what this machine can train with: the environment fingerprint, "
                            "CUDA and bf16, a 4-bit (bitsandbytes) layer smoke test, disk space, and known "
                            "incompatible versions, each problem with what to do. Exits 0 whenever it ran.")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from slmtui.engine_proc import EngineError, run_engine_json

    try:
        report = run_engine_json("doctor", timeout=300)
    except EngineError as exc:
        raise UserError(f"The engine could not run its checks ({exc}); reinstall the ML stack.") from exc
    if args.json:
        print_json(report)
    else:
        print_report(report)
    return 0


def print_report(r: dict[str, Any]) -> None:
    """The doctor's findings for people."""
    from rich.table import Table

    console = plain_console()
    env, cuda, smoke = r["env"], r["cuda"], r["smoke_4bit"]
    table = Table("what", "state", show_header=False)
    table.add_row("python", f"{env['python']} ({env['executable']})")
    for name in ("torch", "transformers", "peft", "bitsandbytes", "datasets", "accelerate"):
        table.add_row(name, env.get(name) or "not installed")
    gpus = ", ".join(f"{d['name']} ({d['memory_gib']} GiB)" for d in cuda["devices"]) or "none"
    table.add_row("CUDA", f"{'available' if cuda['available'] else 'not available'}; torch built for "
                  f"{cuda['torch_cuda'] or 'CPU only'}; GPUs: {gpus}; driver {env.get('driver') or 'n/a'}")
    table.add_row("bf16", "yes" if cuda["bf16"] else "no")
    table.add_row("4-bit smoke test", f"{'passed' if smoke['ok'] else 'FAILED'} on {smoke['device']}"
                  + (f" (error {smoke['rel_error']:.1%})" if smoke["rel_error"] is not None else "")
                  + (f": {smoke['error']}" if smoke["error"] else ""))
    for disk in r["disk"]:
        table.add_row(f"disk ({disk['what']})", f"{disk['free_gib']} of {disk['total_gib']} GiB free, {disk['path']}")
    console.print(table)
    if not r["problems"]:
        console.print("No problems found.")
    for p in r["problems"]:
        console.print(f"{p['severity']}: {p['problem']}\n  fix: {p['fix']}")
