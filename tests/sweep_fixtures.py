"""A sweep folder with a real Optuna study of made-up trials (no engine, no model: fast), for the console's
Sweeps view; each trial with a run has a synthetic run folder beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from slmtui.sweep import trial_run_name
from slmtui.sweeps import BASE_FILE, STUDY_FILE, SWEEP_FILE, open_study, write_state
from tests.run_fixtures import make_run

SWEEP_ID = "20261201-090000-triage"
#: (state, lr, rank, method, value, steps reported, pruned step)
TRIALS: tuple[tuple[str, float, int, str, float | None, int, int | None], ...] = (
    ("COMPLETE", 2e-4, 8, "lora", 1.52, 3, None),
    ("COMPLETE", 1e-3, 16, "dora", 1.31, 3, None),
    ("PRUNED", 8e-3, 8, "lora", 2.41, 1, 10),
    ("COMPLETE", 5e-4, 16, "lora", 1.24, 3, None),
    ("PRUNED", 3e-5, 16, "dora", 2.05, 2, 20),
    ("RUNNING", 6e-4, 16, "lora", None, 1, None),
)


def make_sweep(home: Path, sweep_id: str = SWEEP_ID, trials: int = 8, with_runs: bool = True,
               running_noted: bool = True) -> Path:
    """A sweep of `trials` wanted with the six trials of TRIALS, studied for val_loss, interrupted (no driver).
    `running_noted=False`: the driver died after launching the running trial's run and before noting its id (the
    run, named as the driver names it, has completed since)."""
    sweep_dir = home / "sweeps" / sweep_id
    sweep_dir.mkdir(parents=True)
    (home / "rows.jsonl").write_text('{"text": "a ticket"}\n')
    (sweep_dir / BASE_FILE).write_text(f'name = "triage"\n[model]\nname = "HuggingFaceTB/SmolLM2-135M"\n'
                                       f'[data]\npath = "{home / "rows.jsonl"}"\n[train]\neval_every = 10\n')
    (sweep_dir / SWEEP_FILE).write_text(
        f'[sweep]\nname = "triage"\nbase = "{BASE_FILE}"\ntrials = {trials}\n[sweep.budget]\npilot = 0.1\n'
        '[space]\nlr = { low = 1e-5, high = 1e-2 }\nrank = [8, 16]\nmethod = ["lora", "dora"]\n')
    study = open_study(sweep_dir, create=True)
    distributions: dict[str, Any] = {
        "lr": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True),
        "rank": optuna.distributions.CategoricalDistribution([8, 16]),
        "method": optuna.distributions.CategoricalDistribution(["lora", "dora"]),
    }
    for number, (state, lr, rank, method, value, steps, pruned) in enumerate(TRIALS):
        run_name = trial_run_name(sweep_id, "triage", number)
        run_id = f"20261201-09{number:02d}00-{run_name}"
        curve = {10 * (i + 1): (value or 2.0) + 0.1 * (steps - 1 - i) for i in range(steps)}
        attrs: dict[str, Any] = {"run_name": run_name}
        if running_noted or state != "RUNNING":
            attrs["run_id"] = run_id
        if pruned is not None:
            attrs["pruned_step"] = pruned
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState[state], value=value if state == "COMPLETE" else None,
            params={"lr": lr, "rank": rank, "method": method}, distributions=distributions,
            intermediate_values=curve, user_attrs=attrs))
        if with_runs:
            running = state == "RUNNING" and running_noted
            make_run(home / "runs", run_id, rank=rank, lr=lr, status="running" if running else
                     ("stopped" if state == "PRUNED" else "completed"))
    write_state(sweep_dir, status="running", pid=None)
    assert (sweep_dir / STUDY_FILE).is_file()
    return sweep_dir
