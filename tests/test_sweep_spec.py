"""The sweep file: every problem is one sentence naming its key; every value the space can give is checked up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmtui.sweep_spec import SweepError, apply_params, load_sweep, suggest

BASE = 'name = "base"\n[model]\nname = "./model"\n[data]\npath = "rows.jsonl"\n[train]\ndevice = "cpu"\n'
GOOD = '[sweep]\nbase = "base.toml"\ntrials = 4\n[sweep.budget]\nmax_steps = 10\n[space]\nlr = { low = 1e-5, high = 1e-3 }\n'


def _write(tmp_path: Path, sweep: str, base: str = BASE) -> Path:
    (tmp_path / "model").mkdir(exist_ok=True)
    (tmp_path / "rows.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "base.toml").write_text(base)
    path = tmp_path / "sweep.toml"
    path.write_text(sweep)
    return path


def test_a_good_sweep_file_reads_with_its_defaults(tmp_path: Path) -> None:
    spec = load_sweep(_write(tmp_path, GOOD + 'rank = [8, 16]\nbatch = [[4, 2], [8, 1]]\nmethod = ["lora", "dora"]\n'))
    assert (spec.name, spec.trials, spec.objective, spec.direction, spec.max_steps, spec.pilot) == \
        ("base", 4, "val_loss", "minimize", 10, None)
    assert spec.space["batch"] == ["4x2", "8x1"]
    trial = apply_params(spec.base, {"lr": 3e-4, "rank": 8, "batch": "8x1", "method": "dora"})
    assert (trial.train.lr, trial.method.rank, trial.train.micro_batch, trial.train.grad_accum,
            trial.method.kind) == (3e-4, 8, 8, 1, "dora")


class _Draws:
    """An Optuna trial's `suggest_*` that returns the low end and the first choice, and records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        self.calls.append((name, log))
        return low

    def suggest_categorical(self, name: str, choices: list[object]) -> object:
        self.calls.append((name, tuple(choices)))
        return choices[0]


def test_learning_rate_is_drawn_on_a_log_scale_and_dropout_on_a_linear_one(tmp_path: Path) -> None:
    spec = load_sweep(_write(tmp_path, GOOD + "dropout = { low = 0.0, high = 0.2 }\nepochs = [1, 2]\n"))
    draws = _Draws()
    assert suggest(draws, spec.space) == {"lr": 1e-5, "dropout": 0.0, "epochs": 1}
    assert draws.calls == [("lr", True), ("dropout", False), ("epochs", (1, 2))]


@pytest.mark.parametrize(("sweep", "says"), [
    ("[space]\nlr = [1e-4]\n", "[sweep] table"),
    ('[sweep]\ntrials = 3\n[sweep.budget]\nmax_steps = 5\n[space]\nlr = [1e-4]\n', "sweep.base"),
    (GOOD.replace("max_steps = 10", "pilot = 1.5"), "sweep.budget.pilot"),
    (GOOD.replace("max_steps = 10", "max_steps = 10\npilot = 0.1"), "one of the two"),
    (GOOD.replace("[sweep.budget]\nmax_steps = 10\n", ""), "[sweep.budget]"),
    (GOOD.replace("trials = 4", "trials = 0"), "sweep.trials"),
    (GOOD.replace("trials = 4", 'objective = "accuracy"'), "sweep.objective"),
    (GOOD.replace("trials = 4", 'direction = "down"'), "sweep.direction"),
    (GOOD.replace("trials = 4", 'pruner = "hyperband"'), "sweep.pruner"),
    (GOOD.replace("trials = 4", "trails = 4"), "did you mean 'trials'"),
    (GOOD + "rnak = [8]\n", "did you mean 'rank'"),
    (GOOD + "rank = [0, 8]\n", "space.rank value 0"),
    (GOOD + "rank = { low = 4, high = 8 }\n", "space.rank must be a list"),
    (GOOD + "batch = [[4, 2], [8]]\n", "space.batch"),
    (GOOD + 'method = ["lora", "lora"]\n', "space.method lists a value twice"),
    (GOOD + 'method = ["lora", "prefix"]\n', "method.kind must be one of"),
    (GOOD.replace("low = 1e-5", "low = 0"), "log scale"),
    (GOOD.replace("high = 1e-3", "high = 1e-6"), "space.lr must be { low = A, high = B }"),
    (GOOD.replace("[space]\nlr = { low = 1e-5, high = 1e-3 }\n", ""), "[space] must list"),
    (GOOD + "[extra]\n", "Unknown table 'extra'"),
    (GOOD + "lr = 1", "not valid TOML"),
])
def test_a_bad_sweep_file_says_which_key_to_fix(tmp_path: Path, sweep: str, says: str) -> None:
    with pytest.raises(SweepError) as caught:
        load_sweep(_write(tmp_path, sweep))
    assert says in str(caught.value)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_a_bad_base_spec_is_named_with_its_key(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=r"sweep.base base.toml: train.micro_batch must be at least 1"):
        load_sweep(_write(tmp_path, GOOD, BASE + "micro_batch = 0\n"))


def test_a_base_without_a_validation_split_is_refused(tmp_path: Path) -> None:
    base = BASE.replace('path = "rows.jsonl"', 'path = "rows.jsonl"\nval_fraction = 0.0')
    with pytest.raises(SweepError, match=r"data\.val_fraction is 0"):
        load_sweep(_write(tmp_path, GOOD, base))
