"""`python -m engine run RUN_DIR`: train the run in RUN_DIR (spec.toml), reporting through its files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from engine.protocol import PID_FILE, SPEC_FILE


def write_pid_file(run_dir: Path) -> None:
    """The pid and the process start time, so a reused pid is never taken for this engine."""
    import psutil

    me = psutil.Process(os.getpid())
    info = {"pid": me.pid, "create_time": me.create_time(), "argv": sys.argv}
    tmp = run_dir / f".{PID_FILE}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, run_dir / PID_FILE)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine run", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder holding spec.toml")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    if not (run_dir / SPEC_FILE).is_file():
        print(f"engine run: {run_dir} has no {SPEC_FILE}; create the run with `slmtui train`.", file=sys.stderr)
        return 2
    write_pid_file(run_dir)
    from engine.train.loop import StopFlag
    from engine.train.run import execute

    stop = StopFlag()
    stop.install()
    status = execute(run_dir, stop)
    return 0 if status in ("completed", "stopped") else 1
