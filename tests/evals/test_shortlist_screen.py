"""The Shortlist screen and the playground, driven by keys (pilot), with real engine processes behind them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Select, Static

from screens.new_run import NewRunScreen
from screens.playground import PlaygroundScreen
from screens.shortlist import ShortlistScreen, format_context, format_params
from slmtui import shortlist
from slmtui.app import SlmtuiApp
from slmtui.shortlist import GpuTarget
from slmtui.store import Store
from slmtui.ui.registry import default_registry
from tests.console.console_helpers import fixed_home, of_type, wait_for

TARGET = GpuTarget("RTX-4090", 24.0, False, "NVML cannot start: no NVIDIA driver")


def console(home: Path) -> SlmtuiApp:
    """The console on the Shortlist, judging memory against a fixed catalog GPU (the same on any machine)."""
    registry = default_registry()
    registry.register("Shortlist", "2", lambda host: ShortlistScreen(target=TARGET))
    return SlmtuiApp(home=home, start_screen="Shortlist", registry=registry)


async def open_shortlist(pilot: Pilot[None], count: int) -> ShortlistScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ShortlistScreen) and len(app.screen.rows) == count
                   and app.screen.target is not None, what=f"{count} shortlisted models")
    assert isinstance(app.screen, ShortlistScreen)
    return app.screen


def cells(screen: ShortlistScreen) -> list[list[str]]:
    table = screen.query_one("#shortlist-table", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.parametrize(("params", "text"), [(None, "?"), (135e6, "135M"), (1.54e9, "1.54B"), (106_816, "107k")])
def test_format_params(params: float | None, text: str) -> None:
    assert format_params(params) == text


def test_format_context() -> None:
    assert (format_context(32768), format_context(512), format_context(None)) == ("32k", "512", "?")


async def test_add_refuse_remove_and_change_method(home: Path) -> None:
    store = Store(home)
    shortlist.add(store, "qwen2.5-0.5b")
    messages: list[Message] = []
    app = console(home)
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_shortlist(pilot, 1)
        assert cells(screen)[0][:6] == ["qwen2.5-0.5b", "490M", "32k", "apache-2.0", "no", "fits ×12"]
        await pilot.press("a", *"not a model", "enter")
        await wait_for(pilot, lambda: of_type(messages, ShortlistScreen.AddRefused), what="AddRefused")
        await pilot.press("a", *"llama-3.2-3b", "enter")
        await wait_for(pilot, lambda: len(screen.rows) == 2, what="the added model")
        assert of_type(messages, ShortlistScreen.ModelAdded)[0].model == "meta-llama/Llama-3.2-3B"
        assert cells(screen)[1][4] == "yes"  # gated
        await pilot.press("m")  # lora -> qlora
        await wait_for(pilot, lambda: screen.method_kind == "qlora" and store.setting(shortlist.METHOD_KEY) == "qlora",
                       what="the method saved")
        await wait_for(pilot, lambda: "qlora" in str(screen.query_one("#shortlist-target", Static).render()),
                       what="the verdicts for qlora")
        await pilot.press("down", "d")
        await wait_for(pilot, lambda: len(screen.rows) == 1, what="the model removed")
        assert shortlist.models(store) == ["Qwen/Qwen2.5-0.5B"]
        assert of_type(messages, ShortlistScreen.ModelRemoved)[0].model == "meta-llama/Llama-3.2-3B"


async def test_the_method_selects_first_announcement_arriving_late_keeps_the_saved_method(home: Path) -> None:
    """The Select announces its built-in "lora" on mount; arriving after the saved method was filled in, it must
    neither show lora nor save it over the user's choice."""
    store = Store(home)
    shortlist.add(store, "qwen2.5-0.5b")
    store.set_setting(shortlist.METHOD_KEY, "qlora")
    async with console(home).run_test(size=(100, 30)) as pilot:
        screen = await open_shortlist(pilot, 1)
        await wait_for(pilot, lambda: screen.method_kind == "qlora", what="the saved method")
        method = screen.query_one("#shortlist-method", Select)
        screen._method_chosen(Select.Changed(method, "lora"))  # as the screen handles the late announcement
        await pilot.pause()
        assert (screen.method_kind, method.value, store.setting(shortlist.METHOD_KEY)) == ("qlora",) * 3
        await pilot.press("m")  # a choice the user makes still counts
        await wait_for(pilot, lambda: store.setting(shortlist.METHOD_KEY) == screen.method_kind != "qlora",
                       what="the next method saved")


async def test_evaluate_two_local_models_and_choose_one(home: Path, ticket_model: Path, tiny_model_dir: Path,
                                                        tickets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = Store(home)
    shortlist.add(store, str(ticket_model))
    store.set_setting(shortlist.DATA_KEY, str(tickets))
    store.set_setting(shortlist.SUBSET_KEY, 8)
    messages: list[Message] = []
    app = console(home)
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_shortlist(pilot, 1)
        await pilot.press("a", *str(tiny_model_dir), "enter")
        await wait_for(pilot, lambda: len(screen.rows) == 2, what="the second local model")
        assert cells(screen)[1][1:4] == ["107k", "512", "local"]
        await pilot.press("e")
        await wait_for(pilot, lambda: of_type(messages, ShortlistScreen.EvaluationFinished), timeout=120,
                       what="the evaluation")
        finished = of_type(messages, ShortlistScreen.EvaluationFinished)[0]
        assert finished.failures == {} and len(finished.results) == 2
        progressed = {m.model for m in of_type(messages, ShortlistScreen.EvaluationProgressed)}
        assert progressed == {str(ticket_model), str(tiny_model_dir)}
        await wait_for(pilot, lambda: all(r.result is not None for r in screen.rows), what="results in the rows")
        assert all(float(row[6]) > 0 for row in cells(screen))  # the loss column
        assert "Evaluated 2 models" in screen.status
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen) and bool(app.screen.raw), what="New run")
        new_run = app.screen
        assert isinstance(new_run, NewRunScreen)
        assert (new_run.raw["model"]["name"], new_run.raw["data"]["path"]) == (str(ticket_model), str(tickets))


async def test_the_playground_streams_both_answers(home: Path, trained_run: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = Store(home)
    shortlist.add(store, str(trained_run))
    messages: list[Message] = []
    app = console(home)
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await open_shortlist(pilot, 1)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen), what="the playground")
        playground = app.screen
        assert isinstance(playground, PlaygroundScreen)
        assert (playground.pair.left.base, playground.pair.right.base) == (True, False)
        await pilot.press(*"Triage this support ticket: I was charged twice.", "enter")
        await wait_for(pilot, lambda: len(of_type(messages, PlaygroundScreen.AnswerFinished)) == 2, timeout=120,
                       what="both answers")
        assert not of_type(messages, PlaygroundScreen.AnswerFailed)
        finished = {m.side: m for m in of_type(messages, PlaygroundScreen.AnswerFinished)}
        streamed = of_type(messages, PlaygroundScreen.TokenStreamed)
        right = "".join(m.token for m in streamed if m.side == "right")
        assert right and right == finished["right"].text == playground.answers["right"]
        assert finished["left"].tokens > 0 and finished["right"].tokens > 0
        assert str(playground.pane("right").query_one(".answer-text", Static).render()) == right
        assert "tok/s" in playground.pane("left").caption
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ShortlistScreen), what="back on the shortlist")


# ---------------------------------------------------------------------- looks


@pytest.fixture
def snapshot_home() -> Iterator[Path]:
    """A HOME at a fixed path (the header shows it) with three candidates, two of them evaluated."""
    with fixed_home("slmtui-shortlist-snapshot") as path:
        store = Store(path)
        for model in ("qwen2.5-0.5b", "llama-3.2-1b", "qwen2.5-7b"):
            shortlist.add(store, model)
        store.set_setting(shortlist.DATA_KEY, "tickets.jsonl")
        for model, loss, acc, speed in (("Qwen/Qwen2.5-0.5B", 1.912, 0.62, 410.0),
                                        ("meta-llama/Llama-3.2-1B", 1.704, 0.71, 260.0)):
            store.add_eval_result({"id": model, "model": model, "data": "tickets.jsonl", "split": "validation",
                                   "examples": 64, "loss": loss, "accuracy": acc, "tokens_per_s": speed,
                                   "mem_peak_gib": 2.5, "t": time.time()})
        yield path


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_shortlist_snapshot(snap_compare: Any, snapshot_home: Path, size: tuple[int, int]) -> None:
    async def loaded(pilot: Pilot[None]) -> None:
        screen = await open_shortlist(pilot, 3)
        await wait_for(pilot, lambda: screen.rows[0].result is not None, what="the results")
        await pilot.pause()

    assert snap_compare(console(snapshot_home), terminal_size=size, run_before=loaded)


async def test_layout_at_80_by_24(snapshot_home: Path) -> None:
    app = console(snapshot_home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_shortlist(pilot, 3)
        for selector in ("#shortlist-add", "#shortlist-table", "#shortlist-data", "#shortlist-status"):
            region = screen.query_one(selector).region
            assert region.height > 0 and region.bottom <= 24 and region.right <= 80, selector
        assert screen.query_one("#shortlist-table", DataTable).region.height >= 5
