"""How the journal's Runs view and the loss overlay look at 120 × 32 (SVG snapshots; `pytest --snapshot-update`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import fixed_home, wait_for
from textual.pilot import Pilot

from screens.journal import JournalScreen
from screens.widgets.line_chart import LineChart
from screens.widgets.run_dialogs import RunOverlayScreen
from screens.widgets.run_table import RunTable
from slmtui.app import SlmtuiApp
from slmtui.store import Store
from tests.run_fixtures import ENV, make_run


@pytest.fixture
def snapshot_home() -> Iterator[Path]:
    """A HOME at a fixed path (the header shows it) and UTC, with three runs and a note about one."""
    with fixed_home("slmtui-runs-snapshot", utc=True) as path:
        runs = path / "runs"
        make_run(runs, "20261126-070000-base", rank=8, losses=[3.0 - 0.04 * i + 0.1 * (i % 3) for i in range(60)],
                 tokens_per_s=1200.0)
        make_run(runs, "20261126-071000-rank64", rank=64, lr=5e-4, seconds=3725,
                 losses=[3.1 - 0.05 * i + 0.08 * (i % 4) for i in range(50)], tokens_per_s=800.0)
        make_run(runs, "20261126-072000-newenv", env={**ENV, "torch": "2.14.0"}, fingerprint="beadfeed00112233")
        Store(path).add_entries([{"kind": "aha", "text": "rank 64 learns faster early on", "run": "20261126-071000-rank64",
                                  "step": 12, "created": 1_795_677_300, "source": "snapshot:0"}])
        yield path


async def _runs_shown(pilot: Pilot[None]) -> RunTable:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen) and bool(app.screen.query("#journal-table")))
    await pilot.press("r")
    await wait_for(pilot, lambda: bool(app.screen.query(RunTable)))
    table = app.screen.query_one(RunTable)
    await wait_for(pilot, lambda: table.row_count == 3, what="the runs")
    await pilot.press("down")
    await wait_for(pilot, lambda: "aha" in (text := str(app.screen.query_one("#run-entries").render()))
                   and "Data for" in text, what="the entries, the derived one too")
    return table


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_runs_view_snapshot(snap_compare: Any, snapshot_home: Path, size: tuple[int, int]) -> None:
    async def shown(pilot: Pilot[None]) -> None:
        await _runs_shown(pilot)
        await pilot.press("space")
        await pilot.pause()

    app = SlmtuiApp(home=snapshot_home, start_screen="Journal")
    assert snap_compare(app, terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_overlay_snapshot(snap_compare: Any, snapshot_home: Path, size: tuple[int, int]) -> None:
    async def shown(pilot: Pilot[None]) -> None:
        await _runs_shown(pilot)
        await pilot.press("space", "down", "space", "o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunOverlayScreen))
        chart = pilot.app.screen.query_one(LineChart)
        await wait_for(pilot, lambda: len(chart.series) == 2)
        await pilot.pause()

    app = SlmtuiApp(home=snapshot_home, start_screen="Journal")
    assert snap_compare(app, terminal_size=size, run_before=shown)
