"""A six-trial sweep of the tiny model on the CPU, killed in the middle and resumed: every trial accounted for once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmtui.runs import list_runs
from slmtui.store import Store
from slmtui.sweeps import list_sweep_dirs, read_sweep
from tests.conftest import REPO, Cli, cli_env
from tests.train_helpers import instruction_rows, write_jsonl

pytestmark = pytest.mark.slow


def write_sweep(tmp_path: Path, model_dir: Path) -> Path:
    """A base spec of 40-step CPU runs evaluated every 8 steps (a step takes ~50 ms, the engine's start ~6 s: a
    pruned trial's stop lands well before its end), and a sweep of six trials over lr, rank and batch."""
    write_jsonl(tmp_path / "rows.jsonl", instruction_rows(40))
    (tmp_path / "base.toml").write_text(
        f'name = "tiny"\n[model]\nname = "{model_dir}"\n[data]\npath = "rows.jsonl"\nmax_length = 64\n'
        "val_fraction = 0.1\ntest_fraction = 0.1\n[train]\ndevice = \"cpu\"\nmicro_batch = 2\neval_every = 8\n"
        "save_every = 0\neval_samples = 0\n")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[sweep]\nname = "tiny search"\nbase = "base.toml"\ntrials = 6\nstartup_trials = 2\n'
                     "[sweep.budget]\nmax_steps = 40\n"
                     "[space]\nlr = [1e-4, 3e-3, 3e-2]\nrank = [4, 8]\nbatch = [[2, 1], [4, 1]]\n")
    return sweep


@pytest.fixture
def kill_left_over(home: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Whatever happens in the test, no sweep driver or engine outlives it."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for info in list_runs(home / "runs"):
        if info.status == "running" and info.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)


def _wait_for_trial(home: Path, number: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until trial `number` runs with its run noted (the driver must still be alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        sweeps = list_sweep_dirs(home / "sweeps")
        trials = read_sweep(sweeps[0]).trials if sweeps else ()
        if any(t.number == number and t.state == "running" and t.run_id for t in trials):
            return
        time.sleep(0.2)
    raise AssertionError(f"trial {number} did not start within {timeout}s")


def test_a_killed_sweep_resumes_with_every_trial_accounted_for_once(
        cli: Cli, home: Path, tmp_path: Path, tiny_model_dir: Path,
        kill_left_over: list[subprocess.Popen[str]]) -> None:
    sweep_file = write_sweep(tmp_path, tiny_model_dir)
    driver = subprocess.Popen([sys.executable, "-m", "slmtui", "sweep", str(sweep_file), "--json"], cwd=REPO,
                              env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_left_over.append(driver)
    _wait_for_trial(home, 2, driver)
    os.kill(driver.pid, signal.SIGKILL)  # a crash: no goodbye, trial 2's engine goes on alone
    driver.wait()
    middle = read_sweep(list_sweep_dirs(home / "sweeps")[0])
    assert middle.status == "interrupted" and len(middle.trials) == 3

    result = cli.json("sweep", "--resume", "last", "--json", timeout=240)

    trials = result["trials"]
    assert result["status"] == "finished" and len(trials) == 6
    assert {t["state"] for t in trials} <= {"complete", "pruned"}, trials
    assert any(t["state"] == "pruned" and t["pruned_step"] for t in trials), "the median pruner never acted"
    run_ids = [t["run_id"] for t in trials]
    runs = {r.id: r for r in list_runs(home / "runs")}
    assert sorted(run_ids) == sorted(runs), "a trial ran twice or a run belongs to no trial"
    for t in trials:  # a pruned trial's run was stopped through its control file, short of its 40 steps
        run = runs[t["run_id"]]
        assert (run.status, run.step == 40) == (("completed", True) if t["state"] == "complete" else ("stopped", False))
    best = result["best"]
    assert best["value"] == min(t["value"] for t in trials if t["state"] == "complete")

    store = Store(home)
    tags = {r.id: r.tags for r in store.runs()}
    assert all(tags[run_id] == (f"sweep:{result['id']}",) for run_id in run_ids)
    [entry] = store.entries(kind="hyperparams")
    assert f"trial {best['number']}" in entry.text and "median" in entry.text and entry.run == best["run_id"]
    again = cli("sweep", "--resume", result["id"])
    assert again.returncode == 1 and "has finished" in again.stderr
