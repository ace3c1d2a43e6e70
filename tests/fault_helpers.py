"""Helpers of the reliability tests: tiny specs, waiting on events (polling, never fixed sleeps), engine pids."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from engine.protocol import read_events
from tests.train_helpers import instruction_rows, write_jsonl


def write_spec(folder: Path, model: str | Path, *, name: str = "fault", max_steps: int = 100_000,
               save_every: int = 0, extra: str = "") -> Path:
    """A tiny LoRA spec on 40 synthetic rows, CPU, micro-batch 2; `extra` is appended TOML."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "rows.jsonl", instruction_rows(40))
    spec = folder / f"{name}.toml"
    spec.write_text(
        f'name = "{name}"\n[model]\nname = "{model}"\n[data]\npath = "rows.jsonl"\n'
        "val_fraction = 0.1\ntest_fraction = 0.1\n[method]\nkind = \"lora\"\n"
        f"[train]\ndevice = \"cpu\"\nmicro_batch = 2\nmax_steps = {max_steps}\neval_every = 0\n"
        f"save_every = {save_every}\neval_samples = 1\nlr = 1e-3\n{extra}"
    )
    return spec


def events_of(run_dir: Path) -> list[dict[str, Any]]:
    return read_events(run_dir / "events.jsonl")


def wait_event(run_dir: Path, predicate: Callable[[dict[str, Any]], bool], timeout: float = 120,
               after: int = -1) -> dict[str, Any]:
    """The first event with `seq > after` that matches; fails with the engine.log tail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events_of(run_dir):
            if event.get("seq", -1) > after and predicate(event):
                return event
        time.sleep(0.1)  # the poll period of the events file
    log = (run_dir / "engine.log").read_text(errors="replace") if (run_dir / "engine.log").exists() else ""
    raise AssertionError(f"no matching event within {timeout}s; engine.log tail: {log[-2000:]}")


def engine_pid(run_dir: Path) -> int:
    return int(json.loads((run_dir / "engine.pid").read_text())["pid"])


def kill_quietly(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def wait_gone(pid: int, timeout: float = 30) -> None:
    """Wait until process `pid` has exited (a zombie of ours is reaped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still alive after {timeout}s")
