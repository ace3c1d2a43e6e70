"""The Sweeps view in a real terminal (tmux, 80×24): the trials and the best, the chart, a trial finishing while
on screen, and the best promoted to New run."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tmux_driver import TmuxConsole

from slmtui.sweeps import open_study
from tests.sweep_fixtures import SWEEP_ID, make_sweep

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


@pytest.fixture
def console(home: Path) -> Iterator[TmuxConsole]:
    make_sweep(home)
    term = TmuxConsole(home, width=80, height=24)
    try:
        yield term
    finally:
        term.close()


def test_the_sweeps_view_by_keys_in_a_real_terminal(console: TmuxConsole, home: Path) -> None:
    console.wait_until(lambda s: "6 Journal" in s, what="the console on screen")
    console.keys("6")
    console.wait_until(lambda s: "filter by text" in s, what="the journal")
    console.keys("w")
    screen = console.wait_until(lambda s: "Best val_loss 1.2400 (trial 3)" in s and "Importance" in s,
                                what="the sweep, its best and importance")
    assert "triage · interrupted · 6/8 trials" in screen and "pruned" in screen
    assert "   2.5 ┤" in screen and "1.9e-05" in screen and "val_loss by lr (log)" in screen  # the chart
    assert "Open run" in screen and "Promote" in screen  # the view's keys in the footer
    console.keys("g")
    screen = console.wait_until(lambda s: "val_loss by rank" in s, what="the chart against rank")
    assert re.search(r"^ +8 +16 *$", screen, re.M), "each rank named under its column"
    study = open_study(home / "sweeps" / SWEEP_ID)
    study.tell(5, 1.05)  # the running trial completes, the new best
    console.wait_until(lambda s: "Best val_loss 1.0500 (trial 5)" in s, what="the new best, live")
    console.keys("p")
    console.wait_until(lambda s: "triage-best" in s, what="New run with the best trial's settings")
    console.keys("C-q")
    console.wait_exit()
