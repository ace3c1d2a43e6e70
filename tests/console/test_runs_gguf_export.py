"""The Runs view's GGUF export, by keys, on a real tiny run: g asks for a folder, enter exports (the engine in a
subprocess), and the result and the journal entry arrive."""

from __future__ import annotations

from pathlib import Path

from console_helpers import of_type, wait_for
from textual.message import Message
from textual.widgets import Input

from engine.train.loop import StopFlag
from engine.train.run import execute
from screens.widgets.dialogs import PathDialog
from screens.widgets.runs_panel import RunsPanel
from slmtui.app import SlmtuiApp
from slmtui.model_export import default_gguf_dir
from slmtui.store import Store
from tests.console.test_runs_view import open_runs
from tests.test_engine_run import make_run


async def test_g_exports_the_highlighted_run_as_gguf(home: Path, tiny_model_dir: Path) -> None:
    runs = home / "runs"
    runs.mkdir(parents=True)
    run_dir = make_run(runs, tiny_model_dir, max_steps=2, eval_every=0, save_every=0, eval_samples=0)
    assert execute(run_dir, StopFlag()) == "completed"
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="Journal")
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        await open_runs(pilot, 1)
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, PathDialog), what="the folder dialog")
        out = default_gguf_dir(home, run_dir.name)
        assert app.screen.query_one(Input).value == str(out)
        await pilot.press("enter")
        await wait_for(pilot, lambda: of_type(messages, RunsPanel.GgufExported), timeout=240, what="the export")
        done = of_type(messages, RunsPanel.GgufExported)[0]
        assert done.run_id == run_dir.name and done.lines[0].startswith(f"Wrote {out}/inproc-f16.gguf")
        assert done.passed and (out / "Modelfile").is_file() and (out / "inproc-f16.gguf").is_file()
        assert any(line.startswith(("Parity with transformers", "Parity check skipped")) for line in done.lines)
        # the journal entry comes from the run's `exported` event, on the reconcile the export's end starts
        # (a worker): wait for it here, before the console (and any worker still running) ends
        await wait_for(pilot, lambda: any(f"Exported to gguf (f16) in {out}." in e.text
                                          for e in Store(home).entries(run=run_dir.name)), what="the journal entry")
