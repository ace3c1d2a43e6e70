"""Two consoles on the same run: both follow it live, either can stop it, and both see it end."""

from __future__ import annotations

import json
from pathlib import Path

from console_helpers import wait_for
from monitor_runs import append_metrics, write_run

from engine.protocol import EventWriter
from screens.monitor import MonitorScreen
from screens.widgets.dialogs import ConfirmDialog
from slmtui.app import SlmtuiApp

LIVE = "20261126-083500-shared"


def _showing(app: SlmtuiApp, step: int, status: str = "running") -> bool:
    screen = app.screen
    return (isinstance(screen, MonitorScreen) and screen.view.run_id == LIVE and screen.view.loaded
            and screen.view.step == step and screen.view.status == status)


async def test_two_consoles_follow_and_stop_the_same_run(home: Path) -> None:
    run_dir = write_run(home, LIVE, 120, alive=True)
    first, second = SlmtuiApp(home=home, start_screen="Monitor"), SlmtuiApp(home=home, start_screen="Monitor")
    async with first.run_test(size=(120, 36)) as one, second.run_test(size=(120, 36)) as two:
        await wait_for(one, lambda: _showing(first, 120), what="the run in the first console")
        await wait_for(two, lambda: _showing(second, 120), what="the run in the second console")

        with EventWriter(run_dir / "events.jsonl", LIVE) as writer:
            for step in range(121, 161):
                append_metrics(writer, step, 1_795_677_000.0)
        await wait_for(one, lambda: _showing(first, 160), what="new steps in the first console")
        await wait_for(two, lambda: _showing(second, 160), what="new steps in the second console")

        await two.press("s")  # the second console asks for the stop
        await wait_for(two, lambda: isinstance(second.screen, ConfirmDialog), what="the confirmation")
        await two.press("y")
        control = run_dir / "control.jsonl"
        await wait_for(two, lambda: control.exists() and "stop" in control.read_text(), what="the stop request")
        assert [json.loads(line)["command"] for line in control.read_text().splitlines()] == ["stop"]

        with EventWriter(run_dir / "events.jsonl", LIVE) as writer:  # the engine obeys, as it would
            append_metrics(writer, 161, 1_795_677_000.0)
            writer.emit("finished", status="stopped", summary={"message": "Stopped at step 161."})
        await wait_for(one, lambda: _showing(first, 161, "stopped"), what="the stop in the first console")
        await wait_for(two, lambda: _showing(second, 161, "stopped"), what="the stop in the second console")
