"""A whole run in-process through `engine.train.run.execute`: data, model, events, summary, checkpoints."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from engine.protocol import EVENT_FIELDS, read_events
from engine.spec import RunSpec, dump_spec
from engine.train.checkpoint import list_checkpoints, load_state
from engine.train.loop import ControlInbox, StopFlag
from engine.train.run import execute
from tests.train_helpers import instruction_rows, write_jsonl


def make_run(tmp_path: Path, model_dir: Path, **train: object) -> Path:
    spec = RunSpec(name="inproc")
    spec.model.name = str(model_dir)
    spec.data.path = str(write_jsonl(tmp_path / "rows.jsonl", instruction_rows(48)))
    spec.data.val_fraction = spec.data.test_fraction = 0.1
    spec.train.device = "cpu"
    spec.train.micro_batch = 4
    spec.train.lr = 5e-3
    for key, value in train.items():
        setattr(spec.train, key, value)
    run_dir = tmp_path / "20260101-000000-inproc"
    run_dir.mkdir()
    (run_dir / "spec.toml").write_text(dump_spec(spec))
    return run_dir


def test_a_lora_run_reports_everything(tmp_path: Path, tiny_model_dir: Path) -> None:
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=12, eval_every=5, save_every=5, keep_checkpoints=1)
    assert execute(run_dir, StopFlag()) == "completed"
    events = read_events(run_dir / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(len(events)))
    by_type: dict[str, list[dict]] = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e)
        assert set(EVENT_FIELDS.get(e["type"], ())) <= set(e), e["type"]
    started = by_type["started"][0]
    assert started["precision"] == "fp32" and started["device"] == "cpu"
    assert 0 < started["params_trainable"] < started["params_total"]
    assert started["env"]["torch"] and started["env"]["transformers"] and started["env"]["peft"]
    assert len(started["data"]["fingerprint"]) >= 16 and started["data"]["train"] > 30
    scrubbed = started["data"]["scrub_changes"]
    assert scrubbed["rows"] >= started["data"]["train"] and scrubbed["rows_changed"] == 0 and scrubbed["warning"] == ""
    metrics = by_type["metrics"]
    assert [m["step"] for m in metrics] == list(range(1, 13))
    assert metrics[-1]["loss"] < metrics[0]["loss"] - 0.5
    assert metrics[0]["mem_peak_gib"] is None  # the CPU has no torch memory figures
    assert 0.05 < metrics[-1]["rss_gib"] <= metrics[-1]["rss_peak_gib"] < 64  # but the engine's own RAM
    assert [e["step"] for e in by_type["eval"]] == [5, 10, 12]
    assert by_type["eval"][-1]["samples"] and by_type["eval"][-1]["perplexity"] > 1
    assert by_type["finished"][0]["status"] == "completed"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == 12 and summary["best"]["val_loss"] > 0
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert [step for step, _, _ in list_checkpoints(run_dir)] == [10]  # keep_checkpoints = 1
    state = load_state(run_dir / "checkpoints" / "step-000010")
    assert state["step"] == 10 and state["optimizer"]["state"] and 36 < state["stream"]["examples_seen"] <= 40


def test_a_bad_model_ends_failed_with_one_sentence(tmp_path: Path, tiny_model_dir: Path) -> None:
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=2)
    text = (run_dir / "spec.toml").read_text().replace(str(tiny_model_dir), str(tmp_path / "gone"))
    (run_dir / "spec.toml").write_text(text)
    assert execute(run_dir, StopFlag()) == "failed"
    finished = read_events(run_dir / "events.jsonl")[-1]
    assert finished["status"] == "failed"
    assert "model.name" in finished["summary"]["message"] and "\n" not in finished["summary"]["message"]


def test_sigterm_sets_the_stop_flag() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    flag = StopFlag()
    try:
        flag.install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.requested and flag.reason == "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_control_inbox_reads_only_complete_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "control.jsonl"
    inbox = ControlInbox(path)
    assert inbox.poll() == []
    path.write_text('{"command": "eval"}\n{"command": "st')
    assert [c["command"] for c in inbox.poll()] == ["eval"]
    with open(path, "a") as fh:
        fh.write('op"}\nnot json\n')
    assert [c["command"] for c in inbox.poll()] == ["stop"]
    assert inbox.poll() == []


@pytest.mark.parametrize("keep_best", [True, False])
def test_pruning_keeps_the_newest_and_the_best(tmp_path: Path, keep_best: bool) -> None:
    from engine.train.checkpoint import META_FILE, prune_checkpoints

    for step, loss in ((1, 0.5), (2, 0.9), (3, 0.8), (4, 0.7)):
        folder = tmp_path / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        (folder / META_FILE).write_text(json.dumps({"step": step, "val_loss": loss}))
    prune_checkpoints(tmp_path, keep_last=2, keep_best=keep_best)
    assert [s for s, _, _ in list_checkpoints(tmp_path)] == ([1, 3, 4] if keep_best else [3, 4])


def test_a_program_error_keeps_its_traceback_and_ends_failed(tmp_path: Path, tiny_model_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import engine.train.run as run_module

    def broken_fit(*args: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(run_module, "fit", broken_fit)
    run_dir = make_run(tmp_path, tiny_model_dir, max_steps=2)
    assert execute(run_dir, StopFlag()) == "failed"
    finished = read_events(run_dir / "events.jsonl")[-1]
    assert finished["summary"]["message"] == "The engine failed unexpectedly (RuntimeError: boom); see engine.log."
    assert "Traceback" in capsys.readouterr().err
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
