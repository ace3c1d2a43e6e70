"""A worker that fails on any screen reaches the user: one sentence in a toast naming what failed and what to
do, and the traceback in `HOME/logs/console.log`. Was: `Worker.StateChanged` does not bubble, so the workers of
New run, the Playground and the Journal's runs panel failed unseen."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from console_helpers import wait_for

from slmtui.app import SlmtuiApp
from slmtui.ui.workers import CONSOLE_LOG, ReportsWorkerFailures
from tests.conftest import REPO

BOOM = "boom from the test"


def boom(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError(BOOM)


def _classes_running_workers() -> list[tuple[str, str]]:
    """(module, class) of every class in the console that starts a worker (`@work` or `run_worker`)."""
    found = []
    for path in [*(REPO / "screens").rglob("*.py"), REPO / "slmtui" / "app.py", *(REPO / "slmtui" / "ui").rglob("*.py")]:
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ClassDef) and any(_starts_a_worker(inner) for inner in ast.walk(node)):
                found.append((module, node.name))
    return found


def _starts_a_worker(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        func = node.func
        return (isinstance(func, ast.Name) and func.id == "work") or (
            isinstance(func, ast.Attribute) and func.attr == "run_worker")
    return isinstance(node, ast.Name) and node.id == "work" and isinstance(node.ctx, ast.Load)


def test_every_class_that_runs_a_worker_reports_its_failures() -> None:
    classes = _classes_running_workers()
    assert ("screens.widgets.runs_panel", "RunsPanel") in classes and ("screens.playground", "PlaygroundScreen") in classes
    unreported = [f"{module}.{name}" for module, name in classes
                  if not issubclass(getattr(importlib.import_module(module), name), ReportsWorkerFailures)]
    assert unreported == []


async def _fails_visibly(home: Path, start: str, act: Callable[[SlmtuiApp], Any] | None = None,
                         what: str = "") -> None:
    """Open the console on `start`, do `act`, and wait for the toast of a failed worker named `what`."""
    app = SlmtuiApp(home=home, start_screen=start)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == start.lower(), what=start)
        await pilot.pause()
        if act is not None:
            await act(app)

        def toasts() -> list[str]:
            return [str(n.message) for n in app._notifications if str(n.message).startswith(f"{what} failed")]

        await wait_for(pilot, toasts, what=f"the failure of {what!r}")
        message = toasts()[0]
    assert message.startswith(f"{what} failed (RuntimeError: {BOOM}): "), message
    assert "try again" in message and str(home / CONSOLE_LOG) in message and "\n" not in message
    logged = (home / CONSOLE_LOG).read_text()
    assert "Traceback" in logged and BOOM in logged and what in logged


@pytest.mark.parametrize(
    ("screen", "target", "what"),
    [
        ("Checklist", "slmtui.checklist.load", "Loading the checklist"),
        ("Shortlist", "slmtui.shortlist.method", "Reading the shortlist"),
        ("Data", "screens.data.load_options", "Reading the data settings"),
        ("GPUs", "screens.gpus.target_gpu", "Reading the target GPU"),
        ("Monitor", "slmtui.runs.list_runs", "Listing the runs"),
        ("Journal", "slmtui.journal_index.JournalIndex.build", "Reading the journal"),
    ],
)
async def test_a_failed_worker_on_each_screen_is_said(home: Path, monkeypatch: pytest.MonkeyPatch, screen: str,
                                                     target: str, what: str) -> None:
    monkeypatch.setattr(target, boom)
    await _fails_visibly(home, screen, what=what)


async def test_the_runs_panel(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("screens.widgets.runs_panel.runs_token", boom)

    async def show_runs(app: SlmtuiApp) -> None:
        await app.screen.run_action("toggle_runs")

    await _fails_visibly(home, "Journal", show_runs, what="Reading the runs")


async def test_new_run(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("screens.new_run.Nvml", boom)

    async def open_new_run(app: SlmtuiApp) -> None:
        app.action_new_run()

    await _fails_visibly(home, "Journal", open_new_run, what="Reading the GPUs")


async def test_the_playground(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from screens.playground import PlaygroundScreen
    from slmtui.playground import GenerationRequest, Pair

    monkeypatch.setattr("screens.playground.stream_generation", boom)

    async def ask(app: SlmtuiApp) -> None:
        screen = PlaygroundScreen(Pair(GenerationRequest(model="m", prompt="", label="base"),
                                       GenerationRequest(model="m", prompt="", label="tuned")))
        await app.push_screen(screen)
        screen.ask("hello")

    await _fails_visibly(home, "Journal", ask, what="Generating with tuned")


async def test_the_app_itself(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("slmtui.store.Store.set_setting", boom)

    async def next_theme(app: SlmtuiApp) -> None:
        app.action_next_theme()

    await _fails_visibly(home, "Journal", next_theme, what="Saving the theme")
