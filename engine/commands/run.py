"""`python -m engine run RUN_DIR`: train the run in RUN_DIR (spec.toml), reporting through its files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.protocol import PID_FILE, SPEC_FILE, SUMMARY_FILE, read_json, write_json_atomic

if TYPE_CHECKING:
    from engine.train.distributed import Layout


def write_pid_file(run_dir: Path) -> None:
    """The pid and the process start time, so a reused pid is never taken for this engine."""
    import psutil

    me = psutil.Process(os.getpid())
    info = {"pid": me.pid, "create_time": me.create_time(), "argv": sys.argv}
    tmp = run_dir / f".{PID_FILE}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, run_dir / PID_FILE)


def mark_resumed(run_dir: Path) -> None:
    """A resumed run reads as running from the moment its engine holds the folder (its summary still says
    how the previous engine ended)."""
    summary = read_json(run_dir / SUMMARY_FILE)
    if summary:
        summary.update(status="running", ended=None, message=None)
        write_json_atomic(run_dir / SUMMARY_FILE, summary)


def _layout(run_dir: Path, args: argparse.Namespace) -> Layout | None:
    """The processes to start: the spec's train.devices, nodes, node_rank and rdzv_endpoint, each flag given
    replacing its setting; None when the spec is unreadable (the run itself reports why), a sentence when the
    machines do not add up."""
    from engine.spec import SpecError, load_spec, node_problems
    from engine.train.distributed import Layout

    try:
        train = load_spec(run_dir / SPEC_FILE, check_files=False).train
    except SpecError:
        return None
    for name in ("nodes", "node_rank", "rdzv_endpoint"):
        if getattr(args, name) is not None:
            setattr(train, name, getattr(args, name))
    problems = node_problems(train)
    if problems:
        raise ValueError(problems[0].message)
    return Layout(train.devices, train.nodes, train.node_rank, train.rdzv_endpoint)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine run", description=__doc__)
    parser.add_argument("run_dir", type=Path, help=f"a run folder holding {SPEC_FILE}")
    parser.add_argument("--resume", action="store_true", help="continue from the newest readable checkpoint")
    parser.add_argument("--pilot", type=float, metavar="FRACTION",
                        help="train on this fraction of the data and predict the full run's time")
    parser.add_argument("--nodes", type=int, help="machines in the run (replaces train.nodes)")
    parser.add_argument("--node-rank", type=int, help="this machine's number, 0 to nodes-1 (train.node_rank)")
    parser.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                        help="where the machines meet: node 0's address and a free port (train.rdzv_endpoint)")
    args = parser.parse_args(argv)
    if args.pilot is not None and not 0 < args.pilot < 1:
        print(f"engine run: --pilot {args.pilot} must be a fraction between 0 and 1, such as 0.05.", file=sys.stderr)
        return 2
    run_dir: Path = args.run_dir.resolve()
    if not (run_dir / SPEC_FILE).is_file():
        print(f"engine run: {run_dir} has no {SPEC_FILE}; create the run with `slmtui train`.", file=sys.stderr)
        return 2
    from engine.runlock import LOCKED_EXIT, RunLock, RunLocked, under_torchrun

    lock = RunLock(run_dir)
    if not under_torchrun():  # the ranks of a data-parallel run leave the lock and pid file to their launcher
        try:
            lock.acquire()  # before anything else is written: one engine per run folder
        except RunLocked as exc:
            print(f"engine run: {exc}", file=sys.stderr)
            return LOCKED_EXIT
        if args.resume:
            mark_resumed(run_dir)
        write_pid_file(run_dir)  # last: a launcher waiting for this pid knows the engine holds the run
        try:
            layout = _layout(run_dir, args)
        except ValueError as exc:
            lock.release()
            print(f"engine run: {exc}", file=sys.stderr)
            return 2
        if layout is not None and (layout.devices > 1 or layout.nodes > 1):
            from engine.train.distributed import launch_ranks
            from engine.train.rank_failures import end_after_ranks

            extra = ["--resume"] * args.resume + (["--pilot", str(args.pilot)] if args.pilot is not None else [])
            code = launch_ranks(run_dir, layout, extra, keep_fds=lock.fds())
            end_after_ranks(run_dir, code)
            return 0 if code == 0 else 1
    from engine.train.loop import StopFlag
    from engine.train.run import execute

    stop = StopFlag()
    stop.install()
    try:
        status = execute(run_dir, stop, resume=args.resume, pilot=args.pilot)
    finally:
        lock.release()
    code = 0 if status in ("completed", "stopped") else 1
    if under_torchrun():
        from engine.train.distributed import end_rank

        end_rank(code)
    return code
