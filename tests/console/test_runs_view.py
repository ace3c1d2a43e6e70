"""The journal's Runs view, by keys: the table, marks, diff, overlay, tags, archive, delete and export."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_helpers import of_type, wait_for
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Footer, Input, Static

from screens.journal import JournalScreen
from screens.widgets.dialogs import ConfirmDialog, PathDialog
from screens.widgets.line_chart import LineChart
from screens.widgets.run_dialogs import RunDiffScreen, RunOverlayScreen
from screens.widgets.run_table import COLUMNS, RunTable, columns_for
from screens.widgets.runs_panel import RunsPanel
from slmtui.app import SlmtuiApp
from slmtui.store import Store
from tests.run_fixtures import ENV, make_run

A, B, C = "20261126-070000-base", "20261126-071000-rank64", "20261126-072000-newenv"


def seed_runs(home: Path) -> None:
    runs = home / "runs"
    make_run(runs, A, rank=8, losses=[3.0 - 0.05 * i for i in range(40)], payload_bytes=40_000, tokens_per_s=900.0)
    make_run(runs, B, rank=64, lr=5e-4, losses=[3.2 - 0.06 * i for i in range(30)], tokens_per_s=600.0)
    make_run(runs, C, env={**ENV, "torch": "2.14.0", "gpu": "NVIDIA H100"})


async def open_runs(pilot: Pilot[None], count: int) -> tuple[JournalScreen, RunsPanel, RunTable]:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen) and app.screen.is_mounted
                   and bool(app.screen.query("#journal-table")), what="the journal")
    screen = app.screen
    assert isinstance(screen, JournalScreen)
    await pilot.press("r")
    await wait_for(pilot, lambda: screen.runs_panel is not None, what="the runs view")
    panel, table = screen.query_one(RunsPanel), screen.query_one(RunTable)
    await wait_for(pilot, lambda: table.row_count == count, what=f"{count} runs")
    assert screen.view == "runs" and table.has_focus
    return screen, panel, table


def cell(table: RunTable, run_id: str, column: str) -> str:
    return str(table.get_cell(run_id, column))


async def test_the_table_shows_settings_metrics_and_the_other_environment(home: Path) -> None:
    seed_runs(home)
    Store(home).add_entry("r=64 learns faster", kind="aha", run=B, step=12)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(140, 30), message_hook=messages.append) as pilot:
        screen, panel, table = await open_runs(pilot, 3)
        assert [r.id for r in table.runs] == [C, B, A]
        assert (cell(table, B, "rank"), cell(table, B, "lr"), cell(table, B, "batch")) == ("64", "5e-04", "4×2")
        assert (cell(table, A, "final"), cell(table, A, "time"), cell(table, A, "data fp")) == (
            "1.0500", "2m05s", "f00dface")
        assert [cell(table, r, "env") for r in (C, B, A)] == ["ok", "≠", "≠"]
        assert "2 from another environment" in str(panel.query_one("#runs-count", Static).render())
        await pilot.press("down")
        await wait_for(pilot, lambda: panel.current is not None and panel.current.id == B)
        await wait_for(pilot, lambda: "Data for" in str(panel.query_one("#run-entries", Static).render()),
                       what="the derived data entry beside the run")
        beside = str(panel.query_one("#run-entries", Static).render())
        assert "2 journal entries about this run" in beside and "r=64 learns faster" in beside and "Data for" in beside
        assert "not comparable" in str(panel.query_one("#run-facts", Static).render())
        # a run started elsewhere shows up while the runs are on screen (the folders are polled)
        make_run(home / "runs", "20261126-073000-later", rank=4)
        await wait_for(pilot, lambda: table.row_count == 4, what="the new run")
        assert table.runs[0].id == "20261126-073000-later" and cell(table, "20261126-073000-later", "rank") == "4"
        # the reconcile made the runs' data entries, and the journal's entries view shows them
        await wait_for(pilot, lambda: sum(e.kind == "data" for e in screen.index.entries) == 4)
        await pilot.press("r")
        assert screen.view == "entries" and screen.query_one("#journal-table").has_focus
        assert len(of_type(messages, RunsPanel.RunsLoaded)) == 2  # at start and after the new run, no more


async def test_diff_and_overlay_of_two_marked_runs(home: Path) -> None:
    seed_runs(home)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(120, 34), message_hook=messages.append) as pilot:
        _, _panel, table = await open_runs(pilot, 3)
        await pilot.press("c")  # nothing marked: a warning, no dialog
        await pilot.pause()
        assert not isinstance(app.screen, RunDiffScreen)
        await pilot.press("down", "space", "down", "space")
        assert table.marked == (B, A) and cell(table, A, "mark") == "●"
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDiffScreen), what="the diff")
        diff = app.screen
        assert isinstance(diff, RunDiffScreen) and (diff.a, diff.b) == (A, B)
        changed = {c.key: (c.a, c.b) for c in diff.changes}
        assert changed["method.rank"] == (8, 64) and changed["train.lr"] == (2e-4, 5e-4)
        assert not diff.query("#diff-env")  # same environment
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunDiffScreen))
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunOverlayScreen), what="the overlay")
        chart = app.screen.query_one(LineChart)
        await wait_for(pilot, lambda: len(chart.series) == 2, what="the curves drawn")
        assert [(s.name, len(s.points)) for s in chart.series] == [(A, 40), (B, 30)]
        assert "⠀" not in str(chart.render()) and any(0x2800 < ord(ch) < 0x2900 for ch in str(chart.render()))
        system = app.screen.query_one("#overlay-system", LineChart)
        assert [(s.name, len(s.points), max(v for _, v in s.points)) for s in system.series] == [(A, 40, 900.0),
                                                                                              (B, 30, 600.0)]
        await pilot.press("s")  # beside the losses: tokens/s, then memory (a CPU run's: the engine's RAM)
        assert max(v for _, v in system.series[0].points) == pytest.approx(1.9)
        assert "memory, GiB (process RAM) by step" in str(app.screen.query_one("#overlay-system-title", Static).render())
        await pilot.press("v", "l")
        assert [len(s.points) for s in chart.series] == [2, 2] and chart.log_y
        await pilot.press("escape")
        # a third mark drops the oldest; a diff with another environment says so
        await pilot.press("up", "up", "space")
        assert table.marked == (A, C)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDiffScreen))
        assert "torch 2.13.0 ≠ 2.14.0" in str(app.screen.query_one("#diff-env", Static).render())


async def test_an_imported_run_shows_as_imported_and_overlays_a_run_trained_here(home: Path, tmp_path: Path) -> None:
    from engine.commands.import_run import read_external
    from engine.external.run_folder import write_imported_run
    from tests.external_logs import write_trainer_state

    imported = "20261126-080000-elsewhere"
    make_run(home / "runs", A, rank=8, losses=[3.0 - 0.05 * i for i in range(40)])
    write_imported_run(read_external(write_trainer_state(tmp_path)), home / "runs" / imported, "elsewhere")
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(120, 34)) as pilot:
        _, panel, table = await open_runs(pilot, 2)
        assert [r.id for r in table.runs] == [imported, A]
        assert (cell(table, imported, "status"), cell(table, imported, "final")) == ("imported", "2.0747")
        await wait_for(pilot, lambda: panel.current is not None and panel.current.id == imported)
        facts = str(panel.query_one("#run-facts", Static).render())
        assert "(imported)" in facts and "trained elsewhere: trainer_state at " in facts
        await wait_for(pilot, lambda: "Imported run, trained elsewhere" in str(
            panel.query_one("#run-entries", Static).render()), what="the journal's note about the import")
        await pilot.press("space", "down", "space", "o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunOverlayScreen), what="the overlay")
        chart = app.screen.query_one(LineChart)
        await wait_for(pilot, lambda: len(chart.series) == 2, what="the curves drawn")
        assert [(s.name, len(s.points)) for s in chart.series] == [(A, 40), (imported, 12)]


async def test_tag_archive_and_delete(home: Path) -> None:
    seed_runs(home)
    store = Store(home)
    store.add_entry("baseline note", kind="note", run=A)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(120, 30), message_hook=messages.append) as pilot:
        _, panel, table = await open_runs(pilot, 3)
        # typed straight after the key that opens the dialog, before its field has the focus: typed ahead
        await pilot.press("down", "down", "t", *"baseline, r8", "enter")
        # shown in the facts under the table (the table's Tags column is there only when the window has room)
        await wait_for(pilot, lambda: "#baseline #r8" in str(panel.query_one("#run-facts", Static).render()),
                       what="the tags shown")
        assert {r.id: r.tags for r in store.runs()}[A] == ("baseline", "r8")
        await pilot.press("v")  # archive: hidden
        await wait_for(pilot, lambda: table.row_count == 2, what="the archived run hidden")
        assert "1 archived hidden" in str(panel.query_one("#runs-count", Static).render())
        await pilot.press("h")
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.press("end")
        await wait_for(pilot, lambda: panel.current is not None and panel.current.id == A)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        question = str(app.screen.query_one("#confirm-question", Static).render())
        assert A in question and "KiB" in question and "journal entries are kept" in question
        await pilot.press("n")
        await pilot.pause()
        assert (home / "runs" / A).is_dir()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: of_type(messages, RunsPanel.RunDeleted), what="RunDeleted")
        await wait_for(pilot, lambda: table.row_count == 2, what="the table without it")
    assert not (home / "runs" / A).exists() and A not in {r.id for r in store.runs()}
    assert [e.text for e in store.entries(run=A) if e.kind == "note"] == ["baseline note"]
    assert of_type(messages, RunsPanel.RunDeleted)[0].size > 40_000


async def test_export_from_the_runs_view_has_the_runs(home: Path) -> None:
    seed_runs(home)
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(120, 30), message_hook=messages.append) as pilot:
        await open_runs(pilot, 3)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, PathDialog))
        assert app.screen.query_one(Input).value.endswith("journal.md")
        await pilot.press("enter")
        await wait_for(pilot, lambda: of_type(messages, JournalScreen.JournalExported), what="the export")
    text = (home / "journal.md").read_text()
    assert "## Run details" in text and f"### `{B}` — completed" in text and "method.rank = 64" in text
    assert "Data for this run" in text  # the derived data entries are notes of the export too


async def test_runs_view_layout_at_80x24(home: Path) -> None:
    seed_runs(home)
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(80, 24)) as pilot:
        screen, panel, table = await open_runs(pilot, 3)
        footer = screen.query_one(Footer)
        lower = panel.query_one("#runs-lower")
        assert footer.region.y == 23 and footer.region.width == 80
        assert table.region.height >= 5, "the table keeps room for a few runs"
        assert lower.region.bottom <= footer.region.y and lower.region.right <= 80
        assert panel.query_one("#run-facts").region.width >= 30
        shown = {b.binding.key for b in screen.active_bindings.values() if b.binding.show and b.enabled}
        assert {"space", "c", "o", "t", "v", "r"} <= shown and "e" not in shown  # entry keys hidden here


def test_a_narrow_table_keeps_the_columns_that_matter_and_fits() -> None:
    widths = dict(COLUMNS)
    narrow = columns_for(78)
    assert {"", "Run", "Status", "Final", "Best val", "Env"} <= set(narrow) and "Data fp" not in narrow
    assert sum(widths[label] + 2 for label in narrow) <= 78
    assert columns_for(400) == tuple(label for label, _ in COLUMNS)
    assert columns_for(10) == ("", "Run", "Status")  # never less than the run and its status
