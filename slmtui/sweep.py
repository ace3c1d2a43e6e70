"""Driving a sweep: ask Optuna for settings, launch each trial as an ordinary run, feed it the run's `eval` events,
stop the trials its pruner gives up on, tell it how each ended.

Every fact lives in files, so a sweep killed at any moment resumes where it was: the study (Optuna's journal
file) records each trial and the run it launched before and after the launch; the trial runs are detached
engines that go on without the driver. On resume a trial the study shows running is adopted, not started
again: its run is followed from its first event (values already reported are not reported twice) or, when the
driver died before the run existed, launched then. The order for a new trial is: ask, draw the settings, note
the run's name, launch, note the run's id.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import tomli_w

from engine.protocol import EVENTS_FILE, SPEC_FILE, STOP_COMMAND, EventFollower
from engine.spec import dump_spec, load_spec, slug
from slmtui.runs import ended_without_event, engine_alive, read_run, request
from slmtui.sweep_spec import SweepSpec, apply_params, load_sweep, suggest
from slmtui.sweeps import (
    BASE_FILE,
    SWEEP_FILE,
    TAG_PREFIX,
    SweepSnapshot,
    format_params,
    journal_text,
    new_sweep_dir,
    open_study,
    read_sweep,
    write_state,
)

if TYPE_CHECKING:
    import optuna

LOCK_FILE = "sweep.lock"


class SweepRefused(Exception):
    """The sweep cannot be driven now (another driver holds it, a launch was refused); one sentence."""


@dataclass
class _Active:
    """A trial whose run the driver follows."""

    trial: optuna.Trial
    run_dir: Path
    slot: int
    follower: EventFollower
    best: float | None = None
    pruned_step: int | None = None
    last_check: float = 0.0
    reported: set[int] = field(default_factory=set)


def create_sweep(spec: SweepSpec, root: Path) -> Path:
    """A new sweep folder with the sweep file and base spec frozen in it (a resume reads these, not the files the
    user may have edited since)."""
    sweep_dir = new_sweep_dir(spec.name, root)
    (sweep_dir / BASE_FILE).write_text(dump_spec(spec.base), encoding="utf-8")
    raw = {**spec.raw, "sweep": {**spec.raw["sweep"], "base": BASE_FILE, "name": spec.name}}
    (sweep_dir / SWEEP_FILE).write_text(tomli_w.dumps(raw), encoding="utf-8")
    return sweep_dir


def trial_slots(spec: SweepSpec, gpu_count: int) -> list[str]:
    """The device of each trial that may run at once: one per GPU (or `at_once` spread over them), one on the
    CPU."""
    if spec.base.train.device == "cpu" or gpu_count == 0:
        return ["cpu" if spec.base.train.device == "cpu" else spec.base.train.device]
    wanted = spec.at_once or gpu_count
    return [f"cuda:{i % gpu_count}" for i in range(wanted)]


def trial_run_name(sweep_id: str, name: str, number: int) -> str:
    """The name of trial `number`'s run: the sweep's name, the trial, and a short mark of this sweep (two sweeps
    of one name never share a run name, which is how a resumed driver finds a run it launched but did not note)."""
    mark = hashlib.sha1(sweep_id.encode()).hexdigest()[:6]
    return f"{slug(name)[:24]}-t{number}-{mark}"


class SweepDriver:
    """Runs one sweep to its end from its folder; `run()` returns the final snapshot."""

    def __init__(self, sweep_dir: Path, runs_dir: Path, slots: list[str], say: Callable[[str], None],
                 home: Path | None = None, poll_s: float = 0.2) -> None:
        self.sweep_dir, self.runs_dir, self.slots, self.say = sweep_dir, runs_dir, slots, say
        self.home, self.poll_s = home, poll_s
        self.spec = load_sweep(sweep_dir / SWEEP_FILE)
        self.active: dict[int, _Active] = {}
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ the loop

    def run(self) -> SweepSnapshot:
        """Drive the sweep until every trial is complete, pruned or failed."""
        self._take_lock()
        try:
            study = open_study(self.sweep_dir, self.spec.direction, create=True)
            study.sampler, study.pruner = self._sampler(), self._pruner()
            self._adopt(study)
            while True:
                self._fill(study)
                for active in list(self.active.values()):
                    self._poll(study, active)
                if not self.active and self._asked(study) >= self.spec.trials:
                    break
                time.sleep(self.poll_s)
            snapshot = read_sweep(self.sweep_dir)
            self._record_finish(snapshot)
            return read_sweep(self.sweep_dir)
        finally:
            self._release_lock()

    def _sampler(self) -> optuna.samplers.BaseSampler:
        import optuna

        startup = max(1, min(self.spec.startup_trials, self.spec.trials - 1))
        return optuna.samplers.TPESampler(seed=self.spec.seed, n_startup_trials=startup)

    def _pruner(self) -> optuna.pruners.BasePruner:
        import optuna

        if self.spec.pruner == "none":
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=self.spec.startup_trials,
                                           n_warmup_steps=self.spec.warmup_steps)

    @staticmethod
    def _asked(study: optuna.Study) -> int:
        return len(study.get_trials(deepcopy=False))

    def _free_slot(self) -> int | None:
        busy = {a.slot for a in self.active.values()}
        return next((i for i in range(len(self.slots)) if i not in busy), None)

    def _fill(self, study: optuna.Study) -> None:
        while self._asked(study) < self.spec.trials:
            slot = self._free_slot()
            if slot is None:
                return
            trial = study.ask()
            self._launch(trial, slot)

    # ------------------------------------------------------------------ trials

    def _adopt(self, study: optuna.Study) -> None:
        """Take back the trials a previous driver left running."""
        import optuna

        for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            trial = optuna.trial.Trial(study, frozen._trial_id)
            slot = self._free_slot()
            if slot is None:  # more left running than slots now (fewer GPUs): they wait their turn
                slot = len(self.slots) + len(self.active)
            run_dir = self._trial_run(frozen.user_attrs)
            if run_dir is None:
                self.say(f"Trial {frozen.number} never started its run; starting it now.")
                self._launch(trial, slot)
                continue
            if frozen.user_attrs.get("run_id") != run_dir.name:  # found by name: the id was never noted
                trial.set_user_attr("run_id", run_dir.name)
            self._tag(read_run(run_dir))  # again: the driver may have died between noting the run and tagging it
            self.say(f"Trial {frozen.number}: following its run {run_dir.name} again.")
            active = _Active(trial, run_dir, slot, EventFollower(run_dir / EVENTS_FILE),
                             pruned_step=frozen.user_attrs.get("pruned_step"),
                             reported=set(frozen.intermediate_values))
            if active.pruned_step is not None and engine_alive(run_dir):
                request(run_dir, STOP_COMMAND)  # the driver may have died between noting the prune and asking
            self.active[frozen.number] = active

    def _trial_run(self, attrs: dict[str, Any]) -> Path | None:
        """The run a trial launched: by the id it noted, else by the name it noted before launching."""
        run_id, run_name = attrs.get("run_id"), attrs.get("run_name")
        if isinstance(run_id, str) and (self.runs_dir / run_id / SPEC_FILE).is_file():
            return self.runs_dir / run_id
        if not isinstance(run_name, str) or not self.runs_dir.is_dir():
            return None
        for path in sorted(self.runs_dir.iterdir()):
            if (path / SPEC_FILE).is_file() and path.name.endswith(run_name):
                try:
                    if load_spec(path / SPEC_FILE, check_files=False).name == run_name:
                        return path
                except ValueError:
                    continue
        return None

    def _launch(self, trial: optuna.Trial, slot: int) -> None:
        from slmtui.launch import launch_run

        params = suggest(trial, self.spec.space)
        run_name = trial_run_name(self.sweep_dir.name, self.spec.name, trial.number)
        trial.set_user_attr("run_name", run_name)
        spec = apply_params(self.spec.base, params)
        train = spec.train
        if self.spec.max_steps:
            train = replace(train, max_steps=self.spec.max_steps)
        device = self.slots[slot % len(self.slots)]
        spec = replace(spec, name=run_name, train=replace(train, device=device))
        info = launch_run(spec, self.runs_dir, home=self.home, pilot=self.spec.pilot)
        trial.set_user_attr("run_id", info.id)
        self._tag(info)
        self.say(f"Trial {trial.number} started run {info.id}: {format_params(params)}")
        self.active[trial.number] = _Active(trial, info.dir, slot, EventFollower(info.dir / EVENTS_FILE))

    def _tag(self, info: Any) -> None:
        """Index the run and tag it with its sweep, so the runs list and compare view group it."""
        from slmtui.reconcile import reconcile
        from slmtui.store import Store, StoreError

        try:
            store = Store(self.home)
            reconcile(store, self.runs_dir, [info])
            store.set_run_meta(info.id, tags=[f"{TAG_PREFIX}{self.sweep_dir.name}"])
        except StoreError as exc:  # the run goes on untagged; the sweep's own record names it
            self.say(f"Could not tag run {info.id}: {exc}")

    def _poll(self, study: optuna.Study, active: _Active) -> None:
        events = active.follower.poll()
        finished = next((e for e in events if e.get("type") == "finished"), None)
        for event in events:
            if event.get("type") == "eval":
                self._report(active, event)
        if finished is None:
            now = time.monotonic()
            if now - active.last_check < 1.0:
                return
            active.last_check = now
            if engine_alive(active.run_dir):
                return
            late = active.follower.poll()
            for event in late:
                if event.get("type") == "eval":
                    self._report(active, event)
            finished = next((e for e in late if e.get("type") == "finished"), None) or \
                ended_without_event(active.run_dir)
        self._finish(study, active, finished)

    def _report(self, active: _Active, event: dict[str, Any]) -> None:
        value, step = event.get(self.spec.objective), event.get("step")
        if active.pruned_step is not None or not isinstance(value, int | float) or not isinstance(step, int):
            return
        better = max if self.spec.direction == "maximize" else min
        active.best = value if active.best is None else better(active.best, value)
        trial = active.trial
        if step in active.reported:
            return  # reported before the driver was restarted
        active.reported.add(step)
        trial.report(float(value), step)
        if self._may_prune(step) and trial.should_prune():
            active.pruned_step = step
            trial.set_user_attr("pruned_step", step)
            request(active.run_dir, STOP_COMMAND)
            self.say(f"Trial {trial.number} pruned at step {step} ({self.spec.objective} {value:.4f}); "
                     f"stopping run {active.run_dir.name}.")

    def _may_prune(self, step: int) -> bool:
        """A trial is pruned before its last evaluation only: a pilot evaluates once, at its end, and a trial at
        the end of its steps has nothing left to save."""
        return self.spec.pilot is None and not (self.spec.max_steps and step >= self.spec.max_steps)

    def _finish(self, study: optuna.Study, active: _Active, finished: dict[str, Any]) -> None:
        import optuna

        trial, status = active.trial, str(finished.get("status"))
        del self.active[trial.number]
        if active.pruned_step is not None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return
        if status in ("completed", "stopped") and active.best is not None:
            study.tell(trial, active.best)
            self.say(f"Trial {trial.number} {status}: {self.spec.objective} {active.best:.4f}.")
            return
        message = str((finished.get("summary") or {}).get("message") or f"The run {status}.")
        if active.best is None and status in ("completed", "stopped"):
            message = f"The run {status} without an evaluation, so it has no {self.spec.objective}."
        trial.set_user_attr("message", message[:500])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.say(f"Trial {trial.number} failed: {message}")

    # ------------------------------------------------------------------ the sweep's own state

    def _take_lock(self) -> None:
        fd = os.open(self.sweep_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SweepRefused(f"Sweep {self.sweep_dir.name} is already being driven by another slmtui sweep "
                               "process; wait for it or stop that process first.") from None
        self._lock_fd = fd
        write_state(self.sweep_dir, pid=os.getpid(), create_time=psutil.Process().create_time(), status="running")

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _record_finish(self, snapshot: SweepSnapshot) -> None:
        from slmtui.store import Store, StoreError

        best = snapshot.best
        try:
            store = Store(self.home)
            store.add_entry(journal_text(snapshot), kind="hyperparams", run=best.run_id if best else None,
                            source=f"{TAG_PREFIX}{snapshot.id}")
        except StoreError as exc:
            self.say(f"Could not write the sweep's journal entry: {exc}")
        write_state(self.sweep_dir, status="finished", ended=time.time())
