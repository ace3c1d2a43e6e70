"""Races and vanishing files around one run (issue 14, Runs): two resumes at once, a stop after a torn control
line, a run folder deleted under its engine, an event file deleted and a run folder made unwritable mid-run.

The fast tests build run folders by hand (a live pid is a child process of the test); the slow ones start real
detached engines on the tiny model. Waits poll files or processes with a deadline, never fixed sleeps.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.protocol import EventWriter, append_control, read_events, write_json_atomic
from engine.runlock import LOCK_FILE, LOCKED_EXIT, RunLock
from engine.train.loop import ControlInbox
from slmtui.monitor_feed import MonitorFeed
from slmtui.runs import ResumeRefused, follow, read_run, request, resume
from tests.conftest import REPO, THREADS, Cli, cli_env
from tests.fault_helpers import engine_pid, events_of, kill_quietly, wait_event, wait_gone, write_spec


@pytest.fixture
def stand_in() -> Iterator[subprocess.Popen[bytes]]:
    """A live process to stand in for an engine (its pid goes in a hand-made pid file); killed at the end."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def hand_made_run(runs: Path, name: str, pid: int, status: str = "running", steps: int = 4) -> Path:
    """A run folder as an engine leaves it mid-run: spec, pid file, `steps` metrics, a checkpoint folder."""
    run_dir = runs / f"20260101-000000-{name}"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text('name = "x"\n[model]\nname = "m"\n[data]\npath = "d"\n')
    (run_dir / "engine.pid").write_text(json.dumps({"pid": pid, "create_time": psutil.Process(pid).create_time()
                                                    if psutil.pid_exists(pid) else 1.0}))
    with EventWriter(run_dir / "events.jsonl", run=run_dir.name) as writer:
        writer.emit("started", total_steps=60, precision="fp32", device="cpu", params_total=10, params_trainable=1)
        for step in range(1, steps + 1):
            writer.emit("metrics", step=step, loss=2.0, lr=1e-3, tokens_per_s=10.0)
    (run_dir / "checkpoints" / "step-000002").mkdir(parents=True)
    (run_dir / "checkpoints" / "step-000002" / "meta.json").write_text('{"step": 2, "val_loss": null}')
    write_json_atomic(run_dir / "summary.json", {"run": run_dir.name, "status": status, "step": steps,
                                                 "total_steps": 60, "started": 1.0, "latest": {}, "best": {}})
    return run_dir


# ---------------------------------------------------------------- a stop after a torn control line


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200).filter(lambda junk: b"\n" not in junk))
def test_a_stop_after_a_torn_control_line_is_obeyed(junk: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        (run_dir / "control.jsonl").write_bytes(junk)
        append_control(run_dir, "stop")
        commands = [entry["command"] for entry in ControlInbox(run_dir / "control.jsonl").poll()]
        assert commands[-1:] == ["stop"]


def test_slmtui_stop_after_a_torn_control_line_reaches_the_engine(cli: Cli, home: Path,
                                                                  stand_in: subprocess.Popen[bytes]) -> None:
    run_dir = hand_made_run(home / "runs", "torn-control", stand_in.pid)
    (run_dir / "control.jsonl").write_bytes(b'{"command": "checkpoint", "t": 1.0}\n\x00\xff{"comm')
    inbox = ControlInbox(run_dir / "control.jsonl")
    assert [e["command"] for e in inbox.poll()] == ["checkpoint"]  # the engine has read up to the torn line
    stopped = cli("stop", run_dir.name)
    assert stopped.returncode == 0 and "Asked run" in stopped.stdout
    assert [e["command"] for e in inbox.poll()] == ["stop"]


# ---------------------------------------------------------------- one engine per run folder


def test_an_engine_on_a_locked_run_folder_says_who_holds_it_and_writes_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "20260101-000000-locked"
    run_dir.mkdir()
    (run_dir / "spec.toml").write_text('name = "x"\n[model]\nname = "m"\n[data]\npath = "d"\n')
    lock = RunLock(run_dir)
    lock.acquire()  # this test process plays the engine that holds the run
    try:
        for args in ([], ["--resume"]):
            done = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir), *args], env=cli_env(tmp_path),
                                  capture_output=True, text=True, timeout=120, cwd=REPO)
            assert done.returncode == LOCKED_EXIT, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and f"engine process {os.getpid()}" in lines[0] and "Traceback" not in done.stderr
            assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE, "spec.toml"]
    finally:
        lock.release()


def test_a_resume_that_finds_the_run_locked_says_who_holds_it(cli: Cli, home: Path) -> None:
    run_dir = hand_made_run(home / "runs", "held", 2**22 + 11, status="stopped")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    lock = RunLock(run_dir)
    lock.acquire()  # an engine that has just taken the run (its pid file not written yet)
    try:
        with pytest.raises(ResumeRefused, match=f"already being trained by engine process {os.getpid()}"):
            resume(run_dir)
        resumed = cli("train", "--resume", run_dir.name, "--detach")
        assert resumed.returncode == 1 and "Resumed" not in resumed.stdout and "Traceback" not in resumed.stderr
        assert f"already being trained by engine process {os.getpid()}" in resumed.stderr
        # the refused engines wrote nothing but their sentence in engine.log
        after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != "engine.log"}
        assert after == {**before, LOCK_FILE: f"{os.getpid()}\n".encode()}
    finally:
        lock.release()


@pytest.mark.slow
def test_two_resumes_at_once_start_one_engine(cli: Cli, home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    spec = write_spec(tmp_path, tiny_model_dir, name="twice", save_every=2)
    run_id = cli("train", str(spec), "--detach", check=True, **THREADS).stdout.strip().splitlines()[-1]
    run_dir = home / "runs" / run_id
    pid = None
    try:
        pid = engine_pid(run_dir)
        wait_event(run_dir, lambda e: e["type"] == "checkpoint")
        request(run_dir, "stop")
        wait_event(run_dir, lambda e: e["type"] == "finished")
        wait_gone(pid)
        seen = events_of(run_dir)[-1]["seq"]
        argv = [sys.executable, "-m", "slmtui", "train", "--resume", run_id, "--detach"]
        both = [subprocess.Popen(argv, env=cli_env(home, **THREADS), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd=REPO) for _ in range(2)]
        answers = [(*proc.communicate(timeout=120), proc.returncode) for proc in both]
        pid = engine_pid(run_dir)
        resumed = [a for a in answers if a[2] == 0]
        refused = [a for a in answers if a[2] != 0]
        assert len(resumed) == 1 and len(refused) == 1, answers
        assert "Resumed run" in resumed[0][0] and "Resumed" not in refused[0][0]
        # the loser either met the winner's engine at the lock or, starting later, already saw the run running
        assert (f"already being trained by engine process {pid}" in refused[0][1]
                or refused[0][1] == f"slmtui: Run {run_id} is still running; stop it first or attach to it.\n"), answers
        wait_event(run_dir, lambda e: e["type"] == "metrics", after=seen)
        request(run_dir, "stop")
        wait_event(run_dir, lambda e: e["type"] == "finished", after=seen)
        wait_gone(pid)
        events = read_events(run_dir / "events.jsonl")
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(len(seqs)))  # one writer: no duplicate seq
        later = [e["type"] for e in events if e["seq"] > seen]
        assert later.count("started") == 1 and later.count("finished") == 1
        assert read_run(run_dir).status == "stopped"
    finally:
        kill_quietly(pid)


# ---------------------------------------------------------------- a run folder deleted under its engine


@pytest.mark.slow
def test_an_engine_whose_run_folder_is_deleted_stops_at_once(cli: Cli, home: Path, tmp_path: Path,
                                                             tiny_model_dir: Path) -> None:
    spec = write_spec(tmp_path, tiny_model_dir, name="orphan", save_every=2)
    run_id = cli("train", str(spec), "--detach", check=True, **THREADS).stdout.strip().splitlines()[-1]
    run_dir = home / "runs" / run_id
    pid = None
    try:
        wait_event(run_dir, lambda e: e["type"] == "checkpoint")
        pid = engine_pid(run_dir)
        # `rm -rf RUN`, made atomic: a plain rmtree races the engine's own writes ("Directory not empty")
        trash = tmp_path / "trash"
        run_dir.rename(trash)
        shutil.rmtree(trash)
        wait_gone(pid, timeout=60)
        assert not run_dir.exists(), sorted(run_dir.rglob("*"))  # nothing recreated (checkpoints/, summary.json)
        assert cli.json("runs", "--json")["runs"] == []
    finally:
        kill_quietly(pid)


def test_a_write_that_recreated_a_deleted_run_folder_is_taken_back(tmp_path: Path) -> None:
    """The window a control poll cannot close: the folder goes while a save that makes its parent folders
    (save_pretrained) is under way. What the save recreated goes; anything else stays."""
    from engine.runlock import RunFolderGone, writing_into

    run_dir = tmp_path / "20260101-000000-window"
    step = run_dir / "checkpoints" / "step-000004.tmp"
    for someone_else in (False, True):
        run_dir.mkdir()
        (run_dir / "spec.toml").write_text('name = "x"\n')
        with pytest.raises(RunFolderGone), writing_into(run_dir, step):
            shutil.rmtree(run_dir)
            if someone_else:  # a new folder of the same name, made by the user meanwhile
                run_dir.mkdir()
                (run_dir / "notes.txt").write_text("mine")
            (step / "adapter").mkdir(parents=True)  # what save_pretrained does
            (step / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
        if someone_else:
            assert sorted(p.name for p in run_dir.rglob("*")) == ["notes.txt"]
            shutil.rmtree(run_dir)
        else:
            assert not run_dir.exists()
    with pytest.raises(RunFolderGone), writing_into(run_dir, step):  # gone before: the write never starts
        raise AssertionError("the write ran")
    run_dir.mkdir()  # a folder without a spec (a bare checkpoint folder in tests) that stays: writes go on
    with writing_into(run_dir, step):
        step.mkdir(parents=True)
    assert step.is_dir()


@pytest.mark.slow
def test_a_run_folder_deleted_while_the_model_loads_is_never_recreated(tmp_path: Path, tiny_model_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The resume case: `rm -rf RUN` lands while the engine is still loading (before its first step)."""
    import torch

    import engine.train.run as run
    from engine.spec import RunSpec, dump_spec
    from engine.train.loop import StopFlag

    spec = RunSpec(name="vanishing")
    spec.model.name = str(tiny_model_dir)
    spec.data.path = str(tmp_path / "rows.jsonl")
    write_jsonl_rows(tmp_path / "rows.jsonl")
    spec.train.device, spec.train.micro_batch, spec.train.max_steps, spec.train.save_every = "cpu", 4, 6, 2
    run_dir = tmp_path / "20260101-000000-vanishing"
    run_dir.mkdir()
    (run_dir / "spec.toml").write_text(dump_spec(spec))
    real_load = run.load_for_training

    def load_then_vanish(*args: object, **kwargs: object) -> object:
        loaded = real_load(*args, **kwargs)  # type: ignore[arg-type]
        shutil.rmtree(run_dir)
        return loaded

    monkeypatch.setattr(run, "load_for_training", load_then_vanish)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run.execute(run_dir, StopFlag(), resume=True) == "gone"
    finally:
        torch.set_num_threads(threads)
    assert not run_dir.exists()


def write_jsonl_rows(path: Path) -> None:
    from tests.train_helpers import instruction_rows, write_jsonl

    write_jsonl(path, instruction_rows(40))


# ---------------------------------------------------------------- wrongly "crashed"


def test_a_deleted_event_file_ends_followers_on_the_summarys_status(cli: Cli, home: Path,
                                                                    stand_in: subprocess.Popen[bytes]) -> None:
    run_dir = hand_made_run(home / "runs", "no-events", stand_in.pid)
    events = follow(run_dir, poll_s=0.02)
    assert [next(events)["type"] for _ in range(5)] == ["started"] + ["metrics"] * 4
    feed = MonitorFeed(liveness_s=0.0)
    history = feed.watch(run_dir)
    for _ in range(10):  # the summary, then the history: a few passes, no waiting
        if not feed.poll() and history.loaded:
            break
    assert history.view().step == 4
    # mid-run, events.jsonl is deleted; the engine finishes (its `finished` event goes to the deleted file)
    (run_dir / "events.jsonl").unlink()
    write_json_atomic(run_dir / "summary.json", {"run": run_dir.name, "status": "completed", "step": 60,
                                                 "total_steps": 60, "message": "Completed at step 60 of 60."})
    stand_in.kill()
    stand_in.wait()
    last = list(events)[-1]
    assert (last["type"], last["status"], last["summary"]["message"]) == ("finished", "completed",
                                                                           "Completed at step 60 of 60.")
    feed.poll()
    assert (history.view().status, history.view().message) == ("completed", "Completed at step 60 of 60.")
    attached = cli("attach", run_dir.name)
    assert attached.returncode == 0 and "completed" in attached.stdout and "crashed" not in attached.stdout
    assert cli.json("runs", "--json")["runs"][0]["status"] == "completed"


@pytest.mark.slow
def test_a_run_folder_made_unwritable_ends_in_one_sentence(tmp_path: Path, tiny_model_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Root ignores permission bits, so the refused writes are injected: from step 3 on, every new file in the
    run folder (the summary, a checkpoint) fails as an unwritable folder fails; the event file, open before,
    still takes appends."""
    import torch

    import engine.train.checkpoint as checkpoint
    from engine.train.reporting import Reporter
    from tests.train_helpers import execute_on_one_thread, write_small_run

    run_dir = write_small_run(tmp_path, tiny_model_dir, "unwritable")
    (run_dir / "engine.pid").write_text(json.dumps({"pid": 2**22 + 13, "create_time": 1.0}))  # ended since
    armed: list[bool] = []

    def refuse(path: object) -> PermissionError:
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    real_emit, real_write, real_save = Reporter.emit, Reporter.write_summary, torch.save

    def emit(self: Reporter, type: str, **fields: object) -> dict[str, object]:
        event = real_emit(self, type, **fields)
        if type == "metrics" and fields["step"] == 3:
            armed.append(True)
        return event

    def write_summary(self: Reporter, durable: bool = False) -> None:
        if armed:
            raise refuse(self.run_dir / ".summary.json.tmp")
        real_write(self, durable)

    def save(obj: object, path: Path) -> None:
        if armed:
            raise refuse(path)
        real_save(obj, path)

    monkeypatch.setattr(Reporter, "emit", emit)
    monkeypatch.setattr(Reporter, "write_summary", write_summary)
    monkeypatch.setattr(checkpoint.torch, "save", save)
    assert execute_on_one_thread(run_dir) == "failed"
    finished = read_events(run_dir / "events.jsonl")[-1]
    message = finished["summary"]["message"]
    assert finished["type"] == "finished" and finished["status"] == "failed"
    assert message == (f"The run folder {run_dir} became unwritable (permission denied), so the run stopped; "
                       "fix its permissions and resume it.")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"  # its last write failed
    info = read_run(run_dir)
    assert (info.status, info.message) == ("failed", message)



@pytest.mark.parametrize(("exc", "unwritable"), [
    (PermissionError(errno.EACCES, "Permission denied", "/runs/r/summary.json"), True),
    (OSError(errno.EROFS, "Read-only file system", "/runs/r/checkpoints/step-000004.tmp"), True),
    (PermissionError(errno.EACCES, "Permission denied"), True),  # a library that dropped the file name
    (PermissionError(errno.EACCES, "Permission denied", "/models/m/model.safetensors"), False),  # a model
    (OSError(errno.ENOSPC, "No space left on device", "/runs/r/summary.json"), False),  # the disk-full path's
])
def test_an_unwritable_run_folder_is_told_from_other_errors(exc: OSError, unwritable: bool) -> None:
    from engine.train.diskfull import is_unwritable

    wrapped = RuntimeError("while saving")
    wrapped.__cause__ = exc
    assert is_unwritable(exc, Path("/runs/r")) is unwritable and is_unwritable(wrapped, Path("/runs/r")) is unwritable
