"""`slmtui train --pilot` and `slmtui train --resume` through the real CLI and a real engine process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.protocol import read_events
from engine.spec import load_spec
from engine.train.loop import StopFlag, Trainer
from tests.conftest import Cli
from tests.test_runs_cli import write_spec

pytestmark = pytest.mark.slow


def test_a_pilot_predicts_the_full_run(cli: Cli, home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    spec = write_spec(tmp_path, tiny_model_dir, max_steps=40)
    proc = cli("train", str(spec), "--pilot", "0.25", OMP_NUM_THREADS="1")
    assert proc.returncode == 0, proc.stderr
    assert "Pilot prediction for the full run (40 steps)" in proc.stdout
    run_dir = next((home / "runs").iterdir())
    events = read_events(run_dir / "events.jsonl")
    started = next(e for e in events if e["type"] == "started")
    assert started["pilot"] == 0.25 and started["total_steps"] == 10  # 25% of 40 steps
    eta = next(e for e in events if e["type"] == "eta")
    assert 0 < eta["eta_low_s"] <= eta["eta_s"] <= eta["eta_high_s"] and eta["total_steps"] == 40
    assert eta["detail"]["train_seconds"] > 0 and eta["total_tokens"] > 0
    metrics = [e for e in events if e["type"] == "metrics"]
    assert metrics[0]["eta_s"] is None and metrics[-2]["eta_s"] is not None  # none until past warm-up
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["pilot_eta"]["eta_s"] == eta["eta_s"] and summary["pilot"] == 0.25
    finished = events[-1]
    assert finished["summary"]["eta"]["eta_s"] == eta["eta_s"] and "should take" in finished["summary"]["message"]
    assert cli("train", str(spec), "--pilot", "5").returncode == 1


def test_resume_through_the_cli_continues_the_same_run(cli: Cli, home: Path, tmp_path: Path, tiny_model_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.train.run import execute
    from slmtui.runs import create_run

    run_dir = create_run(load_spec(write_spec(tmp_path, tiny_model_dir, max_steps=6)), home / "runs")
    stop, original = StopFlag(), Trainer.train_step

    def stop_after_three(self: Trainer) -> Any:
        result = original(self)
        stop.requested = self.step >= 3
        return result

    monkeypatch.setattr(Trainer, "train_step", stop_after_three)
    assert execute(run_dir, stop) == "stopped"
    proc = cli("train", "--resume", run_dir.name[:15], OMP_NUM_THREADS="1")
    assert proc.returncode == 0, proc.stderr
    assert f"Resumed run {run_dir.name}" in proc.stdout and "Resumed from step 3" in proc.stdout
    assert "completed" in proc.stdout
    events = read_events(run_dir / "events.jsonl")
    assert [e["step"] for e in events if e["type"] == "metrics"] == [1, 2, 3, 4, 5, 6]
    assert [e["status"] for e in events if e["type"] == "finished"] == ["stopped", "completed"]
    assert cli.json("runs", "--json")["runs"][0]["status"] == "completed"
    again = cli("train", "--resume", "last")
    assert again.returncode == 1 and "nothing to resume" in again.stderr
