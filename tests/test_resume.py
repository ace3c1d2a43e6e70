"""Resume, checkpoint care and early stopping through `engine.train.run.execute` on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.diskplan import DISK_MARGIN_BYTES, checkpoint_bytes, disk_problem, plan_disk
from engine.protocol import read_events
from engine.train.checkpoint import list_checkpoints
from engine.train.loop import StopFlag, Trainer
from engine.train.run import execute
from tests.test_engine_run import make_run


def by_type(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["type"] == kind]


@pytest.mark.parametrize("packing", ["off", "auto"])
def test_resume_falls_back_past_a_corrupt_checkpoint_and_continues_the_curve(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, packing: str) -> None:
    settings: dict[str, Any] = {"max_steps": 8, "eval_every": 0, "save_every": 2, "keep_checkpoints": 2,
                                "packing": packing, "micro_batch_tokens": 1024 if packing == "auto" else 0}
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    reference = make_run(tmp_path / "ref", tiny_model_dir, **settings)
    assert execute(reference, StopFlag()) == "completed"
    expected = {m["step"]: m["loss"] for m in by_type(reference, "metrics")}

    run_dir = make_run(tmp_path / "cut", tiny_model_dir, **settings)
    stop = StopFlag()
    original = Trainer.train_step

    def stop_after_five(self: Trainer) -> Any:
        result = original(self)
        if self.step == 5:
            stop.requested, stop.reason = True, "the test"
        return result

    monkeypatch.setattr(Trainer, "train_step", stop_after_five)
    assert execute(run_dir, stop) == "stopped"
    monkeypatch.setattr(Trainer, "train_step", original)
    assert [s for s, _, _ in list_checkpoints(run_dir)] == [4, 5]  # keep_checkpoints = 2 pruned step 2
    (run_dir / "checkpoints" / "step-000005" / "state.pt").write_bytes(b"not a torch file")
    before = read_events(run_dir / "events.jsonl")
    first_start = json.loads((run_dir / "summary.json").read_text())["started"]

    assert execute(run_dir, StopFlag(), resume=True) == "completed"
    events = read_events(run_dir / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(len(events)))  # one history, numbering continues
    after = events[len(before):]
    texts = [e["text"] for e in after if e["type"] == "log"]
    assert any("step-000005 cannot be read" in t for t in texts), texts
    assert any(t.startswith("Resumed from step 4") for t in texts), texts
    assert [e["resumed_from"] for e in after if e["type"] == "started"] == [4]
    assert [e["packing"]["on"] for e in after if e["type"] == "started"] == [packing == "auto"]
    resumed = {e["step"]: e["loss"] for e in after if e["type"] == "metrics"}
    assert sorted(resumed) == [5, 6, 7, 8]
    for step, loss in resumed.items():  # same data order, same weights and optimizer: the same curve
        assert loss == pytest.approx(expected[step], rel=1e-4, abs=1e-5), step
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == 8 and summary["eta_s"] == 0.0
    assert summary["started"] == first_start and summary["best"]["loss"] <= min(expected.values()) + 1e-5


def test_early_stopping_on_validation_loss(tmp_path: Path, tiny_model_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.train.loop as loop

    losses = iter([2.0, 2.5, 2.4, 1.0, 1.0, 1.0])
    monkeypatch.setattr(loop, "validation_loss", lambda *a, **k: next(losses))
    monkeypatch.setattr(loop, "generate_samples", lambda *a, **k: [])
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=50, eval_every=1, save_every=0,
                       early_stopping_patience=2)
    assert execute(run_dir, StopFlag()) == "completed"
    assert [m["step"] for m in by_type(run_dir, "metrics")][-1] == 3
    assert any("has not improved for 2 evaluations" in e["text"] for e in by_type(run_dir, "log"))
    checkpoints = list_checkpoints(run_dir)
    assert [(s, v) for s, _, v in checkpoints] == [(3, 2.4)]  # the stop's checkpoint, ranked by its own eval


def test_a_run_that_will_not_fit_on_disk_is_refused_with_numbers(tmp_path: Path, tiny_model_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import engine.diskplan as diskplan

    real = shutil.disk_usage
    monkeypatch.setattr(diskplan.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=DISK_MARGIN_BYTES // 2))
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=4)
    assert execute(run_dir, StopFlag()) == "failed"
    message = by_type(run_dir, "finished")[0]["summary"]["message"]
    assert "GiB" in message and "is free" in message and "keep_checkpoints" in message
    assert not by_type(run_dir, "metrics")


@pytest.mark.parametrize(("steps", "save_every", "keep", "best", "live"), [
    (1000, 100, 2, True, 4),    # two kept, the best, and the one written before pruning
    (1000, 100, 0, False, 9),   # keep all: saves at 100..900 (the end writes final weights)
    (150, 100, 3, True, 1),     # fewer saves than the bound
    (None, 100, 2, False, 3),   # unknown length: the bound
    (None, 100, 0, False, 0),   # unknown length, keep all: left to the engine
    (1000, 0, 2, True, 0),      # no checkpoints
])
def test_disk_plan_counts_the_checkpoints_alive_at_once(steps: int | None, save_every: int, keep: int,
                                                        best: bool, live: int) -> None:
    plan = plan_disk(10_000_000, 100_000, False, total_steps=steps, save_every=save_every, keep_checkpoints=keep,
                     keep_best=best)
    assert plan.checkpoints == live
    assert plan.checkpoint_bytes == checkpoint_bytes(10_000_000, 100_000, False) > 100_000 * 12
    assert plan.total_bytes == live * plan.checkpoint_bytes + plan.final_bytes
    full = plan_disk(10_000_000, 10_000_000, True, total_steps=steps, save_every=save_every,
                     keep_checkpoints=keep, keep_best=best)
    assert full.checkpoint_bytes > 10_000_000 * 12 and full.final_bytes >= 10_000_000 * 4
    assert disk_problem(plan, Path("/"), free=plan.total_bytes + DISK_MARGIN_BYTES) is None
    assert "only 0.00 GiB is free" in str(disk_problem(plan, Path("/"), free=1000))
