"""The New run screen: opened by key and palette, live validation, the estimate, prefills, save, launch."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import fixed_home, of_type, run_from_palette, wait_for
from rich.cells import cell_len
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Button, Footer, Input, Label, Select, Static

from engine.spec import SpecProblem, load_spec, parse_spec
from screens.gpus import GpusScreen
from screens.new_run import NewRunScreen
from screens.widgets.dialogs import ConfirmDialog, PathDialog
from slmtui.app import SlmtuiApp
from slmtui.data_report import save_options
from slmtui.data_service import DataRequest
from slmtui.gpu import Nvml
from slmtui.new_run import FIELDS
from slmtui.runs import create_run, engine_alive, read_run, request
from tests.gpu_fakes import FakeNvml
from tests.train_helpers import instruction_rows, write_jsonl


def no_gpu() -> Nvml:
    return Nvml(FakeNvml(count=0).module)


def valid_spec(model: Path | str, data: Path, **train: Any) -> dict[str, Any]:
    return {"name": "editor test", "model": {"name": str(model)}, "data": {"path": str(data), "max_length": 128},
            "method": {"kind": "lora", "rank": 4},
            "train": {"device": "cpu", "micro_batch": 2, "max_steps": 100_000, "eval_every": 0, "save_every": 0,
                      "eval_samples": 1, **train}}


@pytest.fixture(autouse=True)
def no_data_check(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data check (a subprocess importing transformers) runs only in the test about it; elsewhere it would
    only compete for the CPU."""
    if "data_report" not in request.node.name:
        monkeypatch.setattr("screens.new_run.DATA_DEBOUNCE_S", 3600.0)


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    data = instruction_rows(40)
    data[0]["instruction"] += " Reach me at jane.doe@example.com."
    return write_jsonl(tmp_path / "rows.jsonl", data)


async def open_editor(pilot: Pilot[None], spec: dict[str, Any] | None = None) -> NewRunScreen:
    app = pilot.app
    screen = NewRunScreen(spec, nvml=no_gpu())
    await app.push_screen(screen)
    await wait_for(pilot, lambda: app.screen is screen and screen.raw, what="the editor")
    return screen


def field(screen: NewRunScreen, path: str) -> Any:
    return screen.query_one("#f-" + path.replace(".", "-"))


def error_text(screen: NewRunScreen, path: str) -> str:
    label = screen.query_one("#e-" + path.replace(".", "-"), Static)
    return str(label.content) if label.display else ""


async def retype(pilot: Pilot[None], screen: NewRunScreen, path: str, text: str) -> None:
    box = field(screen, path)
    assert isinstance(box, Input)
    box.focus()
    box.value = ""
    await pilot.press(*text)


async def test_n_opens_it_from_every_screen_and_so_does_the_palette(home: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_screen_name == "journal")
        for key in ("6", "4"):
            await pilot.press(key)
            await wait_for(pilot, lambda: app.screen.query(Footer) and not isinstance(app.screen, NewRunScreen))
            await pilot.pause()
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), what=f"New run over screen {key}")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, NewRunScreen), what="the editor closed")
        assert isinstance(app.screen, GpusScreen)
        await run_from_palette(pilot, "new run")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), what="New run from the palette")


async def test_defaults_are_the_demo_when_it_is_built(home: Path) -> None:
    model = home / "demo" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (home / "demo" / "data").mkdir(parents=True)
    data = write_jsonl(home / "demo" / "data" / "tickets.jsonl", instruction_rows(3))
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_editor(pilot)
        assert field(screen, "model.name").value == str(model)
        assert field(screen, "data.path").value == str(data)
        assert field(screen, "name").value == "demo"
        # the settings `slmtui demo` trains with (known to learn), not the engine's bare defaults
        assert field(screen, "train.lr").value == "0.002" and field(screen, "train.max_steps").value == "600"


async def test_it_starts_from_the_data_settings_saved_on_the_data_screen(home: Path, rows: Path) -> None:
    """The README: the Data screen's ctrl+s keeps the settings "for the next run" (store setting data_settings)."""
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        save_options(app.store, DataRequest(str(rows), "tok", 384, "drop", (("prompt", "question"),)))
        screen = await open_editor(pilot)
        assert field(screen, "data.path").value == str(rows)
        assert field(screen, "data.max_length").value == "384" and field(screen, "data.overlength").value == "drop"
        assert screen.raw["data"]["map"] == {"prompt": "question"}  # kept though the form does not show it
        await pilot.press("escape")
        prefilled = await open_editor(pilot, {"data": {"path": "other.jsonl", "max_length": 64}})
        assert field(prefilled, "data.path").value == "other.jsonl"  # a prefill (a run's spec, a fix) wins
        assert field(prefilled, "data.max_length").value == "64" and field(prefilled, "data.overlength").value == "drop"


async def test_an_invalid_value_shows_its_one_sentence_and_fixing_it_clears_it(
        home: Path, rows: Path, tiny_model_dir: Path) -> None:
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_editor(pilot, valid_spec(tiny_model_dir, rows))
        assert screen.problems == () and screen.spec is not None
        assert "ready to launch" in str(screen.query_one("#nr-problems", Static).content)
        await retype(pilot, screen, "train.micro_batch", "abc")
        sentence = "train.micro_batch must be a whole number, not str 'abc'."
        problem = SpecProblem("train.micro_batch", sentence)
        await wait_for(pilot, lambda: screen.problems == (problem,), what="the problem")
        assert error_text(screen, "train.micro_batch") == sentence
        assert field(screen, "train.micro_batch").has_class("nr-invalid")
        assert sentence in str(screen.query_one("#nr-problems", Static).content)
        assert all(error_text(screen, f) == "" for f in ("model.name", "data.path", "train.lr"))
        assert screen.raw["train"]["micro_batch"] == "abc"
        assert screen.spec is None
        await retype(pilot, screen, "train.micro_batch", "4")
        await wait_for(pilot, lambda: screen.problems == (), what="the problem cleared")
        assert error_text(screen, "train.micro_batch") == "" and not field(screen, "train.micro_batch").has_class(
            "nr-invalid")
        assert screen.spec is not None and screen.spec.train.micro_batch == 4
        await retype(pilot, screen, "data.path", "/no/such/file.jsonl")
        await wait_for(pilot, lambda: "does not exist" in error_text(screen, "data.path"), what="a missing file")
        field(screen, "method.kind").value = "qlora"
        await retype(pilot, screen, "method.dropout", "2")
        await wait_for(pilot, lambda: "method.dropout" in error_text(screen, "method.dropout"), what="dropout")
        assert len(screen.problems) == 2


async def test_the_estimate_follows_the_batch_and_the_gpu(home: Path, rows: Path) -> None:
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_editor(pilot, valid_spec("qwen2.5-0.5b", rows, micro_batch=1))
        await wait_for(pilot, lambda: screen.estimate is not None, what="the first estimate")
        assert screen.estimate is not None
        small = screen.estimate.estimate.total_gib
        assert screen.estimate.verdict == "fits" and screen.estimate.gpu == "RTX-4090"  # the target GPU
        assert "on RTX-4090: fits" in str(screen.query_one("#nr-estimate", Static).content)
        await retype(pilot, screen, "train.micro_batch", "64")
        await wait_for(pilot, lambda: screen.estimate is not None and screen.estimate.estimate.setup.batch == 64,
                       what="the estimate at 64")
        assert screen.estimate is not None and screen.estimate.estimate.total_gib > small
        screen.query_one("#nr-gpu", Select).value = "cat:T4"
        await wait_for(pilot, lambda: screen.estimate is not None and screen.estimate.gpu == "T4", what="on a T4")
        assert screen.estimate is not None and screen.estimate.verdict == "exceeds"
        assert screen.query_one("#nr-estimate", Static).has_class("exceeds")
        await retype(pilot, screen, "model.name", "no-such-model")
        await wait_for(pilot, lambda: screen.estimate is None, what="no estimate for an unknown model")
        last = of_type(messages, NewRunScreen.EstimateUpdated)[-1]
        assert "not a folder, a config.json, a catalog model or a hub id" in (last.error or "")


async def test_prefilled_from_the_last_run_an_oom_fix_and_a_shortlist_choice(home: Path, rows: Path) -> None:
    last = parse_spec(valid_spec("qwen2.5-1.5b", rows, micro_batch=3, lr=5e-5))
    run_dir = create_run(last, home / "runs")
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_editor(pilot)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: field(screen, "train.micro_batch").value == "3", what="the last run's spec")
        assert field(screen, "model.name").value == "qwen2.5-1.5b" and field(screen, "train.lr").value == "5e-05"
        assert screen.spec == last and any(run_dir.name in str(n.message) for n in app._notifications)
        await pilot.press("escape")
        fix = {**valid_spec("qwen2.5-1.5b", rows), "train": {"micro_batch": 2, "grad_accum": 4,
                                                              "gradient_checkpointing": True}}
        screen = await open_editor(pilot, fix)
        assert (field(screen, "train.micro_batch").value, field(screen, "train.grad_accum").value) == ("2", "4")
        assert field(screen, "train.gradient_checkpointing").value is True
        await pilot.press("escape")
        screen = await open_editor(pilot, {"model": {"name": "Qwen/Qwen2.5-7B"}})
        assert field(screen, "model.name").value == "Qwen/Qwen2.5-7B"
        assert field(screen, "method.kind").value == "lora"


async def test_save_writes_the_spec_as_toml(home: Path, rows: Path, tiny_model_dir: Path) -> None:
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_editor(pilot, valid_spec(tiny_model_dir, rows))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PathDialog), what="the path dialog")
        assert app.screen.query_one("#path-input", Input).value == str(home / "specs" / "editor-test.toml")
        await pilot.press("enter")
        await wait_for(pilot, lambda: of_type(messages, NewRunScreen.SpecSaved), what="the spec saved")
        saved = of_type(messages, NewRunScreen.SpecSaved)[0].path
        assert load_spec(saved) == screen.spec
        await retype(pilot, screen, "train.lr", "-1")
        await wait_for(pilot, lambda: screen.spec is None)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, PathDialog)
        assert any("Fix the 1 problem first" in str(n.message) for n in app._notifications)


@pytest.fixture
def engines(home: Path) -> Iterator[None]:
    """No engine started by a test outlives it: asked to stop, then killed if it has not."""
    yield
    runs = home / "runs"
    for run_dir in runs.iterdir() if runs.is_dir() else ():
        info = read_run(run_dir)
        if info.status == "running" and info.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)


@pytest.mark.slow
async def test_data_report_then_launch_starts_a_run_folder(home: Path, rows: Path, tiny_model_dir: Path,
                                                           engines: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = await open_editor(pilot, valid_spec(tiny_model_dir, rows))
        await wait_for(pilot, lambda: screen.data_summary is not None, timeout=60, what="the data report")
        summary = screen.data_summary
        assert summary is not None
        assert (summary.rows, summary.valid_rows, summary.max_length) == (40, 40, 128)
        assert 0 < summary.p50 <= summary.p99 and summary.pii.get("EMAIL") == 1 and summary.pii_rows == 1
        text = str(screen.query_one("#nr-data", Static).content)
        assert "40 rows" in text and f"p99 {summary.p99}" in text and "EMAIL 1" in text
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: of_type(messages, NewRunScreen.Launched), timeout=20, what="the launch")
        launched = of_type(messages, NewRunScreen.Launched)[0]
        run_id = launched.run_id
        assert launched.pilot is False and app.active_run == run_id
        await wait_for(pilot, lambda: not isinstance(app.screen, NewRunScreen), what="the editor closed")
        from screens.monitor import MonitorScreen

        # the Monitor opens on the new run, and follows it
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.selected == run_id,
                       timeout=10, what="the Monitor on the new run")
    run_dir = home / "runs" / run_id
    assert run_id.endswith("-editor-test") and load_spec(run_dir / "spec.toml") == parse_spec(
        valid_spec(tiny_model_dir, rows))
    request(run_dir, "stop")
    deadline = time.monotonic() + 90
    while engine_alive(run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not engine_alive(run_dir), "the engine did not stop when asked"
    assert read_run(run_dir).status in ("stopped", "completed")


async def test_layout_at_80x24(home: Path, rows: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(pilot, valid_spec("qwen2.5-0.5b", rows))
        await wait_for(pilot, lambda: screen.estimate is not None, what="the estimate")
        await pilot.pause()
        footer = screen.query_one(Footer)
        assert footer.region.y == 23 and footer.region.width == 80
        form, side = screen.query_one("#nr-form"), screen.query_one("#nr-side")
        assert form.region.width >= 34 and side.region.right <= 80 and form.region.right <= side.region.x
        assert field(screen, "model.name").region.width >= 16, "room to type a model"
        for form_field in FIELDS:  # an empty field's hint is whole, not cut at the field's edge
            control = field(screen, form_field.path)
            if isinstance(control, Input) and control.placeholder:
                assert cell_len(control.placeholder) <= control.content_region.width, form_field.path
        for label in screen.query(".nr-label").results(Label):  # and every label whole on its one line
            assert cell_len(str(label.content)) <= label.content_region.width, str(label.content)
        estimate = screen.query_one("#nr-estimate")
        assert side.region.contains_region(estimate.region)


@pytest.fixture
def snapshot_home() -> Iterator[Path]:
    with fixed_home("slmtui-new-run-snapshot") as path:
        yield path


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_new_run_snapshot(snap_compare: Any, snapshot_home: Path, size: tuple[int, int]) -> None:
    spec = valid_spec("qwen2.5-0.5b", snapshot_home / "missing.jsonl", micro_batch=4)

    async def loaded(pilot: Pilot[None]) -> None:
        screen = await open_editor(pilot, spec)
        await wait_for(pilot, lambda: screen.estimate is not None, what="the estimate")
        await pilot.pause()

    assert snap_compare(SlmtuiApp(home=snapshot_home, start_screen="journal"), terminal_size=size,
                        run_before=loaded)


async def test_a_run_that_exceeds_the_gpu_here_asks_before_launching(home: Path, rows: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    messages: list[Message] = []
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        screen = NewRunScreen({**valid_spec("qwen2.5-14b", rows, micro_batch=64, device="auto"),
                               "method": {"kind": "full"}}, nvml=Nvml(FakeNvml(count=1).module))
        await app.push_screen(screen)
        await wait_for(pilot, lambda: screen.estimate is not None and screen.estimate.gpu.startswith("GPU 0"),
                       what="the estimate against the GPU here")
        assert screen.estimate is not None and screen.estimate.verdict == "exceeds"
        assert screen.estimate.capacity_gib == pytest.approx(78.0)
        launches: list[tuple[Any, ...]] = []

        def fake_launch(*args: Any, **kwargs: Any) -> Any:
            launches.append((args, kwargs))
            return read_run(create_run(args[0], args[1]))

        monkeypatch.setattr("screens.new_run.launch_run", fake_launch)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        question = str(app.screen.query_one("#confirm-question", Static).content)
        assert "but GPU 0 has 78.0 GiB free" in question and question.endswith("or launch anyway.")
        assert "--force" not in question  # the console's own words, not the CLI's
        assert str(app.screen.query_one("#confirm-yes", Button).label) == "Launch anyway (y)"
        refused = of_type(messages, NewRunScreen.LaunchRefused)[-1].check.refusal
        assert refused.forceable and "78.0 GiB free" in refused.reason
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen, what="back in the editor")
        assert not of_type(messages, NewRunScreen.Launched) and not list((home / "runs").glob("*"))
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: of_type(messages, NewRunScreen.Launched), what="the launch anyway")
        launched = of_type(messages, NewRunScreen.Launched)[0]
        assert any(n.startswith("Started anyway: The estimate needs") for n in launched.notes)
        assert len(launches) == 1 and launches[0][1]["pilot"] is None


async def test_a_switch_says_what_its_state_means(home: Path) -> None:
    app = SlmtuiApp(home=home, start_screen="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(pilot)
        remote = field(screen, "model.trust_remote_code")
        assert str(remote.label) == "off (safe)" and remote.value is False
        remote.focus()
        await pilot.press("space")
        await wait_for(pilot, lambda: str(remote.label) == "ON: its code runs", what="the label to follow the switch")
        assert screen.raw["model"]["trust_remote_code"] is True
