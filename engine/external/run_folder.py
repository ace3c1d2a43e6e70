"""An imported log written as a run folder that every reader of runs understands (engine/protocol.py).

The folder holds `events.jsonl` (`started` with an `origin`, a `metrics` event per logged step, an `eval` per
evaluation, `finished` with status `imported`), `summary.json` (with the same `origin`), and a `spec.toml`
that says only what the log said (an `[imported]` table, and the Trainer's settings where it gave them).
The spec is written last: a folder is a run (listed) only once it is complete.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import tomli_w

from engine.external.log import ExternalLog
from engine.protocol import IMPORTED_STATUS, SPEC_FILE
from engine.train.reporting import Reporter

#: Past this a perplexity is written as null (exp overflows).
_MAX_EXP = 700.0


def origin_of(log: ExternalLog) -> dict[str, Any]:
    """Where an imported run came from, as its events and summary say."""
    return {"format": log.format, "path": str(log.source.resolve()), "imported": time.time()}


def imported_spec(log: ExternalLog, name: str, origin: dict[str, Any]) -> dict[str, Any]:
    """The imported run's spec: its name, where it came from, and only the settings its log gave."""
    spec: dict[str, Any] = {"name": name, "imported": {"format": origin["format"], "path": origin["path"]}}
    if log.settings:
        spec["train"] = dict(log.settings)
    return spec


def write_imported_run(log: ExternalLog, run_dir: Path, name: str) -> dict[str, Any]:
    """Create `run_dir` (it must not exist) from `log` and return the run's summary; a folder half written
    when something fails is removed."""
    run_dir.mkdir(mode=0o700)
    try:
        return _write(log, run_dir, name)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _write(log: ExternalLog, run_dir: Path, name: str) -> dict[str, Any]:
    origin = origin_of(log)
    spec = imported_spec(log, name, origin)
    ended = log.ended if log.ended is not None else origin["imported"]
    started = log.started if log.started is not None else ended
    reporter = Reporter(run_dir, run_dir.name)
    reporter.summary.update(started=started, origin=origin)
    reporter.summary.pop("pid", None)
    # no precision, device or parameter counts: the log does not say, and readers go without them
    reporter.emit("started", t=started, spec=spec, origin=origin, total_steps=log.total_steps, env={}, data={})
    for step in log.steps:
        t = log.times.get(step, ended)  # a trainer_state.json has no times: all at its end
        if step in log.train:
            reporter.emit("metrics", t=t, step=step, **log.train[step])
        if step in log.evals:
            val = log.evals[step]
            reporter.emit("eval", t=t, step=step, val_loss=val,
                          perplexity=math.exp(val) if val < _MAX_EXP else None, samples=[])
    reporter.summary["step"] = log.last_step if log.last_step is not None else max(log.steps, default=0)
    message = (f"Imported from {origin['path']} ({_FORMATS[log.format]}): {len(log.train)} logged training steps"
               f", {len(log.evals)} evaluations.")
    reporter.emit("finished", t=ended, status=IMPORTED_STATUS, summary={"message": message, "origin": origin})
    reporter.close()
    spec_tmp = run_dir / f".{SPEC_FILE}.tmp"
    with open(os.open(spec_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
        fh.write(tomli_w.dumps(spec))
    os.replace(spec_tmp, run_dir / SPEC_FILE)
    return reporter.summary


_FORMATS = {"trainer_state": "HF Trainer trainer_state.json", "tensorboard": "TensorBoard log"}
