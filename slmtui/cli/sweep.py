"""`slmtui sweep`: search a run spec's settings with Optuna, each trial an ordinary run tagged with its sweep."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slmtui.cli._common import UserError, plain_console, print_json, say


def register(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser(
        "sweep", help="search the settings that matter: trials on pilots, the poor ones pruned",
        description="Run a sweep file's trials (a base spec, a search space, a budget per trial, an objective) one "
        "at a time on the CPU or one per GPU, prune the trials that fall behind, and record the best in the "
        "journal. Ctrl-C or a crash leaves the sweep to --resume; its running trials go on.")
    sweep.add_argument("file", type=Path, nargs="?", help="the sweep file (TOML); omit with --resume, --show or --list")
    sweep.add_argument("--resume", metavar="SWEEP", help="go on with an interrupted sweep (id, unique prefix or last)")
    sweep.add_argument("--show", metavar="SWEEP", help="print a sweep's trials without running anything")
    sweep.add_argument("--list", action="store_true", help="list the sweeps")
    sweep.add_argument("--json", action="store_true", help="print the sweep and its trials as JSON at the end")
    sweep.set_defaults(handler=cmd_sweep)


def _resolve(ref: str) -> Path:
    from slmtui.sweeps import SweepNotFound, resolve_sweep, sweeps_dir

    try:
        return resolve_sweep(ref, sweeps_dir())
    except SweepNotFound as exc:
        raise UserError(str(exc)) from None


def cmd_sweep(args: argparse.Namespace) -> int:
    chosen = [x for x in (args.file, args.resume, args.show, args.list or None) if x is not None]
    if len(chosen) != 1:
        raise UserError("Give one of: a sweep file to start, --resume SWEEP, --show SWEEP or --list.")
    if args.list:
        return _list(args.json)
    if args.show:
        return _print(_read(_resolve(args.show)), args.json)
    sweep_dir = _resolve(args.resume) if args.resume else _start(args.file)
    return _drive(sweep_dir, args.json)


def _read(sweep_dir: Path) -> Any:
    from slmtui.sweeps import read_sweep

    return read_sweep(sweep_dir)


def _start(file: Path) -> Path:
    from dataclasses import replace

    from slmtui.gpu import inventory
    from slmtui.home import runs_dir
    from slmtui.launch import check_launch
    from slmtui.sweep import create_sweep
    from slmtui.sweep_spec import SweepError, load_sweep
    from slmtui.sweeps import sweeps_dir

    try:
        spec = load_sweep(file)
    except SweepError as exc:
        raise UserError(str(exc)) from None
    trial = spec.base if not spec.max_steps else replace(spec.base, train=replace(spec.base.train,
                                                                                   max_steps=spec.max_steps))
    check = check_launch(trial, runs_dir(), inventory, pilot=spec.pilot is not None)
    for note in check.notes:
        say(note)
    if check.refusal:
        raise UserError(check.refusal.sentence())
    sweep_dir = create_sweep(spec, sweeps_dir())
    say(f"Started sweep {sweep_dir.name} ({spec.trials} trials, {spec.direction} {spec.objective}); after a crash "
        f"or Ctrl-C go on with: slmtui sweep --resume {sweep_dir.name}", err=True)
    return sweep_dir


def _drive(sweep_dir: Path, as_json: bool) -> int:
    from engine.spec import SpecError
    from slmtui.gpu import inventory
    from slmtui.home import runs_dir
    from slmtui.sweep import SweepDriver, SweepRefused, trial_slots
    from slmtui.sweep_spec import SweepError

    if _read(sweep_dir).status == "finished":
        raise UserError(f"Sweep {sweep_dir.name} has finished; `slmtui sweep --show {sweep_dir.name}` prints it.")
    try:
        driver = SweepDriver(sweep_dir, runs_dir(), [], lambda text: say(text, err=as_json, flush=True))
    except (SweepError, SpecError) as exc:
        raise UserError(f"The frozen sweep file in {sweep_dir} no longer reads: {exc}") from None
    cpu = driver.spec.base.train.device == "cpu"
    driver.slots = trial_slots(driver.spec, 0 if cpu else len(inventory().gpus))
    if cpu and driver.spec.at_once > 1:
        say("Trials run one at a time on the CPU; sweep.at_once applies to GPUs.", err=as_json)
    try:
        snapshot = driver.run()
    except SweepRefused as exc:
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        say(f"\nSweep {sweep_dir.name} paused; its running trials go on. Resume it with: "
            f"slmtui sweep --resume {sweep_dir.name}", err=True)
        return 130
    return _print(snapshot, as_json)


def _print(snapshot: Any, as_json: bool) -> int:
    from rich.table import Column, Table

    from slmtui.sweeps import format_params

    if as_json:
        print_json(snapshot.to_json())
        return 0
    # every run id whole (folded onto a second line when narrow): it is what `slmtui attach` takes
    table = Table("trial", "state", "objective", Column("pruned\nat"), Column("run", overflow="fold"), "settings",
                  box=None, padding=(0, 2, 0, 0), header_style="bold")
    for t in snapshot.trials:
        table.add_row(str(t.number), t.state, f"{t.value:.4f}" if t.value is not None else "-",
                      str(t.pruned_step) if t.pruned_step is not None else "-", t.run_id or "-",
                      format_params(t.params))
    console = plain_console()
    console.print(f"Sweep {snapshot.id}: {snapshot.status}, {len(snapshot.trials)} of {snapshot.trials_wanted} "
                  f"trials, {snapshot.direction} {snapshot.objective}")
    console.print(table)
    best = snapshot.best
    if best is not None:
        console.print(f"Best: trial {best.number}, {snapshot.objective} {best.value:.4f}: {format_params(best.params)}")
    return 0


def _list(as_json: bool) -> int:
    from slmtui.sweeps import list_sweep_dirs, read_sweep, sweeps_dir

    snapshots = [read_sweep(p) for p in list_sweep_dirs(sweeps_dir())]
    if as_json:
        print_json({"sweeps": [s.to_json() for s in snapshots]})
        return 0
    if not snapshots:
        print("No sweeps yet; start one with: slmtui sweep SWEEP.toml")
        return 0
    console = plain_console()
    for s in snapshots:
        best = s.best
        text = f"{s.objective} {best.value:.4f}" if best and best.value is not None else "no best yet"
        console.print(f"{s.id}  {s.status}  {len(s.trials)}/{s.trials_wanted} trials  {text}")
    return 0
