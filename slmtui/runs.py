"""Runs as the console and CLI see them: create and launch, list, resolve, stop, follow.

A run folder is the source of truth (docs/architecture.md). Listing reads only `summary.json` and the pid file;
a run whose engine is gone (a zombie counts as gone) with no `finished` event is `crashed`. Light: no
textual, no ML stack.
"""

from __future__ import annotations

import json
import os
import subprocess
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
    IMPORTED_STATUS,
    PID_FILE,
    SPEC_FILE,
    SUMMARY_FILE,
    EventFollower,
    append_control,
    read_json,
    write_json_atomic,
)
from engine.runlock import process_alive
from engine.spec import RunSpec, dump_spec, slug

#: A run folder without a pid file this young is still being launched, not crashed.
LAUNCH_GRACE_S = 15.0
#: What a run whose engine ended without a `finished` event says (the listing, `follow`, the Monitor).
CRASHED_MESSAGE = f"The engine process ended without a finished event; see {ENGINE_LOG}."
#: How long `resume` waits for its engine to hold the run before returning anyway (a very busy machine).
ENGINE_UP_TIMEOUT_S = 60.0
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
    origin: dict[str, Any] | None = None
    """Where an imported run came from (`format`, `path`); None for a run trained here."""

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
            "origin": self.origin,
        }


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds") if t else None


def new_run_id(name: str, runs_dir: Path, now: float | None = None, unnamed: str = "run") -> str:
    """`YYYYMMDD-HHMMSS-<slug>` (`unnamed` for a name with no letter or digit), with `-2`, `-3`... when that
    folder already exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"{stamp}-{slug(name) or unnamed}"
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
    _start_engine(run_dir, home, engine_args)
    return read_run(run_dir)


def _start_engine(run_dir: Path, home: Path | None, engine_args: Sequence[str]) -> subprocess.Popen[bytes]:
    from slmtui.engine_proc import engine_command, spawn_detached

    proc = spawn_detached(engine_command("run", str(run_dir), *engine_args), run_dir / ENGINE_LOG, home=home)
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.Error:  # it died at once: the listing will say crashed unless it wrote `finished`
        create_time = 0.0
    if not (run_dir / PID_FILE).exists():  # the engine writes the same facts itself once it holds the run
        write_json_atomic(run_dir / PID_FILE, {"pid": proc.pid, "create_time": create_time})
    return proc


def wait_engine_up(run_dir: Path, proc: subprocess.Popen[bytes], timeout: float = ENGINE_UP_TIMEOUT_S) -> None:
    """Wait until the engine just started holds the run folder (its pid is in the pid file, written after it
    took the run's lock) or has exited. Raises `ResumeRefused` with the engine's own sentence when another
    engine holds the run, or when it ended at once."""
    from engine.runlock import LOCKED_EXIT, lock_holder, locked_message

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code == LOCKED_EXIT:
            raise ResumeRefused(locked_message(run_dir, lock_holder(run_dir)))
        if code is not None:
            raise ResumeRefused(f"The engine of run {run_dir.name} exited at once (status {code}): "
                                f"{_last_line(run_dir / ENGINE_LOG)}")
        if read_json(run_dir / PID_FILE).get("pid") == proc.pid:
            return
        time.sleep(0.05)  # the engine takes its lock within a second of starting: before it imports torch


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return f"see {ENGINE_LOG}."
    return lines[-1].strip() if lines else f"see {ENGINE_LOG}."


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run folder holds at least one complete checkpoint."""
    return any((run_dir / "checkpoints").glob("step-*/meta.json"))


def resume(run_dir: Path, home: Path | None = None) -> RunInfo:
    """Start the engine again on a run that ended, from its newest readable checkpoint (same folder, same
    event history), and return once that engine holds the run. Raises `ResumeRefused` (one sentence) when it
    is running, has no checkpoint, or another engine took the run first (two resumes at once)."""
    info = read_run(run_dir)
    if info.status == "running":
        raise ResumeRefused(f"Run {info.id} is still running; stop it first or attach to it.")
    if info.status == "completed":
        raise ResumeRefused(f"Run {info.id} completed; there is nothing to resume.")
    if info.status == IMPORTED_STATUS:
        raise ResumeRefused(f"Run {info.id} was trained elsewhere and imported; there is nothing to resume here.")
    if not has_checkpoint(run_dir):
        raise ResumeRefused(f"Run {info.id} has no checkpoint to resume from; start it again with slmtui train.")
    pilot = read_json(run_dir / SUMMARY_FILE).get("pilot")
    args = ["--resume", *(["--pilot", str(pilot)] if isinstance(pilot, int | float) else [])]
    # the engine marks the summary running once it holds the run: a second engine, refused, writes nothing
    wait_engine_up(run_dir, _start_engine(run_dir, home, args))
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
    return process_alive(pid, created)


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
    message = summary.get("message")
    if not message and status in FINISHED_STATUSES and summary.get("status") != status:
        # the engine wrote `finished` but not its last summary (an unwritable folder, killed after the event)
        message = ((finished_event(run_dir) or {}).get("summary") or {}).get("message")
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
        message=message or (CRASHED_MESSAGE if status == "crashed" else None),
        pid=pid_info.get("pid") if isinstance(pid_info.get("pid"), int) else None,
        origin=summary.get("origin") if isinstance(summary.get("origin"), dict) else None,
    )


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / SPEC_FILE).is_file()


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run under `runs_dir`, oldest first."""
    if not runs_dir.is_dir():
        return []
    return [read_run(p) for p in sorted(runs_dir.iterdir()) if is_run_dir(p)]


def pick_id(ref: str, ids: list[str], noun: str) -> str | None:
    """The one of `ids` (oldest first) that `ref` names: `last`, a full id or a unique prefix; None when none
    does. A prefix of several raises LookupError with a sentence naming a few."""
    if ref == "last":
        return ids[-1] if ids else None
    if ref in ids:
        return ref
    matches = [i for i in ids if i.startswith(ref)]
    if len(matches) > 1:
        raise LookupError(f"{ref!r} matches {len(matches)} {noun}s ({', '.join(matches[:3])}...); type more of the "
                          "id.")
    return matches[0] if matches else None


def resolve_run(ref: str, runs_dir: Path) -> Path:
    """A run folder from a full id, a unique prefix, `last`, or a path to a run folder."""
    candidate = Path(ref).expanduser()
    if ("/" in ref or ref.startswith(".")) and is_run_dir(candidate):
        return candidate.resolve()
    ids = sorted(p.name for p in runs_dir.iterdir() if is_run_dir(p)) if runs_dir.is_dir() else []
    try:
        found = pick_id(ref, ids, "run")
    except LookupError as exc:
        raise RunNotFound(str(exc)) from None
    if found is not None:
        return runs_dir / found
    if ref == "last":
        raise RunNotFound(f"There are no runs in {runs_dir} yet; start one with `slmtui train SPEC.toml`.")
    raise RunNotFound(f"No run matches {ref!r}; `slmtui runs` lists them.")


def request(run_dir: Path, command: str) -> dict[str, Any]:
    """Ask a run's engine to `stop`, `checkpoint` or `eval` (it obeys between optimizer steps)."""
    return append_control(run_dir, command)


def ended_without_event(run_dir: Path) -> dict[str, Any]:
    """The `finished` event (seq -1) a follower ends on when the engine is gone and the events it read held
    none: the status the run's other sources give (the summary, the event file's tail; the event file may
    have been deleted or replaced under the follower), `crashed` only when none says how the run ended."""
    info = read_run(run_dir)
    status = info.status if info.status in FINISHED_STATUSES else "crashed"
    message = info.message if status != "crashed" else CRASHED_MESSAGE
    if not (run_dir / SPEC_FILE).is_file():
        message = f"The run folder {run_dir} was deleted, and its engine with it."
    return {"v": 1, "type": "finished", "seq": -1, "t": time.time(), "run": run_dir.name, "status": status,
            "summary": {"message": message or f"The run {status}."}}


def follow(run_dir: Path, from_start: bool = True, poll_s: float = 0.25,
           offset: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield a run's events as they come, until `finished` or the engine is gone.

    When the engine is gone without a `finished` event in the file followed, a synthetic one
    (`ended_without_event`: the summary's status, else `crashed`) ends the stream, within about
    `LIVENESS_INTERVAL_S`.
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
                yield ended_without_event(run_dir)
                return
        time.sleep(poll_s)
