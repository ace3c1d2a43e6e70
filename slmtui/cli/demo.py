"""`slmtui demo`: build the built-in demo once, start its training run, and open the console on the Monitor.

With `--headless` it follows the run with a progress display instead and exits 0 when it completes.
"""

from __future__ import annotations

import argparse
import os

from slmtui.cli._common import UserError, print_json, say


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo", help="train the built-in demo (support-ticket triage on a tiny model) and watch it",
        description="Build HOME/demo once (a support-ticket dataset and a tiny Llama-family model), start a LoRA "
        "run on it, and open the console's Monitor on it; a demo run still training is reused.")
    parser.add_argument("--headless", action="store_true",
                        help="no console: follow the run with a progress display until it ends")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help="optimizer steps of the run (default: the demo's, about 1-2 minutes on 2 CPU cores)")
    parser.add_argument("--json", action="store_true",
                        help="with --headless: print one JSON object (the run as `slmtui runs --json` lists it)")
    parser.set_defaults(handler=cmd_demo)


def _build_demo() -> None:
    from slmtui.engine_proc import EngineError, run_engine_json
    from slmtui.home import slmtui_home

    home = slmtui_home()
    from engine.paths import demo_dir

    if (demo_dir(home) / "model" / "config.json").is_file():
        return
    say(f"Building the demo under {demo_dir(home)} (once)...", err=True)
    try:
        run_engine_json("make-demo", "--json", home=home, timeout=600)
    except EngineError as exc:
        raise UserError(f"Could not build the demo: {exc}") from None


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.paths import runs_dir
    from slmtui.demo import DEMO_NAME, demo_spec
    from slmtui.home import slmtui_home
    from slmtui.runs import launch, list_runs, read_run

    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be a whole number of at least 1.")
    if args.json and not args.headless:
        raise UserError("--json goes with --headless; drop it to open the console.")
    _build_demo()
    home = slmtui_home()
    runs = runs_dir(home)
    # One torch thread: on a small shared CPU, OpenMP threads fighting for cores made training 20x slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    training = [r for r in list_runs(runs) if r.status == "running" and r.name == DEMO_NAME]
    if training and not args.headless and args.steps is None:
        info = training[-1]
        say(f"The demo run {info.id} is still training; opening it.", err=True)
    else:
        info = launch(demo_spec(home, args.steps), runs, home=home)
        if not args.json:
            say(f"Started the demo run {info.id}.", err=True)
    if not args.headless:
        from slmtui.cli.console import open_console

        return open_console(home=home, screen="Monitor", run=info.id)
    if args.json:
        from slmtui.runs import follow

        status = "crashed"
        for event in follow(info.dir):
            if event.get("type") == "finished":
                status = str(event.get("status"))
        print_json(read_run(info.dir).to_json())
    else:
        from slmtui.cli.runs import follow_run

        try:
            status = follow_run(info.dir)
        except KeyboardInterrupt:
            print(f"\nDetached; the demo run goes on. Reattach with: slmtui attach {info.id}")
            return 0
    return 0 if status == "completed" else 1
