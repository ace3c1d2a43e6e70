"""The Data screen: options from the saved settings, the engine's check in a worker, the report's parts, saving
the settings for the next run; an SVG snapshot and the layout at 80 × 24."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import held, of_type, wait_for
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent

from screens.data import DataScreen
from screens.widgets.data_report_view import BarChart, DataReportView
from slmtui.app import SlmtuiApp
from slmtui.data_report import SETTINGS_KEY, recent_paths
from slmtui.data_service import DataRequest, run_data_check
from slmtui.store import Store

FIXED = Path(tempfile.gettempdir()) / "slmtui-data-screen"


def write_dataset(path: Path) -> Path:
    """18 good rows (some with e-mail addresses and phone numbers), a malformed line and a row missing a column."""
    rows = []
    for i in range(18):
        contact = f" Write to me at jane.roe{i}@example.com." if i % 3 == 0 else (
            f" Call me on +44 20 7946 09{i:02d}." if i % 3 == 1 else "")
        rows.append(json.dumps({"prompt": f"My order {1000 + i} is late.{contact}",
                                "completion": "Sorry, we are checking it with the carrier.",
                                "label": "shipping" if i % 2 else "billing"}))
    rows.insert(4, "{this is not json")
    rows.insert(9, json.dumps({"prompt": "no answer here", "label": "billing"}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fixed_report(tiny_model_dir: Path) -> Iterator[dict[str, Any]]:
    """The engine's real report on the small dataset, from fixed paths (the snapshot shows them)."""
    with held(FIXED):
        data = write_dataset(FIXED / "tickets.jsonl")
        tokenizer = FIXED / "tokenizer"
        shutil.copytree(tiny_model_dir, tokenizer)
        yield run_data_check(DataRequest(str(data), str(tokenizer), max_length=96), home=FIXED / "home")


def settle_on_data(pilot: Pilot[None]) -> Any:
    app = pilot.app
    return wait_for(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.is_mounted
                    and "ctrl+r" in str(app.screen.query_one("#data-status", Static).render()), what="the settings")


async def test_check_a_dataset_with_bad_rows_and_personal_data(home: Path, tiny_model_dir: Path) -> None:
    data = write_dataset(home / "mine.jsonl")
    Store(home).set_setting(SETTINGS_KEY, {"path": str(data), "tokenizer": str(tiny_model_dir), "max_length": 24})
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Data")
    async with app.run_test(size=(110, 34), message_hook=messages.append) as pilot:
        await settle_on_data(pilot)
        screen = app.screen
        assert isinstance(screen, DataScreen)
        assert screen.query_one("#data-path", Input).value == str(data)
        assert screen.query_one("#data-max-length", Input).value == "24"
        await pilot.press("ctrl+r")
        assert screen.checking and "Checking" in str(screen.query_one("#data-status", Static).render())
        await wait_for(pilot, lambda: of_type(messages, DataScreen.CheckFinished), timeout=120, what="the check")
        assert not screen.checking
        status = str(screen.query_one("#data-status", Static).render())
        assert "Checked 20 rows" in status and "2 invalid" in status
        view = screen.query_one(DataReportView)
        pii = {b.label: b.count for b in view.query_one("#report-pii", BarChart).bars}
        assert pii.get("EMAIL") == 6 and pii.get("PHONE", 0) >= 5
        labels = {b.label: b.count for b in view.query_one("#report-labels", BarChart).bars}
        assert labels == {"billing": 9, "shipping": 9}
        assert sum(b.count for b in view.query_one("#report-lengths", BarChart).bars) == 18
        table = view.query_one("#report-invalid", DataTable)
        invalid = [(str(table.get_cell_at((r, 0))), str(table.get_cell_at((r, 1)))) for r in range(table.row_count)]
        assert [line for line, _ in invalid] == ["5", "10"] and all(reason for _, reason in invalid)
        preview = str(view.query_one("#report-preview", Static).render())
        assert "<EMAIL" in preview and "jane.roe" not in preview and "Trained (in the loss)" in preview
        await pilot.press("ctrl+n")
        assert view.query_one(TabbedContent).active == "lengths"
        # change the limit, save for the next run
        screen.query_one("#data-max-length", Input).value = "48"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: of_type(messages, DataScreen.SettingsSaved), what="the save")
    saved = Store(home).setting(SETTINGS_KEY)
    assert saved == {"path": str(data), "map": {}, "max_length": 48, "overlength": "truncate",
                     "tokenizer": str(tiny_model_dir)}
    assert recent_paths(Store(home)) == [str(data)]


async def test_bad_options_say_what_to_change_without_running(home: Path) -> None:
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Data")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await settle_on_data(pilot)
        screen = app.screen
        assert screen.query_one("#data-path", Input).value.endswith("tickets.jsonl")  # the demo dataset
        screen.query_one("#data-map", Input).value = "prompt"
        await pilot.press("ctrl+r")
        status = screen.query_one("#data-status", Static)
        assert "FIELD=COLUMN" in str(status.render()) and status.has_class("-error")
        screen.query_one("#data-map", Input).value = ""
        screen.query_one("#data-max-length", Input).value = "0"
        await pilot.press("ctrl+s")
        assert "at least 1 token" in str(status.render())
        assert isinstance(screen, DataScreen) and not screen.checking
        assert not of_type(messages, DataScreen.SettingsSaved)
    assert Store(home).setting(SETTINGS_KEY) is None


@pytest.fixture
def canned(monkeypatch: pytest.MonkeyPatch, fixed_report: dict[str, Any]) -> dict[str, Any]:
    """The screen's check answers with the fixed report at once (the engine's own path is tested above)."""
    monkeypatch.setattr("screens.data.run_data_check", lambda options, home=None: fixed_report)
    return fixed_report


async def _checked(pilot: Pilot[None]) -> None:
    await settle_on_data(pilot)
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, DataScreen) and pilot.app.screen.report is not None,
                   what="the report")
    await pilot.pause()


async def test_layout_at_80x24(home: Path, canned: dict[str, Any]) -> None:
    app = SlmtuiApp(home=home, start_screen="Data")
    async with app.run_test(size=(80, 24)) as pilot:
        await _checked(pilot)
        screen = app.screen
        footer = screen.query_one(Footer)
        assert footer.region.y == 23 and footer.region.width == 80
        for name in ("#data-path", "#data-tokenizer", "#data-max-length", "#data-overlength", "#data-map"):
            region = screen.query_one(name).region
            assert region.width >= 8 and region.right <= 80, name
        report = screen.query_one("#report-tabs").region
        assert report.height >= 7 and report.bottom <= footer.region.y
        summary = screen.query_one("#report-summary").region
        assert summary.height >= 3 and summary.width >= 30


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_data_screen_snapshot(snap_compare: Any, canned: dict[str, Any], size: tuple[int, int]) -> None:
    home = FIXED / "snapshot-home"
    shutil.rmtree(home, ignore_errors=True)
    Store(home).set_setting(SETTINGS_KEY, {"path": canned["source"]["path"], "tokenizer": str(FIXED / "tokenizer"),
                                           "max_length": 96})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        time.tzset()
        # the status line says how long the check took: pin the clock it reads
        patch.setattr("screens.data._now", lambda: 1000.0)
        assert snap_compare(SlmtuiApp(home=home, start_screen="Data"), terminal_size=size, run_before=_checked)
    time.tzset()
