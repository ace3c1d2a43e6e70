"""`slmtui demo` for real: the console in tmux over one demo engine run, then a short headless demo.

One HOME is shared (the demo is built once); each test gets what it needs from the `training` fixture, so any
test passes alone and in any order:
1. The console on the training demo run is SIGKILLed; `slmtui demo` again finds the run still training, reuses
   it, and shows its whole history.
2. In a console on the training run: every screen by its key, a note pinned during training, the run stopped by
   keys (and the footer no longer offering stop).
3. `slmtui demo --headless --steps 30 --json` trains to completion and `slmtui runs --json` lists it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tmux_driver import TmuxConsole

from slmtui.runs import list_runs
from slmtui.ui.registry import default_registry
from tests.conftest import Cli

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]

STEP = re.compile(r"step ([\d,]+)/100,000")
HISTORY = re.compile(r"loss · steps 1–([\d,]+)")
#: Text that shows each screen is on display (screens merged later are checked by the screen changing).
SCREEN_MARKS = {"checklist": "Verdict", "journal": "every kind", "monitor": "Pin note", "gpus": "What fits:"}


def _number(pattern: re.Pattern[str], screen: str) -> int:
    match = pattern.search(screen)
    return int(match.group(1).replace(",", "")) if match else -1


@dataclass
class DemoSession:
    """The module's HOME, its CLI, and the console now open on it."""

    home: Path
    cli: Cli
    consoles: list[TmuxConsole] = field(default_factory=list)

    def open(self, *args: str) -> TmuxConsole:
        console = TmuxConsole(self.home, width=110, height=34, args=args)
        self.consoles.append(console)
        return console

    def runs(self) -> list[dict[str, Any]]:
        return self.cli.json("runs", "--json")["runs"]


@pytest.fixture(scope="module")
def session() -> Iterator[DemoSession]:
    home = Path(tempfile.mkdtemp(prefix="slmtui-demo-tmux-"))
    state = DemoSession(home, Cli(home))
    try:
        yield state
    finally:
        for console in state.consoles:
            console.close()
        for info in list_runs(home / "runs"):
            if info.status == "running" and info.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class Training:
    """A console open on the Monitor of a demo run that is training."""

    console: TmuxConsole
    run: dict[str, Any]
    screen: str


def _training_runs(session: DemoSession) -> list[dict[str, Any]]:
    return [r for r in session.runs() if r["status"] == "running" and str(r["id"]).endswith("-demo")]


@pytest.fixture
def training(session: DemoSession) -> Training:
    """A fresh console on a demo run still training: the one an earlier test left, else a new one."""
    for console in session.consoles:
        console.close()  # whatever an earlier test left on screen (a dialog, another screen) goes with it
    reuse = bool(_training_runs(session))
    # The first time builds the demo (dataset and model), then the engine loads and prepares the data.
    console = session.open("demo") if reuse else session.open("demo", "--steps", "100000")
    screen = console.wait_until(lambda s: "running" in s and _number(STEP, s) >= 3, timeout=180,
                                what="the demo training on the Monitor")
    [run] = _training_runs(session)
    assert run["id"] in screen
    return Training(console, run, screen)


def test_a_killed_console_reopens_on_the_run_still_training_with_its_whole_history(
        session: DemoSession, training: Training) -> None:
    first, run = training.console, training.run
    runs_before = len(session.runs())
    pane = first._tmux("display-message", "-p", "-t", first.session, "#{pane_pid}").stdout.strip()
    os.kill(int(pane), signal.SIGKILL)
    first.wait_exit()
    seen = _number(STEP, training.screen)

    assert [r["id"] for r in _training_runs(session)] == [run["id"]]  # the console's death left training alone
    again = session.open("demo")
    screen = again.wait_until(lambda s: _number(HISTORY, s) > seen and "running" in s, timeout=60,
                              what="the reused run with its history since step 1")
    assert f"run {run['id']}" in screen and "already" not in screen
    assert [r["id"] for r in _training_runs(session)] == [run["id"]]  # reused, not a second run
    assert len(session.runs()) == runs_before


def _footer(screen: str) -> str:
    lines = screen.rstrip("\n").splitlines()
    return lines[-1] if lines else ""


def test_every_screen_by_key_then_pin_a_note_and_stop_the_run(session: DemoSession, training: Training) -> None:
    console, run = training.console, training.run
    for entry in default_registry().available():
        before = console.screen()
        console.keys(entry.key)
        mark = SCREEN_MARKS.get(entry.slug)

        def shown(screen: str, mark: str | None = mark, before: str = before) -> bool:
            return mark in screen if mark else screen != before

        console.wait_until(shown, what=f"the {entry.name} screen")
    console.keys("5")
    screen = console.wait_until(lambda s: "Pin note" in s and "running" in s, what="back on the Monitor")
    console.keys("p")
    console.wait_until(lambda s: "Pin an aha note to step" in s, what="the pin dialog")
    console.keys("loss fell under 6 here", literal=True)
    console.keys("Enter")
    console.wait_until(lambda s: "Pinned to step" in s, what="the note pinned")
    entries = session.cli.json("journal", "list", "--kind", "aha", "--run", run["id"], "--json")["entries"]
    [entry] = [e for e in entries if e["text"] == "loss fell under 6 here"]
    assert (entry["kind"], entry["run"]) == ("aha", run["id"])
    assert isinstance(entry["step"], int) and entry["step"] >= _number(STEP, screen)

    console.keys("s")
    console.wait_until(lambda s: "Stop the run" in s, what="the stop confirmation")
    console.keys("y")
    console.wait_until(lambda s: "stopped" in s and "Stopped at step" in s, timeout=60,
                       what="the run stopped on screen")
    # The footer follows the run's status a frame after the stats do (Textual recomposes it after the next
    # refresh), so it is polled too: a footer that never drops `s Stop` still fails here, after the deadline.
    console.wait_until(lambda s: "Stop " not in _footer(s) and "Pin note" in _footer(s),
                       what="the footer no longer offering stop")
    after = {r["id"]: r for r in session.runs()}[run["id"]]
    assert after["status"] == "stopped"
    console.keys("C-q")
    console.wait_exit()


def test_headless_demo_trains_to_completion_and_is_listed(session: DemoSession) -> None:
    for run in _training_runs(session):  # a run another test left training would only slow this one down
        session.cli("stop", run["id"])
    proc = session.cli("demo", "--headless", "--steps", "30", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["step"] == 30 and result["latest"]["loss"] > 0
    listed = {r["id"]: r for r in session.runs()}
    assert listed[result["id"]]["status"] == "completed" and listed[result["id"]]["dir"].startswith(str(session.home))
