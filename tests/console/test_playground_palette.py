"""The playground from the command palette (on the active run), and an answer with nothing visible in it."""

from __future__ import annotations

from pathlib import Path

from console_helpers import run_from_palette, wait_for
from textual.widgets import Static

from engine.spec import DataSpec, ModelSpec, RunSpec, dump_spec
from screens.playground import PlaygroundScreen
from slmtui.app import SlmtuiApp


def fake_trained_run(home: Path, run_id: str) -> Path:
    """A run folder with a spec and a final adapter's config: what the playground looks for."""
    run_dir = home / "runs" / run_id
    (run_dir / "adapter").mkdir(parents=True)
    (run_dir / "adapter" / "adapter_config.json").write_text("{}")
    (run_dir / "spec.toml").write_text(dump_spec(RunSpec(model=ModelSpec(name="base-model"),
                                                         data=DataSpec(path="rows.jsonl"))))
    return run_dir


async def test_the_palette_opens_the_playground_on_the_active_run(home: Path) -> None:
    fake_trained_run(home, "20260101-000000-older")
    chosen = fake_trained_run(home, "20260101-000001-chosen")
    fake_trained_run(home, "20260101-000002-newest")
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal")
        app.active_run = chosen.name
        await run_from_palette(pilot, "playground")
        await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen), what="the playground")
        playground = app.screen
        assert isinstance(playground, PlaygroundScreen)
        assert playground.pair.right.model == str(chosen) and playground.pair.left.base
        playground.post_message(PlaygroundScreen.AnswerFinished("left", " \n\n", 64, 112.0))
        text = playground.pane("left").query_one(".answer-text", Static)
        await wait_for(pilot, lambda: "nothing visible" in str(text.render()), what="the empty answer explained")
        assert "64 tokens" in str(text.render()) and "64 tokens, 112 tok/s" in playground.pane("left").caption


async def test_the_palette_says_what_to_do_without_a_trained_run(home: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal")
        app.action_playground()
        await pilot.pause()
        assert not isinstance(app.screen, PlaygroundScreen)
        assert any("Train a run" in str(n.message) for n in app._notifications)
