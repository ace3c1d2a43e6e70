"""`train.report_to`: one real run mirrored to TensorBoard, MLflow and W&B (offline, local), each read back with
the tracker's own reader; and trackers that fail, at start or mid-run, while training goes on."""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.protocol import read_events
from engine.train.loop import StopFlag
from engine.train.run import execute
from engine.train.trackers import MIRRORS, PRIVATE_ENV, TensorBoardMirror, private_tracker_env
from tests.conftest import THREADS, Cli
from tests.test_engine_run import make_run
from tests.tracker_helpers import wandb_exit_codes, wandb_history
from tests.train_helpers import instruction_rows, write_jsonl

pytestmark = pytest.mark.slow

STEPS, EVAL_EVERY = 6, 3


@dataclass
class TrackedRun:
    home: Path
    run_dir: Path
    losses: dict[int, float]
    val_losses: dict[int, float]
    terminal: str


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> TrackedRun:
    """`slmtui train` in the foreground (as a user runs it) with all three trackers, offline and local."""
    home = tmp_path_factory.mktemp("trackers") / "home"
    work = home.parent / "work"
    work.mkdir()
    write_jsonl(work / "rows.jsonl", instruction_rows(40))
    spec = work / "tracked.toml"
    spec.write_text(
        f'name = "tracked"\n[model]\nname = "{tiny_model_dir}"\n[data]\npath = "rows.jsonl"\n'
        'val_fraction = 0.1\ntest_fraction = 0.1\n[train]\ndevice = "cpu"\nmicro_batch = 2\nlr = 1e-3\n'
        f'max_steps = {STEPS}\neval_every = {EVAL_EVERY}\nsave_every = 0\neval_samples = 1\n'
        'report_to = ["tensorboard", "mlflow", "wandb"]\n')
    proc = Cli(home)("train", str(spec), WANDB_MODE="offline", MLFLOW_TRACKING_URI="", **THREADS)
    runs = list((home / "runs").iterdir())
    logs = "".join((r / "engine.log").read_text()[-3000:] for r in runs if (r / "engine.log").is_file())
    assert proc.returncode == 0 and len(runs) == 1, f"{proc.stdout}\n{proc.stderr}\n{logs}"
    run_dir = runs[0]
    events = read_events(run_dir / "events.jsonl")
    return TrackedRun(home, run_dir, {e["step"]: e["loss"] for e in events if e["type"] == "metrics"},
                      {e["step"]: e["val_loss"] for e in events if e["type"] == "eval"}, proc.stdout + proc.stderr)


def test_tensorboard_holds_the_losses_read_by_its_own_reader(tracked: TrackedRun) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reader = EventAccumulator(str(tracked.run_dir / "tensorboard"))
    reader.Reload()
    train = {s.step: s.value for s in reader.Scalars("train/loss")}
    assert sorted(train) == list(range(1, STEPS + 1))
    assert all(math.isclose(train[step], loss, rel_tol=1e-6) for step, loss in tracked.losses.items())
    assert [s.step for s in reader.Scalars("eval/val_loss")] == sorted(tracked.val_losses)
    assert {"train/lr", "train/grad_norm", "eval/perplexity"} <= set(reader.Tags()["scalars"])


def test_mlflow_run_is_found_with_its_params_and_metrics(tracked: TrackedRun) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tracked.home / 'mlflow' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["slmtui"], filter_string=f"tags.mlflow.runName = '{tracked.run_dir.name}'")
    assert len(found) == 1
    row = found.iloc[0]
    assert row["status"] == "FINISHED" and row["params.train.lr"] == "0.001"
    assert row["params.train.report_to"] == "['tensorboard', 'mlflow', 'wandb']"
    assert math.isclose(row["metrics.train/loss"], tracked.losses[STEPS], rel_tol=1e-9)
    history = MlflowClient(uri).get_metric_history(row["run_id"], "train/loss")
    assert {m.step: m.value for m in history} == pytest.approx(tracked.losses)
    assert [m.step for m in MlflowClient(uri).get_metric_history(row["run_id"], "eval/val_loss")] == sorted(
        tracked.val_losses)


def test_wandb_offline_run_folder_holds_the_metrics(tracked: TrackedRun) -> None:
    (folder,) = (tracked.run_dir / "wandb").glob("offline-run-*")
    history = wandb_history(folder)
    assert history["train/loss"] == pytest.approx(tracked.losses)
    assert history["eval/val_loss"] == pytest.approx(tracked.val_losses)
    assert wandb_exit_codes(folder) == [0]  # finished as a run that completed


def test_tracker_chatter_stays_in_the_engine_log(tracked: TrackedRun) -> None:
    log = (tracked.run_dir / "engine.log").read_text()
    assert "wandb" in log and "MLflow" in log  # W&B's banner, MLflow's database set-up
    assert "wandb" not in tracked.terminal.lower() and "mlflow" not in tracked.terminal.lower()
    assert "warning" not in tracked.terminal  # every tracker started and ran to the end
    assert "Completed at step 6 of 6" in tracked.terminal


def test_tensorboard_event_files_are_readable_while_the_run_goes_on(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    mirror = TensorBoardMirror(tmp_path, "live", {"train": {"lr": 1e-3}})
    try:
        mirror.log({"train/loss": 2.5}, 1)
        reader = EventAccumulator(str(tmp_path / "tensorboard"))
        reader.Reload()
        assert [(s.step, s.value) for s in reader.Scalars("train/loss")] == [(1, 2.5)]
    finally:
        mirror.close("completed")


def test_the_trackers_stay_private_unless_the_user_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in PRIVATE_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")  # the user's choice stands
    private_tracker_env()
    assert os.environ["WANDB_MODE"] == "online"
    assert os.environ["WANDB_ERROR_REPORTING"] == "false" and os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_trackers_that_fail_never_stop_training(tmp_path: Path, tiny_model_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    class FailingTensorBoard(TensorBoardMirror):
        def log(self, values: dict[str, float], step: int) -> None:
            if step == 3:
                raise OSError(28, "No space left on device")
            super().log(values, step)

    monkeypatch.setitem(MIRRORS, "tensorboard", FailingTensorBoard)
    (tmp_path / "a-file").write_text("a file where MLflow's folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=5, eval_every=0, save_every=0,
                       report_to=["tensorboard", "mlflow", "wandb"])
    assert execute(run_dir, StopFlag()) == "completed"
    events = read_events(run_dir / "events.jsonl")
    assert [e["step"] for e in events if e["type"] == "metrics"] == [1, 2, 3, 4, 5]
    warnings = [e["text"] for e in events if e["type"] == "log" and e["level"] == "warning"]
    assert any(t.startswith("report_to 'mlflow' is skipped: it failed to start") for t in warnings), warnings
    assert any(t.startswith("report_to 'wandb' is skipped: its package is not installed") for t in warnings)
    stopped = [t for t in warnings if t.startswith("report_to 'tensorboard' stopped at step 3")]
    assert len(stopped) == 1 and "No space left on device" in stopped[0], warnings
    assert all("\n" not in t for t in warnings)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"



def test_the_mirrors_tensorboard_log_imports_back_as_the_same_curves(tracked: TrackedRun) -> None:
    from slmtui.run_compare import load_curves

    proc = Cli(tracked.home)("runs", "import", str(tracked.run_dir / "tensorboard"), "--name", "round-trip", "--json")
    assert proc.returncode == 0, proc.stderr
    imported, original = load_curves(Path(json.loads(proc.stdout)["dir"])), load_curves(tracked.run_dir)
    assert [s for s, _ in imported.train] == [s for s, _ in original.train] == list(range(1, STEPS + 1))
    assert [v for _, v in imported.train] == pytest.approx([v for _, v in original.train], rel=1e-6)
    assert [v for _, v in imported.val] == pytest.approx([v for _, v in original.val], rel=1e-6)
