"""Driving the real console in a private tmux server: start, send keys, poll the screen until a condition."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class TmuxConsole:
    """`python -m slmtui` in a detached tmux session on its own socket (never the user's tmux server)."""

    def __init__(self, home: Path, width: int = 100, height: int = 30, args: tuple[str, ...] = ()) -> None:
        self.socket = f"slmtui-test-{os.getpid()}-{time.monotonic_ns()}"
        self.session = "console"
        env = {"SLMTUI_HOME": str(home), "PYTHONPATH": str(REPO), "TERM": "xterm-256color"}
        command = " ".join(
            [f"{key}={shlex.quote(value)}" for key, value in env.items()]
            + [shlex.quote(sys.executable), "-m", "slmtui", *map(shlex.quote, args)]
        )
        self._tmux("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
                   f"cd {shlex.quote(str(REPO))} && exec env -u COLUMNS -u LINES {command}")

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check)

    def screen(self) -> str:
        """The visible screen as text ("" once the console has exited)."""
        proc = self._tmux("capture-pane", "-p", "-t", self.session, check=False)
        return proc.stdout if proc.returncode == 0 else ""

    def keys(self, *keys: str, literal: bool = False) -> None:
        """Send keys (tmux names such as `C-s`, `Enter`), or text as typed with `literal=True`."""
        self._tmux("send-keys", "-t", self.session, *(("-l",) if literal else ()), *keys)

    def alive(self) -> bool:
        """Whether the console is still running."""
        return self._tmux("has-session", "-t", self.session, check=False).returncode == 0

    def wait_until(self, condition: Callable[[str], bool], timeout: float = 30.0, what: str = "") -> str:
        """Poll the screen until `condition(screen)` holds; returns that screen, fails after `timeout`."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.05)  # the poll period of capture-pane, not a wait for the app
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")

    def wait_exit(self, timeout: float = 10.0) -> None:
        """Wait for the console to exit."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                raise AssertionError(f"the console did not exit; the screen was:\n{self.screen()}")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop this test's tmux server (and the console with it)."""
        self._tmux("kill-server", check=False)
