"""Runs as the console and CLI see them: create and launch, list, resolve, stop, follow.

A run folder is the source of truth (ARCHITECTURE.md). Listing reads only `summary.json` and the pid file;
a run whose engine is gone (a zombie counts as gone) with no `finished` event is `crashed`. Light: no
textual, no ML stack.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from engine.protocol import (
    ENGINE_LOG,
    EVENTS_FILE,
    FINISHED_STATUSES,
    PID_FILE,
    SPEC_FILE,
    SUMMARY_FILE,
    EventFollower,
    append_control,
    read_json,
    write_json_atomic,
)
from engine.spec import RunSpec, dump_spec, slug

#: A run folder without a pid file this young is still being launched, not crashed.
LAUNCH_GRACE_S = 15.0
#: How often `follow` checks that the engine is still alive when no events come.
LIVENESS_INTERVAL_S = 1.0


class RunNotFound(LookupError):
    """No run matches what the user typed; one sentence."""


class ResumeRefused(Exception):
    """A run that cannot be resumed (still running, completed, no checkpoint); one sentence."""


@dataclass
class RunInfo:
    """One run as listed: identity, status, times and its latest and best metrics."""

    id: str
    dir: Path
    status: str
    name: str = ""
    started: float | None = None
    ended: float | None = None
    step: int = 0
    total_steps: int | None = None
    latest: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    pid: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form `slmtui runs --json` prints (times as ISO 8601 and unix seconds)."""
        return {
            "id": self.id,
            "status": self.status,
            "dir": str(self.dir),
            "name": self.name,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "started_t": self.started,
            "ended_t": self.ended,
            "step": self.step,
            "total_steps": self.total_steps,
            "latest": self.latest,
            "best": self.best,
            "message": self.message,
            "pid": self.pid,
        }


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds") if t else None


def new_run_id(name: str, runs_dir: Path, now: float | None = None) -> str:
    """`YYYYMMDD-HHMMSS-<slug>`, with `-2`, `-3`... when that folder already exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"{stamp}-{slug(name) or 'run'}"
    run_id, n = base, 1
    while (runs_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def create_run(spec: RunSpec, runs_dir: Path) -> Path:
    """A new owner-only run folder with the frozen spec and an initial summary."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id(spec.name, runs_dir)
    run_dir = runs_dir / run_id
    run_dir.mkdir(mode=0o700)
    with open(os.open(run_dir / SPEC_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
        fh.write(dump_spec(spec))
    write_json_atomic(run_dir / SUMMARY_FILE, {"run": run_id, "status": "running", "step": 0, "total_steps": None,
                                               "started": time.time(), "ended": None, "latest": {}, "best": {}})
    return run_dir


def launch(spec: RunSpec, runs_dir: Path, home: Path | None = None, engine_args: Sequence[str] = ()) -> RunInfo:
    """Create a run folder and start `python -m engine run RUN_DIR [ENGINE_ARGS]` in its own session."""
    run_dir = create_run(spec, runs_dir)
    _start_engine(run_dir, home, engine_args, replace_pid=False)
    return read_run(run_dir)


def _start_engine(run_dir: Path, home: Path | None, engine_args: Sequence[str], replace_pid: bool) -> None:
    from slmtui.engine_proc import engine_command, spawn_detached

    proc = spawn_detached(engine_command("run", str(run_dir), *engine_args), run_dir / ENGINE_LOG, home=home)
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.Error:  # it died at once: the listing will say crashed unless it wrote `finished`
        create_time = 0.0
    if replace_pid or not (run_dir / PID_FILE).exists():  # the engine writes the same facts itself once up
        write_json_atomic(run_dir / PID_FILE, {"pid": proc.pid, "create_time": create_time})


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run folder holds at least one complete checkpoint."""
    return any((run_dir / "checkpoints").glob("step-*/meta.json"))


def resume(run_dir: Path, home: Path | None = None) -> RunInfo:
    """Start the engine again on a run that ended, from its newest readable checkpoint (same folder, same
    event history). Raises `ResumeRefused` (one sentence) when it is running or has no checkpoint."""
    info = read_run(run_dir)
    if info.status == "running":
        raise ResumeRefused(f"Run {info.id} is still running; stop it first or attach to it.")
    if info.status == "completed":
        raise ResumeRefused(f"Run {info.id} completed; there is nothing to resume.")
    if not has_checkpoint(run_dir):
        raise ResumeRefused(f"Run {info.id} has no checkpoint to resume from; start it again with slmtui train.")
    summary = read_json(run_dir / SUMMARY_FILE)
    summary.update(status="running", ended=None, message=None)
    write_json_atomic(run_dir / SUMMARY_FILE, summary)  # until the engine is up it must not read as ended
    pilot = summary.get("pilot")
    args = ["--resume", *(["--pilot", str(pilot)] if isinstance(pilot, int | float) else [])]
    _start_engine(run_dir, home, args, replace_pid=True)
    return read_run(run_dir)


def engine_alive(run_dir: Path) -> bool:
    """Whether the run's engine process still runs (same pid and start time, not a zombie)."""
    info = read_json(run_dir / PID_FILE)
    pid, created = info.get("pid"), info.get("create_time")
    if not isinstance(pid, int):
        try:  # no pid file yet: a run being launched right now
            return time.time() - (run_dir / SPEC_FILE).stat().st_mtime < LAUNCH_GRACE_S
        except OSError:
            return False
    try:
        proc = psutil.Process(pid)
        if isinstance(created, int | float) and created and abs(proc.create_time() - created) > 1.0:
            return False  # the pid was reused by another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def finished_event(run_dir: Path) -> dict[str, Any] | None:
    """The run's `finished` event, looked for in the last 64 KiB of its event file."""
    path = run_dir / EVENTS_FILE
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 65536))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if '"finished"' in line:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("type") == "finished":
                return event
    return None


def run_status(run_dir: Path, summary: dict[str, Any]) -> str:
    """running | completed | stopped | failed | oom | crashed."""
    status = summary.get("status")
    if status in FINISHED_STATUSES:
        return str(status)
    if engine_alive(run_dir):
        return "running"
    event = finished_event(run_dir)  # died after `finished` but before the last summary write
    if event and event.get("status") in FINISHED_STATUSES:
        return str(event["status"])
    return "crashed"


def read_run(run_dir: Path) -> RunInfo:
    """A run's `RunInfo` from its summary and pid file (never the whole event file)."""
    summary = read_json(run_dir / SUMMARY_FILE)
    pid_info = read_json(run_dir / PID_FILE)
    status = run_status(run_dir, summary)
    ended = summary.get("ended")
    if status == "crashed" and not ended:
        try:
            ended = (run_dir / EVENTS_FILE).stat().st_mtime
        except OSError:
            ended = None
    name = run_dir.name.split("-", 2)[2] if run_dir.name.count("-") >= 2 else run_dir.name
    return RunInfo(
        id=run_dir.name,
        dir=run_dir,
        status=status,
        name=name,
        started=summary.get("started"),
        ended=ended,
        step=int(summary.get("step") or 0),
        total_steps=summary.get("total_steps"),
        latest=summary.get("latest") or {},
        best=summary.get("best") or {},
        message=summary.get("message") or ("The engine process ended without a finished event; see engine.log."
                                           if status == "crashed" else None),
        pid=pid_info.get("pid") if isinstance(pid_info.get("pid"), int) else None,
    )


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / SPEC_FILE).is_file()


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run under `runs_dir`, oldest first."""
    if not runs_dir.is_dir():
        return []
    return [read_run(p) for p in sorted(runs_dir.iterdir()) if is_run_dir(p)]


def resolve_run(ref: str, runs_dir: Path) -> Path:
    """A run folder from a full id, a unique prefix, `last`, or a path to a run folder."""
    candidate = Path(ref).expanduser()
    if ("/" in ref or ref.startswith(".")) and is_run_dir(candidate):
        return candidate.resolve()
    ids = sorted(p.name for p in runs_dir.iterdir() if is_run_dir(p)) if runs_dir.is_dir() else []
    if ref == "last":
        if not ids:
            raise RunNotFound(f"There are no runs in {runs_dir} yet; start one with `slmtui train SPEC.toml`.")
        return runs_dir / ids[-1]
    if ref in ids:
        return runs_dir / ref
    matches = [i for i in ids if i.startswith(ref)]
    if len(matches) == 1:
        return runs_dir / matches[0]
    if matches:
        raise RunNotFound(f"{ref!r} matches {len(matches)} runs ({', '.join(matches[:3])}...); type more of the id.")
    raise RunNotFound(f"No run matches {ref!r}; `slmtui runs` lists them.")


def request(run_dir: Path, command: str) -> dict[str, Any]:
    """Ask a run's engine to `stop`, `checkpoint` or `eval` (it obeys between optimizer steps)."""
    return append_control(run_dir, command)


def follow(run_dir: Path, from_start: bool = True, poll_s: float = 0.25,
           offset: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield a run's events as they come, until `finished` or the engine is gone.

    When the engine dies without a `finished` event, a synthetic `finished` event of status `crashed`
    (seq -1) ends the stream, within about `LIVENESS_INTERVAL_S`.
    """
    follower = EventFollower(run_dir / EVENTS_FILE)
    if offset is not None:
        follower.offset = offset
    elif not from_start:
        path = run_dir / EVENTS_FILE
        follower.offset = path.stat().st_size if path.exists() else 0
    last_check = 0.0
    while True:
        events = follower.poll()
        for i, event in enumerate(events):
            yield event
            if event.get("type") == "finished" and i == len(events) - 1:
                return  # a `finished` with events after it was a run that was later resumed
        if events:
            continue
        now = time.monotonic()
        if now - last_check >= LIVENESS_INTERVAL_S:
            last_check = now
            if not engine_alive(run_dir):
                late = follower.poll()  # it may have written its last events just before exiting
                yield from late
                if any(e.get("type") == "finished" for e in late):
                    return
                yield {"v": 1, "type": "finished", "seq": -1, "t": time.time(), "run": run_dir.name,
                       "status": "crashed",
                       "summary": {"message": "The engine process ended without a finished event; see engine.log."}}
                return
        time.sleep(poll_s)
