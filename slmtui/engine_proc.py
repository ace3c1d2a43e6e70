"""Running the engine's subcommands from a light `slmtui` process.

The engine always runs as `python -m engine NAME ...` with this interpreter, and with this project's root
first on `PYTHONPATH`, so the engine that runs is the one beside the `slmtui` that started it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import engine
from engine.paths import HOME_ENV

PROJECT_ROOT = Path(engine.__file__).resolve().parent.parent


def engine_command(name: str, *args: str) -> list[str]:
    """The argv that runs `python -m engine NAME ARGS...`."""
    return [sys.executable, "-m", "engine", name, *args]


def engine_env(home: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for an engine process: ours, plus this project on PYTHONPATH and HOME pinned."""
    env = dict(os.environ)
    parts = [str(PROJECT_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # nothing leaves the machine but model and data fetches
    if home is not None:
        env[HOME_ENV] = str(home)
    if extra:
        env.update(extra)
    return env


class EngineError(Exception):
    """An engine subcommand failed; the text is its last line on stderr (one sentence for user errors)."""


class EngineCancelled(EngineError):
    """The caller gave up on an engine subcommand (see `run_engine_json`'s `cancelled`)."""


#: How often `run_engine_json` checks whether its caller has given up (seconds).
CANCEL_POLL_S = 0.2


def run_engine_json(name: str, *args: str, home: Path | None = None, timeout: float | None = None,
                    cancelled: Callable[[], bool] | None = None) -> Any:
    """Run an engine subcommand that prints one JSON object; return it, or raise `EngineError`.

    `cancelled` is polled a few times a second; when it returns True the subprocess is killed and
    `EngineCancelled` raised (a console worker whose screen closed must not wait for a long data check).
    """
    proc = subprocess.Popen(
        engine_command(name, *args),
        env=engine_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=CANCEL_POLL_S)
            break
        except subprocess.TimeoutExpired:
            expired = deadline is not None and time.monotonic() > deadline
            if expired or (cancelled is not None and cancelled()):
                proc.kill()
                proc.communicate()
                if expired:
                    raise subprocess.TimeoutExpired(proc.args, timeout or 0) from None
                raise EngineCancelled(f"engine {name} was cancelled") from None
    if proc.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        raise EngineError(lines[-1] if lines else f"engine {name} exited with status {proc.returncode}")
    try:
        return json.loads(stdout)
    except ValueError as exc:
        raise EngineError(f"engine {name} printed no JSON: {stdout[-200:]!r}") from exc


def spawn_detached(argv: Sequence[str], log_path: Path, home: Path | None = None, cwd: Path | None = None,
                   extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a process in its own session (it survives the terminal closing), output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        return subprocess.Popen(
            list(argv),
            env=engine_env(home, extra_env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
