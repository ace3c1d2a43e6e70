"""The sweep driver and `slmtui sweep` without an engine: a run launched but never noted is found by its name and
adopted, a second driver on the same sweep is refused, a bad sweep file is one sentence, --show and --list."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from slmtui.store import Store
from slmtui.sweep import LOCK_FILE, SweepDriver, SweepRefused, trial_run_name
from tests.conftest import Cli
from tests.sweep_fixtures import SWEEP_ID, make_sweep


def test_a_run_launched_but_never_noted_is_adopted_not_started_again(home: Path) -> None:
    sweep_dir = make_sweep(home, trials=6, running_noted=False)
    runs_before = sorted(p.name for p in (home / "runs").iterdir())
    said: list[str] = []

    snapshot = SweepDriver(sweep_dir, home / "runs", ["cpu"], said.append, poll_s=0.01).run()

    assert sorted(p.name for p in (home / "runs").iterdir()) == runs_before, "a run was started again"
    trial = snapshot.trials[5]
    run_id = f"20261201-090500-{trial_run_name(SWEEP_ID, 'triage', 5)}"
    assert (trial.state, trial.run_id, trial.value) == ("complete", run_id, pytest.approx(1.65))  # its best eval
    assert f"Trial 5: following its run {run_id} again." in said
    tags = {r.id: r.tags for r in Store(home).runs()}
    assert tags[run_id] == (f"sweep:{SWEEP_ID}",)  # tagged on adoption: the driver may have died before tagging
    assert snapshot.status == "finished" and snapshot.best is not None and snapshot.best.number == 3
    [entry] = Store(home).entries(kind="hyperparams")
    assert "6 trials (4 complete, 2 pruned)" in entry.text and "lowest 1.2400, median 1.4150, highest 1.6500" in entry.text


def test_a_second_driver_on_the_same_sweep_is_refused(home: Path) -> None:
    sweep_dir = make_sweep(home, trials=6)
    fd = os.open(sweep_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a live driver holds
        with pytest.raises(SweepRefused, match="already being driven"):
            SweepDriver(sweep_dir, home / "runs", ["cpu"], print).run()
    finally:
        os.close(fd)


def test_the_cli_shows_lists_and_refuses_in_one_sentence(cli: Cli, home: Path, tmp_path: Path) -> None:
    make_sweep(home)
    shown = cli.json("sweep", "--show", "last", "--json")
    assert (shown["id"], shown["status"], len(shown["trials"]), shown["best"]["number"]) == (
        SWEEP_ID, "interrupted", 6, 3)
    assert shown["spread"] == [1.24, 1.31, 1.52]
    listed = cli("sweep", "--list", check=True).stdout
    assert f"{SWEEP_ID}  interrupted  6/8 trials  val_loss 1.2400" in listed
    bad = tmp_path / "sweep.toml"
    bad.write_text('[sweep]\nbase = "missing.toml"\n')
    refused = cli("sweep", str(bad))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "sweep.base missing.toml" in refused.stderr
    both = cli("sweep", str(bad), "--resume", "last")
    assert both.returncode == 1 and "Give one of" in both.stderr
    unknown = cli("sweep", "--resume", "nope")
    assert unknown.returncode == 1 and "No sweep matches 'nope'" in unknown.stderr
