"""`python -m engine import-run SOURCE RUN_DIR [--name NAME]`: a run trained elsewhere as a run folder.

SOURCE is an HF Trainer `trainer_state.json` (or a checkpoint folder holding one) or a TensorBoard log
(an event file, or a folder of them). Prints the new run's summary as JSON; a SOURCE that cannot be imported
ends with one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.external.log import ACCEPTED, ExternalLog, ExternalLogError
from engine.paths import special_file
from engine.safe_text import safe_json_dumps, visible

TRAINER_STATE = "trainer_state.json"


def read_external(source: Path) -> ExternalLog:
    """The log at `source`, whichever kind it is; `ExternalLogError` (one sentence) otherwise."""
    from engine.external.tensorboard_log import is_tensorboard_log, read_tensorboard
    from engine.external.trainer_state import read_trainer_state

    what = special_file(source)
    if what:
        raise ExternalLogError(f"{source} is {what}; give {ACCEPTED}.")
    if not source.exists():
        raise ExternalLogError(f"{source} does not exist; give {ACCEPTED}.")
    if source.is_dir() and (source / TRAINER_STATE).is_file():
        return read_trainer_state(source / TRAINER_STATE)
    if is_tensorboard_log(source) or source.is_dir():
        return read_tensorboard(source)
    return read_trainer_state(source)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine import-run", description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("run_dir", type=Path, help="the run folder to create (it must not exist)")
    parser.add_argument("--name", help="the run's name (default: the last part of RUN_DIR's id)")
    args = parser.parse_args(argv)
    from engine.external.run_folder import write_imported_run

    try:
        log = read_external(args.source.expanduser())
    except ExternalLogError as exc:
        print(visible(str(exc)), file=sys.stderr)
        return 1
    name = args.name or args.run_dir.name.split("-", 2)[-1]
    summary = write_imported_run(log, args.run_dir, name)
    sys.stdout.write(safe_json_dumps(summary) + "\n")
    return 0
