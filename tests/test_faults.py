"""Faults a run must survive: the SSH link dropping, SIGKILL of the engine, a full disk, torn event files.

Real processes throughout (the CLI, a detached engine, the console in tmux); waits poll files, never sleep.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.protocol import EventWriter, read_events
from engine.train.checkpoint import list_checkpoints, load_state
from slmtui.runs import read_run, request
from tests.conftest import THREADS, Cli, cli_env
from tests.console.tmux_driver import TmuxConsole
from tests.fault_helpers import engine_pid, events_of, kill_quietly, wait_event, wait_gone, write_spec

pytestmark = pytest.mark.slow


def assert_checkpoint_loads(folder: Path) -> None:
    """A checkpoint folder is whole: meta, training state and adapter weights all load."""
    from safetensors.torch import load_file

    meta = json.loads((folder / "meta.json").read_text())
    state = load_state(folder)
    assert state["step"] == meta["step"] and state["optimizer"]["state"]
    assert load_file(folder / "adapter" / "adapter_model.safetensors")


def assert_events_parse(run_dir: Path, max_unreadable: int = 0) -> list[dict]:
    events = read_events(run_dir / "events.jsonl")
    unreadable = [e for e in events if e.get("seq") == -1]
    assert len(unreadable) <= max_unreadable, unreadable
    seqs = [e["seq"] for e in events if e.get("seq") != -1]
    assert seqs == list(range(len(seqs)))
    return events


@pytest.mark.tmux
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_hangup_and_sigkill_of_the_console_leave_the_engine_training_and_sigkill_of_the_engine_resumes(
        cli: Cli, home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    spec = write_spec(tmp_path, tiny_model_dir, name="hangup", save_every=3)
    # the SSH case: `slmtui train` in the foreground of a terminal that goes away
    terminal = TmuxConsole(home, args=("train", str(spec)))
    pid = None
    try:
        terminal.wait_until(lambda s: "loss" in s, timeout=120, what="training progress in the terminal")
        run_dir = next((home / "runs").iterdir())
        pid = engine_pid(run_dir)
        terminal.close()  # tmux kills the session: SIGHUP to the foreground process group
        assert not terminal.alive()
        seen = events_of(run_dir)[-1]["seq"]
        wait_event(run_dir, lambda e: e["type"] == "metrics", after=seen + 2, timeout=60)
        # the console, open on the same run, hung up too
        console = TmuxConsole(home)
        console.wait_until(lambda s: "Journal" in s, what="the console on screen")
        console.close()
        seen = events_of(run_dir)[-1]["seq"]
        wait_event(run_dir, lambda e: e["type"] == "metrics", after=seen + 2, timeout=60)
        checkpoint = wait_event(run_dir, lambda e: e["type"] == "checkpoint")
        assert read_run(run_dir).status == "running"
        # a follower killed outright (SIGKILL): training goes on
        follower = subprocess.Popen([sys.executable, "-m", "slmtui", "attach", run_dir.name],
                                    env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert follower.stdout is not None and follower.stdout.readline()  # it is following
        follower.kill()
        follower.wait()
        seen = events_of(run_dir)[-1]["seq"]
        wait_event(run_dir, lambda e: e["type"] == "metrics", after=seen + 2, timeout=60)

        seen = events_of(run_dir)[-1]["seq"]
        wait_event(run_dir, lambda e: e["type"] == "metrics", after=seen)
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        listed = cli.json("runs", "--json")["runs"]
        assert [(r["id"], r["status"]) for r in listed] == [(run_dir.name, "crashed")]
        found = list_checkpoints(run_dir)
        assert found and found[0][0] >= checkpoint["step"]
        for _, folder, _ in found:
            assert_checkpoint_loads(folder)
        assert_events_parse(run_dir)
        # reopening shows every event: attach replays the whole history and ends on the crash
        replay = cli("attach", run_dir.name)
        assert replay.returncode == 1 and "crashed" in replay.stdout and "Traceback" not in replay.stderr

        # and the crashed run resumes from its newest checkpoint
        seen = events_of(run_dir)[-1]["seq"]
        cli("train", "--resume", run_dir.name, "--detach", check=True, **THREADS)
        started = wait_event(run_dir, lambda e: e["type"] == "started", after=seen)
        pid = engine_pid(run_dir)
        assert started["resumed_from"] == found[-1][0]
        wait_event(run_dir, lambda e: e["type"] == "metrics" and e["step"] > found[-1][0], after=seen)
        request(run_dir, "stop")
        assert wait_event(run_dir, lambda e: e["type"] == "finished", after=seen)["status"] == "stopped"
        assert_events_parse(run_dir)
    finally:
        terminal.close()
        kill_quietly(pid)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs (root only; skipped where mounting is not allowed), 2 GiB at first so the pre-launch disk
    checks pass; `shrink` makes it small later. A tmpfs takes memory only for what is written."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2g,mode=0700", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def shrink(disk: Path, room: int = 1 << 20) -> None:
    """Remount the tmpfs with only `room` bytes free beyond what it holds now."""
    used = os.statvfs(disk).f_blocks - os.statvfs(disk).f_bfree
    size = used * os.statvfs(disk).f_frsize + room
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


def fill(disk: Path, leave: int = 0) -> list[Path]:
    """Fill the disk with 64 KiB files until it refuses more, or (`leave` > 0) until another file would leave
    less than `leave` bytes free, so the disk is never full meanwhile; returns them."""
    files: list[Path] = []
    chunk = b"x" * 65536
    while True:
        if leave:
            stats = os.statvfs(disk)
            if stats.f_bavail * stats.f_frsize - len(chunk) < leave:
                return files
        path = disk / f"filler-{len(files):04d}"
        try:
            with open(path, "wb") as fh:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            path.unlink(missing_ok=True)
            return files
        files.append(path)


@pytest.mark.parametrize("writing", ["events", "checkpoint"])
def test_a_full_disk_stops_the_run_with_a_reason_and_keeps_what_was_written(
        cli: Cli, tmp_path: Path, tiny_model_dir: Path, small_disk: Path, writing: str) -> None:
    runs = small_disk / "runs"
    spec = write_spec(tmp_path, tiny_model_dir, name=f"full-{writing}")
    run_id = cli("train", str(spec), "--detach", check=True, SLMTUI_RUNS=str(runs), **THREADS)
    run_dir = runs / run_id.stdout.strip().splitlines()[-1]
    pid = None
    try:
        wait_event(run_dir, lambda e: e["type"] == "metrics")
        pid = engine_pid(run_dir)
        request(run_dir, "checkpoint")
        saved = wait_event(run_dir, lambda e: e["type"] == "checkpoint")
        shrink(small_disk)
        # room for events, none for a checkpoint (left while filling: the disk is never full for an event)
        fill(small_disk, leave=65536 if writing == "checkpoint" else 0)
        if writing == "checkpoint":
            request(run_dir, "checkpoint")
        finished = wait_event(run_dir, lambda e: e["type"] == "finished", timeout=60)
        wait_gone(pid)
        message = finished["summary"]["message"]
        assert finished["status"] == "failed" and "is full" in message and "\n" not in message
        events = assert_events_parse(run_dir, max_unreadable=1 if writing == "events" else 0)
        assert [e["step"] for e in events if e["type"] == "checkpoint"] == [saved["step"]]
        assert [step for step, _, _ in list_checkpoints(run_dir)] == [saved["step"]]
        assert_checkpoint_loads(Path(saved["path"]))
        assert not list((run_dir / "checkpoints").glob("*.tmp"))
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "failed" and summary["message"] == message
        listed = cli.json("runs", "--json", SLMTUI_RUNS=str(runs))["runs"]
        assert [(r["status"], r["message"]) for r in listed] == [("failed", message)]
    finally:
        kill_quietly(pid)


def test_a_torn_write_never_glues_two_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.protocol as protocol

    path = tmp_path / "events.jsonl"
    writer = EventWriter(path, run="r")
    writer.emit("log", level="info", text="before")
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(protocol.os, "write", half_then_full)
    with pytest.raises(OSError):
        writer.emit("log", level="info", text="torn")
    monkeypatch.setattr(protocol.os, "write", real_write)
    writer.emit("finished", status="failed", summary={})
    writer.close()
    events = read_events(path)
    assert [(e["type"], e["seq"]) for e in events] == [("log", 0), ("log", -1), ("finished", 1)]
    # a writer reopening a file whose last line was torn (a killed engine) starts on a fresh line too
    with open(path, "a") as fh:
        fh.write('{"v": 1, "type": "metr')
    with EventWriter(path, run="r") as again:
        again.emit("log", level="info", text="resumed")
    assert [e["seq"] for e in read_events(path)] == [0, -1, 1, -1, 2]


def test_a_failed_checkpoint_save_ends_the_run_with_a_reason(tmp_path: Path, tiny_model_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The injected twin of the tmpfs test: it runs everywhere, root or not."""
    import torch

    import engine.train.checkpoint as checkpoint
    from tests.train_helpers import execute_on_one_thread, write_small_run

    run_dir = write_small_run(tmp_path, tiny_model_dir, "inject")
    real_save = torch.save
    calls = []

    def save_until_full(obj: object, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, path)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_full)
    assert execute_on_one_thread(run_dir) == "failed"
    finished = assert_events_parse(run_dir)[-1]
    assert "is full" in finished["summary"]["message"] and finished["summary"]["steps"] == 4
    assert [step for step, _, _ in list_checkpoints(run_dir)] == [2]
    assert_checkpoint_loads(run_dir / "checkpoints" / "step-000002")
    assert not (run_dir / "checkpoints" / "step-000004.tmp").exists()
    assert not (run_dir / ".space-reserve").exists()


def fake_finished_run(runs: Path, name: str = "torn") -> Path:
    """A run folder as a dead engine leaves it: spec, 8 metrics, a checkpoint event, `finished`."""
    run_dir = runs / f"20260101-000000-{name}"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text('name = "torn"\n[model]\nname = "m"\n[data]\npath = "d"\n')
    (run_dir / "engine.pid").write_text(json.dumps({"pid": 2**22 + 7, "create_time": 1.0}))
    with EventWriter(run_dir / "events.jsonl", run=run_dir.name) as writer:
        writer.emit("started", spec={}, params_total=10, params_trainable=1, precision="fp32", device="cpu",
                    env={}, estimate=None, data={}, total_steps=8)
        for step in range(1, 9):
            writer.emit("metrics", step=step, epoch=0.1, loss=2.0 - step / 10, lr=1e-3, grad_norm=1.0,
                        tokens_per_s=10.0, samples_per_s=1.0, mem_allocated_gib=None, mem_reserved_gib=None,
                        mem_peak_gib=None)
        writer.emit("checkpoint", step=8, path=str(run_dir / "adapter"), bytes=1, final=True)
        writer.emit("finished", status="completed", summary={"message": "Completed at step 8 of 8.", "steps": 8})
    return run_dir


def test_a_truncated_events_file_is_read_up_to_the_damage(cli: Cli, home: Path) -> None:
    run_dir = fake_finished_run(home / "runs")
    path = run_dir / "events.jsonl"
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    # cut from inside line 3 to near the end of line 6: two pieces glued into one bad line, four events lost
    start = sum(map(len, lines[:3])) + 10
    end = sum(map(len, lines[:7])) - 6
    path.write_bytes(data[:start] + data[end:])
    attached = cli("attach", run_dir.name)
    assert attached.returncode == 0 and "Traceback" not in attached.stderr
    assert "completed" in attached.stdout and "warning: unreadable event line" in attached.stdout
    listed = cli.json("runs", "--json")["runs"]
    assert [(r["id"], r["status"]) for r in listed] == [(run_dir.name, "completed")]
    events = read_events(path)
    assert [e["type"] for e in events].count("metrics") == 4 and events[-1]["type"] == "finished"

    # a torn last line and no `finished`: the engine died mid-write; the run is crashed, all else readable
    torn = fake_finished_run(home / "runs", "died")
    body = (torn / "events.jsonl").read_bytes().splitlines(keepends=True)
    (torn / "events.jsonl").write_bytes(b"".join(body[:-2]) + body[-2][:25])
    attached = cli("attach", torn.name)
    assert attached.returncode == 1 and "Traceback" not in attached.stderr and "crashed" in attached.stdout
    listed = cli.json("runs", "--json")["runs"]
    assert {r["id"]: r["status"] for r in listed} == {run_dir.name: "completed", torn.name: "crashed"}


def test_a_store_from_a_newer_schema_is_one_sentence_with_a_way_on(cli: Cli, home: Path) -> None:
    cli("journal", "add", "first", check=True)
    store = home / "slmtui.json"
    data = json.loads(store.read_text())
    data["meta"]["1"]["schema"] = 99
    store.write_text(json.dumps(data))
    before = store.read_bytes()
    for args in (("journal", "list"), ("journal", "add", "second"), ("runs",)):
        proc = cli(*args)
        assert "Traceback" not in proc.stderr
        if proc.returncode:
            assert len(proc.stderr.strip().splitlines()) == 1 and "newer slmtui" in proc.stderr
    assert store.read_bytes() == before  # never overwritten by the older program


def test_a_corrupt_checkpoint_is_skipped_when_listing(tmp_path: Path) -> None:
    for step in (2, 4):
        folder = tmp_path / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"step": step, "val_loss": None}))
    (tmp_path / "checkpoints" / "step-000004" / "meta.json").write_text('{"step": 4, "val_')
    assert [step for step, _, _ in list_checkpoints(tmp_path)] == [2]




@pytest.mark.parametrize(("exc", "full"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"), True),
    (OSError(errno.EACCES, "Permission denied"), False),
    (RuntimeError("boom"), False),
])
def test_disk_full_is_recognised_whatever_raised_it(exc: BaseException, full: bool) -> None:
    from engine.train.diskfull import is_disk_full

    wrapped = ValueError("while saving")
    wrapped.__cause__ = exc
    assert is_disk_full(exc) is full and is_disk_full(wrapped) is full
