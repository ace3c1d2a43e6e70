"""The console draws text from outside as text: a journal entry, a dataset row, a model's answer or an engine
message never sends a raw control character to the terminal, and brackets in it are never markup.

What the terminal would receive is read from the compositor: every segment of every line of the screen (the
terminal's own escape codes for colours come from styles, not from this text). The reported examples are
regression tests; hypothesis then fuzzes the Data preview and the Journal with random hostile strings.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from console_helpers import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from screens.journal import JournalScreen
from screens.playground import PlaygroundScreen
from screens.widgets.data_report_view import DataReportView
from screens.widgets.dialogs import ConfirmDialog
from screens.widgets.run_panels import GenerationsPanel, OomBanner, RunStats
from slmtui.app import SlmtuiApp
from slmtui.monitor_data import EMPTY_VIEW
from slmtui.playground import GenerationRequest, Pair
from slmtui.store import Store

RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
ATTACKS = ("A\x1b[2J", "\x1b]52;c;cHduZWQ=\x07", "\x1b]0;TITLE\x1b\\", "x\x9b2J")
SHOWN = ("A␛[2J", "␛]52;c;cHduZWQ=␇", "␛]0;TITLE␛\\", "x\\x9b2J")
MARKUP = ("[/]x", "[link=http://evil]x[/link]", "[$warning]y", "[@click=app.quit]z[/]")
PIECES = st.sampled_from([*ATTACKS, *MARKUP, "\x1b", "\x9d", "\x7f", "\r", "\x00", "\n", "\t", "[", "]", "\\"])
HOSTILE = st.lists(PIECES | st.text(st.characters(exclude_categories=["Cs"]), max_size=3), max_size=6).map("".join)


def drawn(app: App[Any]) -> str:
    """Every character the screen on show would send to the terminal, line by line."""
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(segment.text for segment in strip) for strip in update.strips)


def assert_inert(app: App[Any]) -> str:
    text = drawn(app)
    found = RAW_CONTROL.search(text)
    assert found is None, f"raw {found.group()!r} drawn on the screen"
    return text


async def drawn_with(pilot: Pilot[Any], *texts: str) -> str:
    """The screen once it draws every one of `texts` (a widget's new text reaches the screen a frame after the
    widget holds it), checked inert."""
    app = pilot.app
    try:
        await wait_for(pilot, lambda: all(text in drawn(app) for text in texts), what=f"{texts} drawn")
    except AssertionError as missing:
        raise AssertionError(f"{missing}; the screen:\n{drawn(app)}") from None
    return assert_inert(app)


# ---------------------------------------------------------------- the journal


def seed(home: Path, texts: list[str]) -> None:
    Store(home).add_entries([{"kind": "note", "text": t, "created": 1_790_000_000 + i * 60, "source": f"t:{i}"}
                             for i, t in enumerate(texts)])


async def walk_journal(pilot: Pilot[None], count: int) -> set[str]:
    """Open every entry in turn (the detail pane shows it whole); returns what was drawn."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen) and len(app.screen.index.entries) == count,
                   what=f"{count} entries")
    seen = {assert_inert(app)}
    for _ in range(count):
        await pilot.press("down")
        await pilot.pause()
        seen.add(assert_inert(app))
    return seen


async def test_journal_entries_show_escape_sequences_and_brackets_as_text(home: Path) -> None:
    seed(home, [*MARKUP, *ATTACKS])  # newest first: the walk ends on the oldest, `[/]x`
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = "\n".join(await walk_journal(pilot, len(ATTACKS) + len(MARKUP)))
        for shown in (*SHOWN, *MARKUP):
            assert shown in screen
        await pilot.press("d")  # the question quotes the entry: `[/]x` once broke the dialog
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the dialog")
        await drawn_with(pilot, "for good?", "[/]x")
        await pilot.press("n")
        app.notify("Wrote to [/]x \x1b[2J")  # toasts quote paths and names
        await drawn_with(pilot, "Wrote to [/]x ␛[2J")
    assert app.return_code in (None, 0)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(HOSTILE.filter(str.strip), min_size=1, max_size=4))
def test_fuzz_journal_screen(tmp_path: Path, texts: list[str]) -> None:
    home = tmp_path / f"h{abs(hash(tuple(texts)))}"
    seed(home, texts)

    async def run() -> None:
        app = SlmtuiApp(home=home, start_screen="Journal")
        async with app.run_test(size=(100, 30)) as pilot:
            await walk_journal(pilot, len(texts))

    asyncio.run(run())


# ---------------------------------------------------------------- the data preview


class ReportApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DataReportView()


def hostile_report(texts: list[str]) -> dict[str, Any]:
    """A data-check report whose every string came from the dataset."""
    t = [*texts, "", "", ""]
    return {
        "source": {"path": f"/data/{t[0]}.jsonl"}, "rows": 3, "shape": t[1], "shape_detected": True,
        "columns": [t[0], t[2]], "template": "default", "tokenizer": {"name": t[1], "note": t[2]},
        "invalid_rows_total": 1, "invalid_rows": [{"line": 2, "reason": f"field {t[0]!r} is {t[1]}"}],
        "empty_rows": 0, "duplicates": 0, "token_lengths": {"p50": 3}, "max_length": 64, "over_max_length": 0,
        "overlength_action": "truncate", "pii_rows": 0, "scrub": "on", "pii": {t[2] or "EMAIL": 1},
        "label_column": "label", "label_balance": {t[0] or "a": 2, t[1] or "b": 1}, "length_histogram": [],
        "preview": [{"line": 1, "label": t[2], "segments": [{"text": t[0], "trained": False},
                                                            {"text": t[1], "trained": True}]}],
    }


async def show_every_tab(texts: list[str]) -> str:
    app = ReportApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one(DataReportView).report = hostile_report(texts)
        await pilot.pause()
        seen = [assert_inert(app)]
        for _ in range(3):
            app.query_one(DataReportView).next_tab()
            await pilot.pause()
            seen.append(assert_inert(app))
    return "\n".join(seen)


async def test_data_preview_shows_hostile_rows_as_text() -> None:
    screen = await show_every_tab([ATTACKS[0], f"{ATTACKS[1]} {MARKUP[0]}", f"{ATTACKS[2]} {MARKUP[1]}"])
    for shown in (*SHOWN[:3], *MARKUP[:2]):
        assert shown in screen


@settings(max_examples=15, deadline=None)
@given(texts=st.lists(HOSTILE, min_size=1, max_size=3))
def test_fuzz_data_preview(texts: list[str]) -> None:
    asyncio.run(show_every_tab(texts))


# ---------------------------------------------------------------- model output and engine messages


class PanelsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunStats()
        yield OomBanner()
        yield GenerationsPanel()


async def test_monitor_panels_show_generations_and_messages_as_text() -> None:
    sample = {"prompt": f"Q {ATTACKS[0]}", "output": f"{ATTACKS[1]} {MARKUP[2]}", "reference": MARKUP[0]}
    view = replace(EMPTY_VIEW, run_id=f"run{ATTACKS[2]}", status="failed", loaded=True,
                   message=f"failed: {MARKUP[1]} {ATTACKS[3]}",
                   last_eval={"step": 4, "val_loss": 1.0, "perplexity": 2.7, "samples": [sample]},
                   oom={"step": 3, "message": f"CUDA {MARKUP[0]}", "post_mortem": {"changes": [{"change": ATTACKS[0]}]}})
    app = PanelsApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one(RunStats).view = view
        app.query_one(OomBanner).view = view
        app.query_one(GenerationsPanel).view = view
        await drawn_with(pilot, SHOWN[0], SHOWN[1], SHOWN[3], *MARKUP[:3])


async def test_playground_streams_tokens_as_text(home: Path) -> None:
    pair = Pair(GenerationRequest(model="m", prompt="", label=f"base {MARKUP[0]}"),
                GenerationRequest(model="m", prompt="", label="tuned"))
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = PlaygroundScreen(pair)
        await app.push_screen(screen)
        await pilot.pause()
        for token in ("\x1b", "]52;c;cHduZWQ=", "\x07", " [/]", "x", "\x9b2J"):  # a sequence split over tokens
            screen.post_message(PlaygroundScreen.TokenStreamed("left", token))
        screen.post_message(PlaygroundScreen.AnswerFailed("right", f"no model at {MARKUP[1]}"))
        await drawn_with(pilot, "␛]52;c;cHduZWQ=␇ [/]x\\x9b2J", MARKUP[1], MARKUP[0])


async def test_new_run_shows_a_hostile_spec_as_text(home: Path, tmp_path: Path) -> None:
    """A spec file (or a suggested fix) with markup and escapes in its values: the fields, the problems
    that quote them and the choice lists show them as typed."""
    from screens.new_run import NewRunScreen
    from slmtui.gpu import Nvml
    from tests.gpu_fakes import FakeNvml

    spec = {"name": "x", "model": {"name": f"{MARKUP[0]}{ATTACKS[0]}"},
            "data": {"path": str(tmp_path / f"d{MARKUP[1]}.jsonl")}, "method": {"kind": f"lora{MARKUP[0]}"}}
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = NewRunScreen(spec, nvml=Nvml(FakeNvml(count=0).module))
        await app.push_screen(screen)
        await wait_for(pilot, lambda: app.screen is screen and screen.problems, what="the problems")
        await drawn_with(pilot, f"lora{MARKUP[0]}")


async def test_runs_view_shows_entries_and_tags_about_a_run_as_text(home: Path) -> None:
    """The runs view lists a run's journal entries and tags beside it: `[/]x` there once killed the view."""

    from screens.widgets.runs_panel import RunsPanel
    from slmtui.reconcile import reconcile_home
    from tests.run_fixtures import make_run

    run_id = "20261126-070000-base"
    make_run(home / "runs", run_id)
    reconcile_home()  # index the run, as `slmtui runs` would
    store = Store(home)
    store.add_entry(f"{MARKUP[0]} {ATTACKS[0]}", kind="aha", run=run_id)
    store.set_run_meta(run_id, tags=[MARKUP[2], "x\x9b"])
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen) and bool(app.screen.query("#journal-table")))
        await pilot.press("r")
        await wait_for(pilot, lambda: bool(app.screen.query(RunsPanel)), what="the runs view")
        await drawn_with(pilot, f"{MARKUP[0]} {SHOWN[0]}", MARKUP[2])
