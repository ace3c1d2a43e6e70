"""How the Monitor looks at 110 × 34 with a finished run, an eval and a pinned note (update with
`pytest --snapshot-update`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import fixed_home, wait_for
from monitor_runs import write_run
from textual.pilot import Pilot

from screens.monitor import MonitorScreen
from slmtui.app import SlmtuiApp
from slmtui.store import Store

RUN = "20261126-074500-triage"


@pytest.fixture
def snapshot_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A HOME at a fixed path (the header shows it), no NVML reading (the picture must not depend on the machine)."""
    monkeypatch.setattr(MonitorScreen, "GPU_POLL", False)
    with fixed_home("slmtui-monitor-snapshot") as path:
        write_run(path, RUN, 600, alive=False, total=600, status="completed", evals=100)
        Store(path).add_entry("warmup of 20 steps removed the spike", kind="aha", run=RUN, step=240)
        yield path


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_monitor_snapshot(snap_compare: Any, snapshot_home: Path, size: tuple[int, int]) -> None:
    async def loaded(pilot: Pilot[None]) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view.loaded
                       and app.screen.view.step == 600 and app.screen.markers == (240,), what="the run")
        await pilot.pause()

    assert snap_compare(SlmtuiApp(home=snapshot_home, start_screen="Monitor"), terminal_size=size,
                        run_before=loaded)
