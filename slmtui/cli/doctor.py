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
    doctor.add_argument("--restore-store", nargs="?", type=int, const=0, metavar="N",
                        help="put backup N of the store in its place (default: the one with the most records), "
                        "after moving the current store aside; runs no other check")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from slmtui.engine_proc import EngineError, run_engine_json

    if args.restore_store is not None:
        return restore_store(args.restore_store)
    home_problems = store_problems()
    try:
        report = run_engine_json("doctor", timeout=300)
    except EngineError as exc:
        raise UserError(f"The engine could not run its checks ({exc}); reinstall the ML stack.") from exc
    report["problems"] = home_problems + report["problems"]
    report["ok"] = report["ok"] and not any(p["severity"] == "error" for p in home_problems)
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


def store_problems() -> list[dict[str, str]]:
    """HOME and the store: usable, writable, readable, and not smaller than one of its backups."""
    import os
    import tempfile
    import time

    from engine.paths import HomeError, slmtui_home
    from slmtui.store import Store, StoreError
    from slmtui.store_backup import shrunk_since

    def problem(severity: str, text: str, fix: str) -> list[dict[str, str]]:
        return [{"severity": severity, "problem": text, "fix": fix}]

    try:
        home = slmtui_home()
    except HomeError as exc:
        return problem("error", str(exc), "set SLMTUI_HOME to a folder you can write")
    try:
        fd, probe = tempfile.mkstemp(dir=home, prefix=".doctor-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return problem("error", f"HOME {home} is not writable ({exc.strerror or exc}), so the journal, checklist "
                       "and new runs cannot be saved", "make it writable or set SLMTUI_HOME to a writable folder")
    try:
        store = Store(home)
        records = store.records()
    except StoreError as exc:
        return problem("error", str(exc), "run `slmtui doctor --restore-store` to put the newest backup back "
                       "(the current file is moved aside), or move the file aside to start afresh")
    fuller = shrunk_since(store.path, records)
    if fuller is None:
        return []
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(fuller.written))
    return problem("warning", f"the store {store.path} holds {_records(records)} (journal entries, evaluations, "
                   f"settings) but its backup {fuller.path.name} from {when} holds {_records(fuller.records or 0)}",
                   f"if they were not removed on purpose, run `slmtui doctor --restore-store {fuller.generation}` "
                   "(the current store is moved aside, not deleted)")


def restore_store(generation: int) -> int:
    """`slmtui doctor --restore-store [N]`: backup N (0: the one with the most records) back in place."""
    from slmtui.store import Store, StoreError

    store = Store()
    found = [b for b in store.backups() if b.records is not None]
    if not found:
        raise UserError(f"The store {store.path} has no readable backup to restore; nothing was changed.")
    if generation == 0:
        generation = max(found, key=lambda b: (b.records or 0, -b.generation)).generation
    try:
        aside = store.restore_backup(generation)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    records = next((b.records for b in found if b.generation == generation), None)
    kept = f"; the store it replaced is kept as {aside}" if aside else ""
    print(f"Restored backup {generation} ({_records(records or 0)}) as {store.path}{kept}.")
    return 0


def _records(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"
