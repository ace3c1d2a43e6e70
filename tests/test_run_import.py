"""`slmtui runs import PATH`: an HF Trainer trainer_state.json or a TensorBoard log becomes a run folder that the
runs list, the curves and the journal read like any run, marked as imported; bad input gets one sentence."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine.commands.import_run import read_external
from engine.external.log import ExternalLogError
from engine.external.run_folder import write_imported_run
from engine.protocol import read_events
from slmtui.reconcile import reconcile
from slmtui.run_compare import load_curves, read_spec
from slmtui.runs import ResumeRefused, list_runs, resume
from slmtui.store import Store
from tests.conftest import Cli
from tests.external_logs import (
    EVAL_EVERY,
    LOG_EVERY,
    MAX_STEPS,
    eval_loss,
    train_loss,
    write_tensorboard_log,
    write_trainer_state,
)

LOGGED = list(range(LOG_EVERY, MAX_STEPS + 1, LOG_EVERY))
EVALUATED = list(range(EVAL_EVERY, MAX_STEPS + 1, EVAL_EVERY))


def test_a_trainer_state_is_listed_as_an_imported_run(tmp_path: Path, home: Path, cli: Cli) -> None:
    source = write_trainer_state(tmp_path / "hf-output")
    proc = cli("runs", "import", str(source))
    assert proc.returncode == 0, proc.stderr
    (run,) = cli.json("runs", "--json")["runs"]
    assert run["id"].endswith("-hf-output") and run["id"] in proc.stdout
    assert run["status"] == "imported" and run["origin"]["format"] == "trainer_state"
    assert run["origin"]["path"] == str(source.resolve())
    assert (run["step"], run["total_steps"]) == (60, 60)
    assert run["latest"]["loss"] == round(train_loss(60), 4) and run["best"]["val_loss"] == eval_loss(60)
    assert math.isclose(run["ended_t"] - run["started_t"], 95.25, abs_tol=0.01)  # the Trainer's train_runtime
    events = read_events(Path(run["dir"]) / "events.jsonl")
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [m["step"] for m in metrics] == LOGGED  # the closing summary's mean train_loss is no step's
    assert metrics[1] == {**metrics[1], "loss": round(train_loss(10), 4), "lr": pytest.approx(5e-5 * (1 - 10 / 60)),
                          "epoch": pytest.approx(10 / 30), "grad_norm": pytest.approx(1.2)}
    assert [(e["step"], e["val_loss"]) for e in events if e["type"] == "eval"] == [(s, eval_loss(s)) for s in EVALUATED]
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "imported"
    spec = read_spec(Path(run["dir"]))
    assert spec["imported"]["format"] == "trainer_state" and spec["train"] == {
        "max_steps": 60, "micro_batch": 8, "epochs": 2, "eval_every": 20, "save_every": 30, "log_every": 5}
    assert "method" not in spec  # no defaults pretending to be its settings
    listing = cli("runs").stdout
    assert "imported" in listing and f"imported from {source.resolve()}" in listing
    notes = [e.text for e in Store(home).entries() if e.run == run["id"]]
    assert notes == [f"Imported run, trained elsewhere: read from {source.resolve()} (trainer_state)."]
    with pytest.raises(ResumeRefused, match="imported"):
        resume(Path(run["dir"]), home)
    attached = cli("attach", run["id"])
    said = " ".join(attached.stdout.split())  # rich folds long lines at 80 columns
    assert attached.returncode == 0 and "trained elsewhere: imported from" in said
    assert f"run {run['id']} imported. Imported from" in said
    exported = cli("export", run["id"], str(tmp_path / "out"))
    assert exported.returncode == 1 and "trained elsewhere and imported" in exported.stderr
    assert len(exported.stderr.strip().splitlines()) == 1


def test_a_tensorboard_log_folder_is_imported_with_its_times(tmp_path: Path, home: Path, cli: Cli) -> None:
    logs = write_tensorboard_log(tmp_path / "hf-output")
    proc = cli("runs", "import", str(logs), "--name", "from-tensorboard", "--json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr  # TensorBoard's chatter stays out
    run = json.loads(proc.stdout)
    assert run["id"].endswith("-from-tensorboard") and run["status"] == "imported"
    assert run["origin"]["format"] == "tensorboard" and run["origin"]["path"].endswith("Dec02_12-00-00_gpu-box")
    curves = load_curves(Path(run["dir"]), points=1000)
    assert [step for step, _ in curves.train] == LOGGED
    assert all(math.isclose(loss, train_loss(int(step)), rel_tol=1e-6) for step, loss in curves.train)
    assert [step for step, _ in curves.val] == EVALUATED
    events = read_events(Path(run["dir"]) / "events.jsonl")
    times = [e["t"] for e in events if e["type"] == "metrics"]
    assert times == sorted(times) and times[-1] - times[0] < 60 and times[0] > 1.7e9  # TensorBoard's wall times


@pytest.mark.parametrize(("content", "says"), [
    ("not json {", "is not JSON"),
    ('{"global_step": 3}', "has no log_history list, so it is not a trainer_state.json"),
    ('[{"loss": 1.0}]', "has no log_history list"),
    ('{"log_history": [{"epoch": 1.0, "step": 5, "train_runtime": 3.0}]}', "has no training or evaluation loss"),
    (b"\xff\xfe\x00\x01", "is not text"),
])
def test_a_file_that_is_no_trainer_state_gets_one_sentence(tmp_path: Path, content: str | bytes, says: str) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ExternalLogError, match=says) as caught:
        read_external(path)
    assert "\n" not in str(caught.value)


def test_folders_without_a_log_get_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExternalLogError, match="holds no TensorBoard event files"):
        read_external(tmp_path / "empty")
    write_tensorboard_log(tmp_path / "a")
    write_tensorboard_log(tmp_path / "b")
    with pytest.raises(ExternalLogError, match=r"holds 2 TensorBoard runs .*; import one of those folders"):
        read_external(tmp_path)


def test_the_cli_says_what_is_wrong_and_creates_nothing(tmp_path: Path, home: Path, cli: Cli) -> None:
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "missing.json"):
        proc = cli("runs", "import", str(path))
        assert proc.returncode == 1 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith(f"slmtui: {path} ") and "give an HF Trainer trainer_state.json" in proc.stderr
    assert list_runs(home / "runs") == []


def test_an_imported_run_is_indexed_beside_the_runs_trained_here(tmp_path: Path, home: Path) -> None:
    folder = home / "runs" / "20261126-080000-elsewhere"
    (home / "runs").mkdir(parents=True)
    write_imported_run(read_external(write_trainer_state(tmp_path)), folder, "elsewhere")
    store = Store(home)
    reconcile(store, home / "runs")
    (record,) = store.runs()
    assert (record.id, record.status, record.model) == (folder.name, "imported", "")
    assert record.best["val_loss"] == eval_loss(60)
