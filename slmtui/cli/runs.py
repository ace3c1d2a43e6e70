"""`slmtui train`, `slmtui runs`, `slmtui attach`, `slmtui stop`: launching and watching training runs.

`launch_spec` and `follow_run` are the reusable pieces (the demo uses them too).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from engine.protocol import EVENTS_FILE, IMPORTED_STATUS, STOP_COMMAND
from engine.safe_text import visible_line
from slmtui.cli._common import UserError, plain_console, print_json, say

#: How the CLI offers to start a run the GPU check refused (`Refusal.sentence`).
FORCE_OVERRIDE = "pass --force to start anyway"


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="start a training run from a spec file and follow it",
                           description="Create a run folder, start the engine detached, and follow its progress. "
                           "Ctrl-C detaches; the run goes on.")
    train.add_argument("spec", type=Path, nargs="?", help="the run spec (TOML); omit with --resume")
    train.add_argument("--resume", metavar="RUN",
                       help="continue a stopped, failed or crashed run (id, unique prefix or last) from its newest "
                       "readable checkpoint, with the same data order")
    train.add_argument("--pilot", type=float, metavar="FRACTION",
                       help="train on a representative FRACTION of the data (e.g. 0.05) and predict the full run's "
                       "wall time")
    train.add_argument("--force", action="store_true",
                       help="start even when the memory estimate says the run will not fit in the GPU's free memory")
    train.add_argument("--detach", action="store_true", help="return at once; the run id is the last line")
    train.add_argument("--rehearse", action="store_true",
                       help="rehearse the worst-case batch first and fit the micro-batch to the GPU "
                       "(sets train.rehearse = \"on\"; auto rehearses on GPUs)")
    train.set_defaults(handler=cmd_train)

    runs = sub.add_parser("runs", help="list training runs, or import one trained elsewhere",
                          description="List the runs in the runs folder (`slmtui runs import PATH` adds one "
                          "trained elsewhere).")
    runs.add_argument("--json", action="store_true", help='print {"runs": [...]}')
    runs.set_defaults(handler=cmd_runs)
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="{import}")
    imp = runs_sub.add_parser("import", help="import a run trained elsewhere, to compare it with yours",
                              description="Import an HF Trainer trainer_state.json (or the checkpoint folder "
                              "holding one) or a TensorBoard log folder as a run: it is listed, charted and "
                              "overlaid in the compare view like any run, with status `imported`.")
    imp.add_argument("path", type=Path, help="trainer_state.json, a checkpoint folder, or a TensorBoard log folder")
    imp.add_argument("--name", help="the run's name (default: from the path)")
    imp.add_argument("--json", action="store_true", help="print the imported run as JSON")
    imp.set_defaults(handler=cmd_runs_import)

    attach = sub.add_parser("attach", help="follow a run's progress from its first event",
                            description="Follow a run (full id, unique prefix or `last`). Ctrl-C detaches.")
    attach.add_argument("run", help="run id, unique prefix, or last")
    attach.set_defaults(handler=cmd_attach)

    stop = sub.add_parser("stop", help="ask a run to stop after its current step, with a checkpoint",
                          description="Ask a run to stop after its current optimizer step (it checkpoints first).")
    stop.add_argument("run", help="run id, unique prefix, or last")
    stop.set_defaults(handler=cmd_stop)


def _runs_dir() -> Path:
    from engine.paths import runs_dir

    return runs_dir()


def _resolve(ref: str) -> Path:
    from slmtui.runs import RunNotFound, resolve_run

    try:
        return resolve_run(ref, _runs_dir())
    except RunNotFound as exc:
        raise UserError(str(exc)) from None


def launch_spec(spec_path: Path, runs_dir: Path | None = None, pilot: float | None = None,
                force: bool = False, rehearse: bool = False) -> Any:
    """Validate a spec file, run the pre-launch checks (`slmtui.launch`) and launch it (with `rehearse`, force a
    fit rehearsal); returns the `RunInfo`. Spec problems and refusals raise `UserError`."""
    from engine.spec import SpecError, load_spec
    from slmtui.gpu import inventory
    from slmtui.launch import check_launch, launch_run

    try:
        spec = load_spec(spec_path)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    if pilot is not None and not 0 < pilot < 1:
        raise UserError(f"--pilot {pilot:g} must be a fraction between 0 and 1, such as 0.05.")
    if rehearse:
        spec.train.rehearse = "on"
    runs = runs_dir or _runs_dir()
    check = check_launch(spec, runs, inventory, force, pilot is not None)
    for note in check.notes:
        say(note)
    for overridden in check.overridden:
        say(f"Starting anyway (--force): {overridden.reason}.")
    if check.refusal:
        raise UserError(check.refusal.sentence(FORCE_OVERRIDE))
    return launch_run(spec, runs, pilot=pilot)


def follow_run(run_dir: Path, from_start: bool = True, offset: int | None = None) -> str:
    """Show a run's progress (rich) until it finishes; returns its final status. Ctrl-C propagates.
    `offset`: start at this byte of the event file (a resumed run's new events)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from slmtui.runs import follow

    console = plain_console(stderr=False)
    # the engine's own ETA is in the stats (rich's time-remaining column would be a second, cruder one)
    columns = (TextColumn("{task.description}", style="bold", markup=False), BarColumn(bar_width=20),
               TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[stats]}"), TimeElapsedColumn())
    status = "crashed"
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(visible_line(run_dir.name), total=None, stats="starting")
        for event in follow(run_dir, from_start=from_start, offset=offset):
            kind = event.get("type")
            if kind == "started":
                progress.update(task, total=event.get("total_steps"), completed=event.get("resumed_from") or 0)
                origin = event.get("origin")
                if isinstance(origin, dict):
                    console.print(f"trained elsewhere: imported from {origin.get('path')} ({origin.get('format')})")
                else:
                    console.print(f"{event.get('precision')} on {event.get('device')}, "
                                  f"{event.get('params_trainable'):,} of {event.get('params_total'):,} parameters "
                                  "trained")
            elif kind == "metrics":
                loss, tps = event.get("loss"), event.get("tokens_per_s") or 0.0
                text = f"loss {loss:.4f} lr {event.get('lr', 0):.2e} {tps:,.0f} tok/s" if loss is not None else ""
                if isinstance(event.get("eta_s"), int | float):
                    text += f" ETA {_duration(event['eta_s'])}"
                progress.update(task, completed=event.get("step", 0), stats=text)
            elif kind == "eval":
                val = event.get("val_loss")
                console.print(f"step {event.get('step')}: validation loss {val:.4f}, perplexity "
                              f"{event.get('perplexity'):.2f}" if val is not None else "evaluation had no loss")
            elif kind == "checkpoint":
                what = "the final weights" if event.get("final") else "a checkpoint"
                console.print(f"step {event.get('step')}: saved {what} to {event.get('path')}")
            elif kind == "rehearsal":
                console.print(str(event.get("message", "")))
            elif kind == "log" and (event.get("level") in ("warning", "error") or
                                    str(event.get("text", "")).startswith(("Resumed from", "Pilot run"))):
                console.print(f"{event.get('level')}: {event.get('text')}")
            elif kind == "eta":
                console.print(f"Pilot prediction for the full run ({event.get('total_steps')} steps): "
                              f"{_duration(event.get('eta_s'))} ({_duration(event.get('eta_low_s'))} to "
                              f"{_duration(event.get('eta_high_s'))}), from its first step, warm-up excluded.")
            elif kind == "finished":
                status = str(event.get("status"))
                message = (event.get("summary") or {}).get("message") or ""
                console.print(f"run {run_dir.name} {status}. {message}".rstrip())
    return status


def _follow_or_detach(run_dir: Path, from_start: bool, offset: int | None = None) -> int:
    try:
        status = follow_run(run_dir, from_start=from_start, offset=offset)
    except KeyboardInterrupt:
        say(f"\nDetached; the run goes on. Reattach with: slmtui attach {run_dir.name}")
        return 0
    return 0 if status in ("completed", "stopped", IMPORTED_STATUS) else 1


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        return _resume(args)
    if args.spec is None:
        raise UserError("Give a spec file to start a run, or --resume RUN to continue one.")
    info = launch_spec(args.spec, pilot=args.pilot, force=args.force, rehearse=args.rehearse)
    if args.detach:
        say(f"Started run {info.id} in {info.dir}; follow it with: slmtui attach {info.id}")
        print(info.id)
        return 0
    say(f"Started run {info.id}; Ctrl-C detaches without stopping it.")
    return _follow_or_detach(info.dir, from_start=True)


def _resume(args: argparse.Namespace) -> int:
    from slmtui.runs import ResumeRefused, resume

    if args.spec is not None or args.pilot is not None:
        raise UserError("--resume takes the run alone: its spec and pilot setting are those it started with.")
    run_dir = _resolve(args.resume)
    offset_events = (run_dir / EVENTS_FILE).stat().st_size if (run_dir / EVENTS_FILE).exists() else 0
    try:
        info = resume(run_dir)
    except ResumeRefused as exc:
        raise UserError(str(exc)) from None
    if args.detach:
        say(f"Resumed run {info.id}; follow it with: slmtui attach {info.id}")
        print(info.id)
        return 0
    say(f"Resumed run {info.id}; Ctrl-C detaches without stopping it.")
    return _follow_or_detach(run_dir, from_start=False, offset=offset_events)


def cmd_runs(args: argparse.Namespace) -> int:
    from slmtui.reconcile import reconcile_home
    from slmtui.runs import list_runs

    runs = list_runs(_runs_dir())
    warning = reconcile_home(runs)
    if warning:
        say(f"slmtui: {warning}", err=True)
    if args.json:
        print_json({"runs": [r.to_json() for r in runs]})
        return 0
    from rich.table import Column, Table

    if not runs:
        print("No runs yet; start one with: slmtui train SPEC.toml")
        return 0
    # Every field whole at 80 columns: no frame, two-line headers as narrow as the numbers, and only the id
    # (the one wide field) folds onto a second line when the terminal is too narrow for it.
    table = Table(Column("id", overflow="fold"),
                  *(Column(name, no_wrap=True) for name in ("status", "step", "loss", "val\nloss", "best\nval",
                                                            "started")),
                  box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold")
    for r in runs:
        fmt = lambda v: f"{v:.4f}" if isinstance(v, int | float) else "-"  # noqa: E731
        table.add_row(r.id, r.status, f"{r.step}/{r.total_steps or '?'}", fmt(r.latest.get("loss")),
                      fmt(r.latest.get("val_loss")), fmt(r.best.get("val_loss")),
                      time.strftime("%m-%d %H:%M", time.localtime(r.started)) if r.started else "-")
    plain_console().print(table)
    for r in runs:
        if r.origin:
            say(f"{r.id} was imported from {r.origin.get('path')} ({r.origin.get('format')}).")
    return 0


def cmd_runs_import(args: argparse.Namespace) -> int:
    from slmtui.reconcile import reconcile_home
    from slmtui.run_import import ImportRefused, import_run

    try:
        info = import_run(args.path, _runs_dir(), name=args.name)
    except ImportRefused as exc:
        raise UserError(str(exc)) from None
    warning = reconcile_home()
    if warning:
        say(f"slmtui: {warning}", err=True)
    if args.json:
        print_json(info.to_json())
        return 0
    loss = info.latest.get("loss")
    figures = f", last loss {loss:.4f}" if isinstance(loss, int | float) else ""
    best = info.best.get("val_loss")
    figures += f", best validation loss {best:.4f}" if isinstance(best, int | float) else ""
    say(f"Imported {visible_line(str(args.path))} as run {info.id}: step {info.step}"
        f"{f' of {info.total_steps}' if info.total_steps else ''}{figures}. `slmtui runs` lists it; mark it "
        "beside another in the journal's runs view (r, space, o) to overlay their curves.")
    return 0


def _duration(seconds: Any) -> str:
    from engine.eta import format_duration

    return format_duration(seconds) if isinstance(seconds, int | float) else "?"


def cmd_attach(args: argparse.Namespace) -> int:
    return _follow_or_detach(_resolve(args.run), from_start=True)


def cmd_stop(args: argparse.Namespace) -> int:
    from slmtui.runs import read_run, request

    run_dir = _resolve(args.run)
    info = read_run(run_dir)
    if info.status != "running":
        raise UserError(f"Run {info.id} is not running (it is {info.status}); nothing to stop.")
    request(run_dir, STOP_COMMAND)
    say(f"Asked run {info.id} to stop after its current step; it saves a checkpoint first.")
    return 0
