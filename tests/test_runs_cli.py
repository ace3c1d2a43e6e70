"""Detached runs through the CLI: launch, control (stop, checkpoint-now, eval-now), attach, and a crash."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.protocol import read_events
from slmtui.runs import list_runs, read_run, request, resolve_run
from tests.conftest import Cli
from tests.train_helpers import instruction_rows, write_jsonl

pytestmark = pytest.mark.slow


def write_spec(tmp_path: Path, model_dir: Path, max_steps: int) -> Path:
    write_jsonl(tmp_path / "rows.jsonl", instruction_rows(40))
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'name = "Control Test"\n[model]\nname = "{model_dir}"\n[data]\npath = "rows.jsonl"\n'
        f"val_fraction = 0.1\ntest_fraction = 0.1\n[method]\nkind = \"lora\"\n"
        f"[train]\ndevice = \"cpu\"\nmicro_batch = 2\nmax_steps = {max_steps}\neval_every = 0\nsave_every = 0\n"
        f"eval_samples = 1\nlr = 1e-3\n"
    )
    return spec


def wait_for(run_dir: Path, predicate: Callable[[dict[str, Any]], bool], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in read_events(run_dir / "events.jsonl"):
            if predicate(event):
                return event
        if not (run_dir / "engine.pid").exists() and time.monotonic() > deadline - timeout + 20:
            break
        time.sleep(0.2)
    log = (run_dir / "engine.log").read_text() if (run_dir / "engine.log").exists() else ""
    raise AssertionError(f"no matching event within {timeout}s; engine.log tail: {log[-2000:]}")


@pytest.fixture
def kill_engines(home: Path) -> Iterator[None]:
    """Whatever happens in the test, no engine outlives it."""
    yield
    for info in list_runs(home / "runs"):
        if info.status == "running" and info.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)


def test_one_detached_engine_obeys_checkpoint_eval_and_stop(cli: Cli, home: Path, tmp_path: Path,
                                                            tiny_model_dir: Path, kill_engines: None) -> None:
    proc = cli("train", str(write_spec(tmp_path, tiny_model_dir, max_steps=100_000)), "--detach", check=True,
               OMP_NUM_THREADS="1")
    run_id = proc.stdout.strip().splitlines()[-1]
    run_dir = resolve_run(run_id, home / "runs")
    assert run_dir.name == run_id and run_id.endswith("-control-test")
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"
    assert resolve_run("last", home / "runs") == run_dir == resolve_run(run_id[:10], home / "runs")

    first = wait_for(run_dir, lambda e: e["type"] == "metrics")
    request(run_dir, "checkpoint")
    saved = wait_for(run_dir, lambda e: e["type"] == "checkpoint")
    assert saved["step"] > first["step"] and Path(saved["path"], "state.pt").is_file()
    request(run_dir, "eval")
    evaluated = wait_for(run_dir, lambda e: e["type"] == "eval")
    assert evaluated["val_loss"] > 0 and len(evaluated["samples"]) == 1

    listed = cli.json("runs", "--json")["runs"]
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "running")]

    cli("stop", run_id[:12], check=True)
    finished = wait_for(run_dir, lambda e: e["type"] == "finished")
    assert finished["status"] == "stopped"
    events = read_events(run_dir / "events.jsonl")
    last_checkpoint = [e for e in events if e["type"] == "checkpoint"][-1]
    last_metrics = [e for e in events if e["type"] == "metrics"][-1]
    assert last_checkpoint["step"] == last_metrics["step"] == finished["summary"]["steps"]
    deadline = time.monotonic() + 10
    while read_run(run_dir).status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    run = cli.json("runs", "--json")["runs"][0]
    assert run["status"] == "stopped" and run["ended"] and run["latest"]["loss"] > 0 and run["best"]["val_loss"] > 0

    attached = cli("attach", run_id, check=True)
    assert "stopped" in attached.stdout
    assert cli("stop", run_id).returncode == 1  # not running any more: one sentence, no traceback
    assert "not running" in cli("stop", run_id).stderr


def test_sigkill_shows_as_crashed(cli: Cli, home: Path, tmp_path: Path, tiny_model_dir: Path,
                                  kill_engines: None) -> None:
    proc = cli("train", str(write_spec(tmp_path, tiny_model_dir, max_steps=100_000)), "--detach", check=True,
               OMP_NUM_THREADS="1")
    run_dir = resolve_run(proc.stdout.strip().splitlines()[-1], home / "runs")
    wait_for(run_dir, lambda e: e["type"] == "metrics")
    pid = json.loads((run_dir / "engine.pid").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    status = None
    while time.monotonic() - killed < 10:
        status = cli.json("runs", "--json")["runs"][0]["status"]
        if status == "crashed":
            break
        time.sleep(0.2)
    assert status == "crashed"
    assert time.monotonic() - killed < 10


def test_a_bad_spec_is_one_sentence(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "x"\n[model]\nname = "/nowhere"\n[trian]\n')
    proc = cli("train", str(spec))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "did you mean 'train'?" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert cli("attach", "nothing").stderr.startswith("slmtui: No run matches 'nothing'")
