"""The event protocol between the engine and everything that reads a run folder.

One JSON object per line of `RUN_DIR/events.jsonl`:
`{"v": 1, "type": ..., "seq": n, "t": <unix seconds>, "run": <run-id>, ...}` with flat fields.
New types and fields may be added without a version bump; readers ignore what they do not know.
`decode()` never raises on content, and `EventFollower` leaves a torn last line alone until it is complete.

Light on purpose (stdlib only): the console imports it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.safe_text import safe_json_dumps

VERSION = 1

EVENTS_FILE = "events.jsonl"
CONTROL_FILE = "control.jsonl"
SUMMARY_FILE = "summary.json"
SPEC_FILE = "spec.toml"
ENGINE_LOG = "engine.log"
PID_FILE = "engine.pid"

#: Bytes in a GiB: every memory and disk figure shown or written in GiB divides by it.
GIB = 1024**3

#: The canonical event types and their fields (docs/architecture.md). Other fields may ride along.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "started": ("spec", "params_total", "params_trainable", "precision", "device", "env", "estimate", "data"),
    "metrics": ("step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "samples_per_s", "mem_allocated_gib",
                "mem_reserved_gib", "mem_peak_gib"),
    "eval": ("step", "val_loss", "perplexity", "samples"),
    "checkpoint": ("step", "path", "bytes"),
    "oom": ("step", "batch_shape", "longest_seq", "mem_at_failure_gib", "message", "action", "post_mortem"),
    "rehearsal": ("estimate_gib", "measured_gib", "ratio", "micro_batch", "grad_accum"),
    "log": ("level", "text"),
    "eta": ("pilot", "eta_s", "eta_low_s", "eta_high_s", "total_steps", "total_tokens", "detail"),
    "finished": ("status", "summary"),
}

#: The status of a run trained elsewhere and imported (`slmtui runs import`): its `finished` event says so.
IMPORTED_STATUS = "imported"
#: How a run can end, as written in a `finished` event.
FINISHED_STATUSES = ("completed", "stopped", "failed", "oom", IMPORTED_STATUS)

#: Control commands the console and CLI append to `control.jsonl`.
STOP_COMMAND, CHECKPOINT_COMMAND, EVAL_COMMAND = "stop", "checkpoint", "eval"
CONTROL_COMMANDS = (STOP_COMMAND, CHECKPOINT_COMMAND, EVAL_COMMAND)

_HEADER = ("v", "type", "seq", "t", "run")


def make_event(type: str, *, run: str, seq: int, t: float | None = None, **fields: Any) -> dict[str, Any]:
    """Build an event dict with the header fields first."""
    event: dict[str, Any] = {"v": VERSION, "type": type, "seq": seq, "t": time.time() if t is None else t}
    event["run"] = run
    event.update(fields)
    return event


def _json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: a diverged loss is written as null, never as a broken line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def encode(event: Mapping[str, Any]) -> str:
    """One event as one line of JSON, newline included."""
    return safe_json_dumps(_json_safe(event), separators=(",", ":"), default=str) + "\n"


def _log_event(text: str, raw: str) -> dict[str, Any]:
    return {"v": VERSION, "type": "log", "seq": -1, "t": 0.0, "run": "", "level": "warning", "text": text, "raw": raw[:500]}


def decode(line: str | bytes) -> dict[str, Any]:
    """Parse one line into an event dict. Never raises on content.

    A line that is not a JSON object, or lacks the header, becomes a `log` event of level `warning`
    saying so (with the first 500 characters of the line in `raw`).
    """
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.strip()
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return _log_event("unreadable event line", text)
    if not isinstance(obj, dict):
        return _log_event("event line is not a JSON object", text)
    event_type = obj.get("type")
    if not isinstance(event_type, str) or not event_type:
        return _log_event("event line has no type", text)
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        obj["seq"] = -1
    t = obj.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool):
        obj["t"] = 0.0
    if not isinstance(obj.get("run"), str):
        obj["run"] = ""
    obj.setdefault("v", VERSION)
    return obj


class EventWriter:
    """Appends events to a run's `events.jsonl`, one line per event written straight to the file, with a
    growing `seq`.

    Opening an existing file continues its numbering (a resumed run keeps one history). A line never glues
    onto a torn one: when the file ends mid-line (a writer killed there, or a full disk that took half a
    line), the next event starts on a fresh line, so the fragment reads as one unreadable line and every
    complete event stays intact. The file only ever grows, so followers never lose their place.
    """

    def __init__(self, path: Path, run: str, fsync: bool = False) -> None:
        self.path = path
        self.run = run
        self._fsync = fsync
        self.seq = last_seq(path) + 1 if path.exists() else 0
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        """Write one event (through `append_line`) and return it; an `OSError` (a full disk) leaves `seq`
        unused and raises."""
        if self._fd is None:
            raise ValueError(f"the event writer of {self.path} is closed")
        event = make_event(type, run=self.run, seq=self.seq, **fields)
        append_line(self._fd, encode(event).encode("utf-8"))
        if self._fsync:
            os.fsync(self._fd)
        self.seq += 1
        return event

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_line(fd: int, line: bytes) -> None:
    """Append one line (its newline included) to the JSONL file open at `fd`, on a line of its own.

    Every appender of a JSONL file goes through here. `fd` is opened `O_RDWR | O_APPEND`: when the file
    ends mid-line (a writer killed there, a full disk that took half a line, stray bytes), a newline goes
    first, so the fragment reads as one unreadable line and this line stays whole. An `OSError` part-way
    leaves a torn line that the next append steps over in the same way.
    """
    data = (b"\n" if _ends_mid_line(fd) else b"") + line
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])


def _ends_mid_line(fd: int) -> bool:
    """Whether a file's last byte is something other than a newline."""
    try:
        size = os.fstat(fd).st_size
        return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
    except OSError:
        return True  # unknown: an extra newline costs an empty line, which readers skip


def last_seq(path: Path) -> int:
    """The highest `seq` in an event file (-1 when it has none), reading only its tail."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return -1
    best = -1
    for line in tail.splitlines():
        if line.strip():
            seq = decode(line).get("seq", -1)
            if isinstance(seq, int):
                best = max(best, seq)
    if best < 0 and size > 65536:  # a giant last line: fall back to a full scan
        best = max((e["seq"] for e in read_events(path)), default=-1)
    return best


@dataclass
class EventFollower:
    """Follows a growing `events.jsonl` from the start (or a byte offset).

    `poll()` returns the events completed since the last call. A torn last line (no newline yet: the
    writer is mid-line or died there) is kept back until it is complete. Knows nothing of any UI.
    """

    path: Path
    offset: int = 0
    _partial: bytes = field(default=b"", repr=False)

    def poll(self, max_bytes: int = 8 << 20) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                if size < self.offset:  # the file was replaced: start over
                    self.offset, self._partial = 0, b""
                fh.seek(self.offset)
                chunk = fh.read(max_bytes)
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when the chunk ended with a newline
        return [decode(line) for line in lines if line.strip()]

    @property
    def complete_offset(self) -> int:
        """The byte offset just past the last complete line read (where a later follower should start)."""
        return self.offset - len(self._partial)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every complete event available now (in chunks), then stop."""
        while True:
            batch = self.poll()
            if not batch:
                return
            yield from batch


def read_events(path: Path) -> list[dict[str, Any]]:
    """All complete events of a file, in order."""
    return list(EventFollower(path))


def append_control(run_dir: Path, command: str, **fields: Any) -> dict[str, Any]:
    """Ask a run's engine to do something (`stop`, `checkpoint`, `eval`) by appending to `control.jsonl`."""
    if command not in CONTROL_COMMANDS:
        raise ValueError(f"unknown control command {command!r}; use one of {', '.join(CONTROL_COMMANDS)}")
    entry = {"command": command, "t": time.time(), **fields}
    fd = os.open(run_dir / CONTROL_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        append_line(fd, (json.dumps(entry) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to an owner-only temp file beside `path`, fsync it and rename it over `path`.

    If writing fails (a full disk), the temp file is removed and `path` keeps its previous content.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
            json.dump(_json_safe(obj), fh, ensure_ascii=False, indent=1, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
