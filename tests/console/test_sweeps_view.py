"""The journal's Sweeps view, by keys: the trials live, the best, the chart, importance, open a trial's run,
promote the best to New run; and how it looks (SVG snapshots at 80×24 and 120×36)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from console_helpers import fixed_home, wait_for
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from screens.journal import JournalScreen
from screens.new_run import NewRunScreen
from screens.widgets.sweeps_panel import SweepsPanel
from screens.widgets.trial_chart import TrialChart
from slmtui.app import SlmtuiApp
from slmtui.sweep import trial_run_name
from slmtui.sweeps import open_study, write_state
from tests.sweep_fixtures import SWEEP_ID, make_sweep


async def open_sweeps(pilot: Pilot[None], rows: int) -> tuple[JournalScreen, SweepsPanel, DataTable[Any]]:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen) and bool(app.screen.query("#journal-table")),
                   what="the journal")
    screen = app.screen
    assert isinstance(screen, JournalScreen)
    await pilot.press("w")
    await wait_for(pilot, lambda: screen.sweeps_panel is not None, what="the sweeps view")
    panel = screen.query_one(SweepsPanel)
    table: DataTable[Any] = panel.query_one("#sweep-trials", DataTable)
    await wait_for(pilot, lambda: table.row_count == rows, what=f"{rows} trials")
    assert screen.view == "sweeps" and table.has_focus
    return screen, panel, table


def text_of(panel: SweepsPanel, selector: str) -> str:
    return str(panel.query_one(selector, Static).render())


async def test_trials_best_chart_and_importance_follow_the_study(home: Path) -> None:
    sweep_dir = make_sweep(home)
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(120, 36)) as pilot:
        screen, panel, table = await open_sweeps(pilot, 6)
        summary = text_of(panel, "#sweeps-summary")
        assert "triage · interrupted · 6/8 trials: 3 complete, 2 pruned, 1 running" in summary
        assert "Best val_loss 1.2400 (trial 3): lr=0.0005 rank=16 method=lora" in summary
        assert [str(c) for c in table.get_row("2")[:4]] == ["2", "pruned", "2.4100", "10"]
        await wait_for(pilot, lambda: "lr" in text_of(panel, "#sweep-importance")
                       and "Importance (PED-ANOVA)" in text_of(panel, "#sweep-importance"), what="importance")
        chart = panel.query_one(TrialChart)
        assert chart.axis is not None and chart.axis.name == "lr" and chart.axis.log and len(chart.axis.points) == 5
        await pilot.press("g", "g")
        assert chart.axis.name == "method" and chart.axis.ticks == ("lora", "dora")
        # the driver (here: this test) tells the study of a new best: the view shows it within a poll
        study = open_study(sweep_dir)
        running = study.get_trials(deepcopy=False)[5]
        study.tell(running.number, 1.05)
        await wait_for(pilot, lambda: "Best val_loss 1.0500 (trial 5)" in text_of(panel, "#sweeps-summary"),
                       what="the new best")
        assert str(table.get_row("5")[1]) == "complete"
        await wait_for(pilot, lambda: "4 complete" in text_of(panel, "#sweeps-summary"))
        await pilot.press("w")
        assert screen.view == "entries" and screen.query_one("#journal-table").has_focus


async def test_enter_opens_the_trials_run_and_p_promotes_the_best_on_the_full_data(home: Path) -> None:
    make_sweep(home)
    make_sweep(home, "20261202-090000-older", with_runs=False)  # newer id: shown first
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(80, 24)) as pilot:
        screen, panel, _table = await open_sweeps(pilot, 6)
        assert panel.shown is not None and panel.shown.id == "20261202-090000-older"
        await pilot.press("s")
        await wait_for(pilot, lambda: panel.shown is not None and panel.shown.id == SWEEP_ID)
        assert "[2/2] triage" in text_of(panel, "#sweeps-summary")
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: app.current_screen_name == "monitor", what="the Monitor")
        assert app.active_run == f"20261201-090200-{trial_run_name(SWEEP_ID, 'triage', 2)}"
        await pilot.press("6")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.view == "sweeps"
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), what="New run")
        new_run = app.screen
        assert isinstance(new_run, NewRunScreen)
        await wait_for(pilot, lambda: new_run.spec is not None, what="the promoted spec")
        assert new_run.spec is not None
        spec = new_run.spec
        assert (spec.name, spec.train.lr, spec.method.rank, spec.method.kind, spec.train.max_steps) == (
            "triage-best", 5e-4, 16, "lora", 0)


async def test_a_driver_that_dies_shows_as_interrupted_though_it_wrote_nothing(home: Path) -> None:
    sweep_dir = make_sweep(home)
    stand_in = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        write_state(sweep_dir, pid=stand_in.pid, create_time=psutil.Process(stand_in.pid).create_time())
        app = SlmtuiApp(home=home, start_screen="Journal")
        async with app.run_test(size=(120, 36)) as pilot:
            _, panel, _table = await open_sweeps(pilot, 6)
            assert "triage · running" in text_of(panel, "#sweeps-summary")
            stand_in.kill()  # kill -9: no state written
            stand_in.wait()
            await wait_for(pilot, lambda: "triage · interrupted" in text_of(panel, "#sweeps-summary"),
                           what="the sweep shown interrupted")
    finally:
        if stand_in.poll() is None:
            stand_in.kill()
            stand_in.wait()


@pytest.fixture
def snapshot_home() -> Iterator[Path]:
    """A HOME at a fixed path (the header shows it) holding one sweep."""
    with fixed_home("slmtui-sweeps-snapshot", utc=True) as path:
        make_sweep(path)
        yield path


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_sweeps_view_snapshot(snap_compare: Any, snapshot_home: Path, size: tuple[int, int]) -> None:
    async def shown(pilot: Pilot[None]) -> None:
        _, panel, _ = await open_sweeps(pilot, 6)
        await wait_for(pilot, lambda: "PED-ANOVA" in text_of(panel, "#sweep-importance"), what="importance")
        await pilot.pause()

    app = SlmtuiApp(home=snapshot_home, start_screen="Journal")
    assert snap_compare(app, terminal_size=size, run_before=shown)

