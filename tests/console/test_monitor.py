"""The Monitor screen with synthetic run folders: reattach, live follow, chart, OOM, control keys, pinned notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from console_helpers import of_type, wait_for
from monitor_runs import SUGGESTED, append_metrics, write_run
from textual.message import Message
from textual.pilot import Pilot

from engine.protocol import EventWriter
from screens.monitor import MonitorScreen
from screens.new_run import NewRunScreen
from screens.widgets.dialogs import ConfirmDialog
from screens.widgets.loss_chart import LossChart
from screens.widgets.pin_dialog import PinNoteDialog
from screens.widgets.run_panels import OomBanner, RunStats
from screens.widgets.run_picker import RunPicker
from slmtui import monitor_data
from slmtui.app import SlmtuiApp
from slmtui.store import Store

LIVE = "20261126-080000-live"
DONE = "20261126-070000-done"


async def monitor(pilot: Pilot[None], run_id: str, step: int) -> MonitorScreen:
    """The monitor once `run_id` is shown with its history read up to `step`."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view.run_id == run_id
                   and app.screen.view.loaded and app.screen.view.step == step, what=f"{run_id} at step {step}")
    screen = app.screen
    assert isinstance(screen, MonitorScreen)
    return screen


def control_commands(run_dir: Path) -> list[str]:
    path = run_dir / "control.jsonl"
    return [json.loads(line)["command"] for line in path.read_text().splitlines()] if path.exists() else []


T0 = 1_795_677_000.0  # write_run's first event


def stop_the_clock(monkeypatch: pytest.MonkeyPatch, at: float) -> list[float]:
    """The Monitor's clock, injected (read often); returns the cell to move it."""
    clock = [at]
    monkeypatch.setattr(monitor_data, "now", lambda: clock[0])
    monkeypatch.setattr(MonitorScreen, "CLOCK_SECONDS", 0.05, raising=False)
    return clock


async def test_reattaches_to_the_running_run_then_follows_it_live(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop_the_clock(monkeypatch, T0 + 400 * 0.25)  # the moment of the live run's last event
    write_run(home, DONE, 300, alive=False, status="completed")
    live_dir = write_run(home, LIVE, 400, alive=True)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        screen = await monitor(pilot, LIVE, 400)
        assert screen.selected == LIVE and app.active_run == LIVE and f"run {LIVE}" in app.sub_title
        assert screen.feed.watched() == [LIVE]  # the finished run is not followed until picked
        assert [r.id for r in screen.runs] == [LIVE, DONE]
        view = screen.view
        assert (view.status, view.total_steps, len(view.loss), len(view.val_loss)) == ("running", 1000, 400, 8)
        assert view.eta is not None and view.eta.seconds == (1000 - 400) * 0.25
        chart = screen.query_one(LossChart)
        assert chart.train == view.loss and chart.val == view.val_loss and chart.x_max == 1000
        assert chart.border_title == "loss · steps 1–400"
        stats = str(screen.query_one(RunStats).render())
        assert "step 400/1,000" in stats and "12,010 tok/s" in stats and "ETA 2m30s" in stats
        memory = str(screen.query_one("#monitor-memory").render())
        assert "1.50 alloc · 2.00 reserved · 2.50 peak GiB" in memory

        with EventWriter(live_dir / "events.jsonl", LIVE) as writer:
            for step in range(401, 451):
                append_metrics(writer, step, 1_795_677_000.0)
        await wait_for(pilot, lambda: screen.view.step == 450, what="the new steps")
        assert len(screen.view.loss) == 450 and chart.border_title == "loss · steps 1–450"
        # the run list says the step the figures say, not the summary's (written every 2 s)
        await wait_for(pilot, lambda: screen.runs[0].step == 450, what="the list at the live step")
        assert "running 450/1,000" in str(screen.query_one(RunPicker).get_option_at_index(0).prompt)
        updates = of_type(messages, MonitorScreen.RunUpdated)
        assert updates and all(m.run_id == LIVE for m in updates)


async def test_a_stalled_run_shows_its_eta_running_down_and_the_stall_line(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine stopped by SIGSTOP: no event comes while the clock goes on (injected, not slept through)."""
    clock = stop_the_clock(monkeypatch, T0 + 400 * 0.25)
    write_run(home, LIVE, 400, alive=True)
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await monitor(pilot, LIVE, 400)
        stats = screen.query_one(RunStats)
        await wait_for(pilot, lambda: "ETA 2m30s" in str(stats.render()), what="the ETA at the last event")
        assert "no event for" not in str(stats.render())
        clock[0] += 34
        await wait_for(pilot, lambda: "no event for 34s" in str(stats.render()), what="the stall line")
        assert "ETA 1m56s (1m56s-1m56s)" in str(stats.render()) and screen.view.step == 400


async def test_picking_a_finished_run_loads_its_history(home: Path) -> None:
    write_run(home, DONE, 300, alive=False, status="completed")
    write_run(home, LIVE, 100, alive=True)
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await monitor(pilot, LIVE, 100)
        assert screen.check_action("stop", ()) is True
        await pilot.press("r", "down", "enter")
        screen = await monitor(pilot, DONE, 300)
        assert screen.view.status == "completed" and app.active_run == DONE
        assert screen.query_one(RunPicker).highlighted == 1
        assert screen.check_action("stop", ()) is False and screen.check_action("pin", ()) is True
        assert "Completed at step 300." in str(screen.query_one(RunStats).render())


async def test_log_scale_smoothing_and_generations_keys(home: Path) -> None:
    write_run(home, LIVE, 120, alive=True)
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await monitor(pilot, LIVE, 120)
        chart = screen.query_one(LossChart)
        assert (chart.log_scale, chart.smoothing) == (False, 0.6)
        await pilot.press("l", "m")
        assert (chart.log_scale, chart.smoothing) == (True, 0.9)
        assert "log · smoothing 0.9" in str(chart.border_subtitle)
        assert {"train", "raw", "val"} <= {role for row in chart.rows() for _, role in row}
        await pilot.press("g")
        generations = screen.query_one("#monitor-generations")
        assert generations.display and not chart.display
        assert "Category: shipping" in str(generations.render())
        await pilot.press("g")
        assert chart.display


async def test_an_oom_shows_a_banner_and_opens_its_suggested_spec(home: Path) -> None:
    write_run(home, LIVE, 60, alive=False, status="oom", oom=True)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        screen = await monitor(pilot, LIVE, 60)
        banner = screen.query_one(OomBanner)
        await wait_for(pilot, lambda: banner.display, what="the banner")
        text = str(banner.render())
        assert "Out of memory at step 61" in text and "halve micro_batch to 8 (saves 12.50 GiB)" in text
        assert "79.10 GiB at failure" in text and "Press n" in text
        assert screen.check_action("open_suggested", ()) is True
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen) and app.screen.raw.get("name") == "fixed",
                       what="New run with the suggested spec")
        new_run = app.screen
        assert isinstance(new_run, NewRunScreen)
        assert {key: new_run.raw["train"][key] for key in SUGGESTED["train"]} == SUGGESTED["train"]


async def test_stop_checkpoint_and_eval_keys_append_to_control(home: Path) -> None:
    run_dir = write_run(home, LIVE, 50, alive=True)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        await monitor(pilot, LIVE, 50)
        await pilot.press("c")
        await wait_for(pilot, lambda: control_commands(run_dir) == ["checkpoint"], what="checkpoint")
        await pilot.press("e")
        await wait_for(pilot, lambda: control_commands(run_dir) == ["checkpoint", "eval"], what="eval")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("n")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: control_commands(run_dir) == ["checkpoint", "eval", "stop"], what="stop")
        sent = [(m.run_id, m.command) for m in of_type(messages, MonitorScreen.ControlSent)]
        assert sent == [(LIVE, "checkpoint"), (LIVE, "eval"), (LIVE, "stop")]


async def test_pinning_a_note_writes_the_journal_and_marks_the_chart(home: Path) -> None:
    Store(home).add_entry("earlier idea", kind="aha", run=LIVE, step=20)
    write_run(home, LIVE, 80, alive=True)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        screen = await monitor(pilot, LIVE, 80)
        await wait_for(pilot, lambda: screen.markers == (20,), what="the earlier note's marker")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PinNoteDialog), what="the pin dialog")
        await pilot.press(*"warmup spike gone", "enter")
        await wait_for(pilot, lambda: of_type(messages, MonitorScreen.NotePinned), what="NotePinned")
        assert screen.markers == (20, 80)
        entries = Store(home).entries(kind="aha", run=LIVE)
        assert [(e.text, e.step) for e in entries] == [("earlier idea", 20), ("warmup spike gone", 80)]
        chart = screen.query_one(LossChart)
        assert chart.markers == (20, 80)
        assert sum(text == "┊" for row in chart.rows() for text, role in row if role == "marker") > 0
        await pilot.press("p", "escape")  # cancelled: nothing written
        await wait_for(pilot, lambda: app.screen is screen)
        assert len(Store(home).entries(kind="aha")) == 2


async def test_with_no_runs_it_says_how_to_start_one(home: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.query(RunStats))
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await pilot.pause()
        assert "slmtui demo" in str(screen.query_one(RunStats).render())
        assert screen.check_action("pin", ()) is False and screen.check_action("stop", ()) is False


async def test_layout_at_80x24_keeps_every_panel_on_screen(home: Path) -> None:
    write_run(home, LIVE, 200, alive=True)
    app = SlmtuiApp(home=home, start_screen="Monitor")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await monitor(pilot, LIVE, 200)
        await pilot.pause()
        assert screen.has_class("-narrow")
        for selector in ("#monitor-runs", "#monitor-chart", "#monitor-stats", "#monitor-memory", "#monitor-sparks"):
            region = screen.query_one(selector).region
            assert region.width > 0 and region.height > 0, selector
            assert region.right <= 80 and region.bottom <= 23, selector  # above the footer
        assert screen.query_one("#monitor-chart").region.height >= 6
        assert screen.query_one("#monitor-stats").region.height >= 6
        assert screen.query_one("#monitor-sparks").display  # the sparklines stay at 80 × 24
        assert screen.query_one("#monitor-stats").region.width >= 52  # the longest figures line fits
        chart = screen.query_one(LossChart)
        assert all(sum(len(text) for text, _ in row) == chart.size.width for row in chart.rows())
