"""Sweeps as the CLI and the console see them: their folders, their trials, the best, the spread, importance.

A sweep folder (`HOME/sweeps/ID`) holds the frozen sweep file (`sweep.toml`) and base spec (`base.toml`), the
Optuna study (`study.journal`, Optuna's journal file storage: an append-only log any process can read while the
driver writes it) and `state.json` (the driver's pid, and `finished` once every trial is accounted for). Each
trial is an ordinary run tagged `sweep:ID`; its Optuna trial carries the run's id. Optuna is imported inside the
functions that read a study, so listing costs nothing until a sweep is opened.
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.protocol import read_json, write_json_atomic
from engine.runlock import process_alive
from engine.spec import slug
from slmtui.runs import new_run_id, pick_id

if TYPE_CHECKING:
    import optuna

SWEEP_FILE, BASE_FILE, STUDY_FILE, STATE_FILE = "sweep.toml", "base.toml", "study.journal", "state.json"
#: The tag every trial run of sweep ID carries.
TAG_PREFIX = "sweep:"


class SweepNotFound(LookupError):
    """No sweep matches what the user typed; one sentence."""


@dataclass(frozen=True)
class TrialRow:
    """One trial as shown: its state, settings, objective, run, and the step it was pruned at."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    run_id: str | None = None
    pruned_step: int | None = None
    last_step: int | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SweepSnapshot:
    """A sweep as its study stands: the trials so far, how many were asked for, and whether a driver runs it."""

    id: str
    dir: Path
    name: str
    objective: str
    direction: str
    trials_wanted: int
    status: str
    trials: tuple[TrialRow, ...] = ()
    space: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> TrialRow | None:
        """The complete trial with the best objective."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda t: t.value or 0.0)

    @property
    def spread(self) -> tuple[float, float, float] | None:
        """The objective's lowest, median and highest over the complete trials."""
        values = [t.value for t in self.trials if t.state == "complete" and t.value is not None]
        return (min(values), statistics.median(values), max(values)) if values else None

    def counts(self) -> dict[str, int]:
        """How many trials are in each state."""
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {"id": self.id, "dir": str(self.dir), "name": self.name, "objective": self.objective,
                "direction": self.direction, "trials_wanted": self.trials_wanted, "status": self.status,
                "best": best.to_json() if best else None, "spread": list(self.spread) if self.spread else None,
                "trials": [t.to_json() for t in self.trials]}


def sweeps_dir(home: Path | None = None) -> Path:
    """`HOME/sweeps` (not created)."""
    from engine.paths import slmtui_home

    return (home or slmtui_home()) / "sweeps"


def new_sweep_dir(name: str, root: Path) -> Path:
    """A new owner-only folder `root/YYYYMMDD-HHMMSS-<slug>` (with `-2`... when taken)."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = root / new_run_id(name, root, unnamed="sweep")
    path.mkdir(mode=0o700)
    return path


def list_sweep_dirs(root: Path) -> list[Path]:
    """Every sweep folder under `root`, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / SWEEP_FILE).is_file())


def resolve_sweep(ref: str, root: Path) -> Path:
    """A sweep folder from a full id, a unique prefix or `last`."""
    ids = [p.name for p in list_sweep_dirs(root)]
    try:
        found = pick_id(ref, ids, "sweep")
    except LookupError as exc:
        raise SweepNotFound(str(exc)) from None
    if found is not None:
        return root / found
    if not ids:
        raise SweepNotFound(f"There are no sweeps in {root} yet; start one with `slmtui sweep SWEEP.toml`.")
    raise SweepNotFound(f"No sweep matches {ref!r}; `slmtui sweep --list` lists them.")


def write_state(sweep_dir: Path, **fields: Any) -> None:
    """Merge `fields` into the sweep's `state.json`."""
    write_json_atomic(sweep_dir / STATE_FILE, {**read_json(sweep_dir / STATE_FILE), **fields})


def driver_alive(sweep_dir: Path) -> bool:
    """Whether the process that drives the sweep still runs (same pid and start time)."""
    state = read_json(sweep_dir / STATE_FILE)
    pid = state.get("pid")
    return isinstance(pid, int) and process_alive(pid, state.get("create_time"))


def sweep_status(sweep_dir: Path) -> str:
    """finished | running | interrupted (no driver, trials left: `slmtui sweep --resume` goes on)."""
    if read_json(sweep_dir / STATE_FILE).get("status") == "finished":
        return "finished"
    return "running" if driver_alive(sweep_dir) else "interrupted"


def open_study(sweep_dir: Path, direction: str = "minimize", create: bool = False) -> optuna.Study:
    """The sweep's Optuna study, from its journal file (created with `create`)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(sweep_dir / STUDY_FILE)))
    if create:
        return optuna.create_study(study_name=sweep_dir.name, storage=storage, direction=direction,
                                   load_if_exists=True)
    return optuna.load_study(study_name=sweep_dir.name, storage=storage)


_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def trial_row(trial: optuna.trial.FrozenTrial) -> TrialRow:
    """A trial as shown, from Optuna's record of it."""
    attrs = trial.user_attrs
    steps = list(trial.intermediate_values)
    value = trial.value if trial.state.name == "COMPLETE" else None
    if trial.state.name == "PRUNED" and steps:
        value = trial.intermediate_values[max(steps)]
    return TrialRow(number=trial.number, state=_STATES.get(trial.state.name, trial.state.name.lower()),
                    params=dict(trial.params), value=value, run_id=attrs.get("run_id"),
                    pruned_step=attrs.get("pruned_step"), last_step=max(steps) if steps else None,
                    message=str(attrs.get("message", "")))


def read_sweep(sweep_dir: Path) -> SweepSnapshot:
    """The sweep as its study stands now."""
    from slmtui.sweep_spec import SweepError, load_sweep

    try:
        spec = load_sweep(sweep_dir / SWEEP_FILE)
        name, objective, direction, wanted, space = spec.name, spec.objective, spec.direction, spec.trials, spec.space
    except SweepError as exc:  # the frozen files were edited by hand: show the trials anyway
        name, objective, direction, wanted, space = sweep_dir.name, "val_loss", "minimize", 0, {}
        write_state(sweep_dir, problem=str(exc))
    trials: tuple[TrialRow, ...] = ()
    if (sweep_dir / STUDY_FILE).is_file():
        try:
            study = open_study(sweep_dir)
            trials = tuple(trial_row(t) for t in study.get_trials(deepcopy=False))
        except KeyError:  # the driver died before it created the study
            pass
    return SweepSnapshot(id=sweep_dir.name, dir=sweep_dir, name=name, objective=objective, direction=direction,
                         trials_wanted=wanted, status=sweep_status(sweep_dir), trials=trials, space=space)


def param_importance(sweep_dir: Path) -> dict[str, float]:
    """Each searched setting's share of the objective's variation (Optuna's PED-ANOVA evaluator), largest first;
    empty until two trials have completed. Seconds on a large study: call it from a worker."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    study = open_study(sweep_dir)
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 2:
        return {}
    try:
        with warnings.catch_warnings():  # "experimental": its interface may change, its answer is what we show
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return dict(get_param_importances(study, evaluator=PedAnovaImportanceEvaluator()))
    except (ValueError, RuntimeError):  # every setting held one value, or every objective was equal
        return {}


def format_params(params: dict[str, Any]) -> str:
    """`lr=2.1e-04 rank=16 batch=8x2`: a trial's settings on one line."""
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def journal_text(snapshot: SweepSnapshot) -> str:
    """The journal entry a finished sweep leaves: the trials, the best settings, the objective's spread."""
    counts = snapshot.counts()
    tally = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines = [f"Sweep {snapshot.name} ({snapshot.id}): {len(snapshot.trials)} trials ({tally}), "
             f"{snapshot.direction} {snapshot.objective}."]
    best, spread = snapshot.best, snapshot.spread
    if best is not None and best.value is not None:
        lines.append(f"Best: {snapshot.objective} {best.value:.4f} in trial {best.number} (run {best.run_id}) "
                     f"with {format_params(best.params)}.")
    else:
        lines.append("No trial completed, so there is no best setting.")
    if spread is not None:
        lines.append(f"Spread of {snapshot.objective} over the complete trials: lowest {spread[0]:.4f}, "
                     f"median {spread[1]:.4f}, highest {spread[2]:.4f}.")
    return "\n".join(lines)


def sweep_token(sweep_dir: Path) -> tuple[int, ...]:
    """Cheap: changes whenever the study or the driver's state does (a stat of two files)."""
    out: list[int] = []
    for name in (STUDY_FILE, STATE_FILE):
        try:
            st = (sweep_dir / name).stat()
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [0, 0]
    return tuple(out)


@dataclass(frozen=True)
class ParamAxis:
    """One setting against the objective: a point per trial with a value; for a list of choices x is the choice's
    position and `ticks` names them; `log` for a learning-rate range."""

    name: str
    points: tuple[tuple[float, float, bool], ...]
    log: bool = False
    ticks: tuple[str, ...] = ()


def param_axis(snapshot: SweepSnapshot, name: str) -> ParamAxis:
    """The complete and pruned trials' objective against setting `name` (pruned: its last reported value)."""
    from slmtui.sweep_spec import RANGES

    choices = snapshot.space.get(name)
    ticks = tuple(str(c) for c in choices) if isinstance(choices, list) else ()
    points = []
    for t in snapshot.trials:
        if t.value is None or name not in t.params or t.state not in ("complete", "pruned"):
            continue
        raw = t.params[name]
        if ticks and str(raw) not in ticks:  # a choice the frozen sweep file no longer lists
            continue
        x = float(ticks.index(str(raw))) if ticks else float(raw)
        points.append((x, float(t.value), t.state == "pruned"))
    return ParamAxis(name, tuple(points), log=isinstance(choices, dict) and RANGES.get(name, False), ticks=ticks)


def promoted_spec(sweep_dir: Path, trial: TrialRow) -> dict[str, Any]:
    """The base spec with `trial`'s settings, on the full data (no trial budget): what New run opens."""
    from engine.spec import spec_to_dict
    from slmtui.sweep_spec import apply_params, load_sweep

    spec = load_sweep(sweep_dir / SWEEP_FILE)
    promoted = spec_to_dict(apply_params(spec.base, trial.params))
    promoted["name"] = f"{slug(spec.name) or 'sweep'}-best"
    return promoted
