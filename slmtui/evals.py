"""Quick evaluations as the console and CLI use them: run `python -m engine eval`, keep, rank, compare.

Each model is evaluated by its own engine process (one at a time: they share the GPU). Progress comes from
the evaluation's `events.jsonl`; the result from its `summary.json`; both kept in the store. A run's
comparison evaluates its adapter and its base model on the same test split; the gain between them, and
over the checklist's baseline, is stored with the fine-tuned result. Light: no textual, no ML stack.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.paths import evals_dir, new_eval_id
from engine.protocol import ENGINE_LOG, EVENTS_FILE, SPEC_FILE, SUMMARY_FILE, EventFollower, read_json
from slmtui.store import EvalResult, Store

#: Which way is better, for the figures a comparison looks at.
DIRECTIONS = {"accuracy": "higher", "loss": "lower", "perplexity": "lower", "bits_per_char": "lower",
              "tokens_per_s": "higher", "mem_peak_gib": "lower"}
#: Metrics the engine computes; the checklist's others are rated by people.
COMPUTED = ("accuracy", "perplexity")
DEFAULT_METRICS = ("perplexity", "accuracy")
POLL_S = 0.2

OnEvent = Callable[[dict[str, Any]], None]


class EvalFailed(Exception):
    """An evaluation could not be done; one sentence (the engine's)."""


@dataclass(frozen=True)
class EvalRequest:
    """One model to evaluate on one dataset; `options` are engine data options (`--shape chat`, ...)."""

    model: str
    data: str = ""
    subset: int = 64
    split: str = "validation"
    metrics: tuple[str, ...] = DEFAULT_METRICS
    options: tuple[tuple[str, str], ...] = ()
    device: str = "auto"
    threads: int = 0
    max_new_tokens: int = 0
    base: bool = False  # evaluate the base model of `model` (a run or an adapter)

    def argv(self, eval_id: str) -> list[str]:
        """Arguments of `python -m engine eval`."""
        args = ["--model", self.model, "--split", self.split, "--subset", str(self.subset),
                "--metrics", ",".join(self.metrics) or ",".join(DEFAULT_METRICS), "--device", self.device,
                "--id", eval_id]
        if self.data:
            args += ["--data", self.data]
        if self.base:
            args.append("--base")
        if self.threads:
            args += ["--threads", str(self.threads)]
        if self.max_new_tokens:
            args += ["--max-new-tokens", str(self.max_new_tokens)]
        for key, value in self.options:
            args += [f"--{key}", value]
        return args


def checklist_metrics(store: Store) -> tuple[str, ...]:
    """The checklist's success metrics with a target that the engine can compute; the default without any."""
    from slmtui.checklist import load

    cl = load(store)
    chosen = tuple(key for key in COMPUTED if cl.metrics[key].target is not None)
    return chosen or DEFAULT_METRICS


def run_eval(request: EvalRequest, store: Store | None = None, *, run: str | None = None, role: str | None = None,
             on_event: OnEvent | None = None, should_stop: Callable[[], bool] | None = None,
             home: Path | None = None) -> EvalResult:
    """Evaluate one model in an engine process, passing its events to `on_event`; store and return the result.

    Raises `EvalFailed` with the engine's sentence when it could not (or `should_stop` said so).
    """
    from slmtui.engine_proc import engine_command, engine_env

    store = store or Store(home)
    root = evals_dir(home or store.home)
    eval_id = new_eval_id(request.model, root)
    folder = root / eval_id
    with open(os.open(folder / ENGINE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        proc = subprocess.Popen(engine_command("eval", *request.argv(eval_id)), env=engine_env(home or store.home),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    follower = EventFollower(folder / EVENTS_FILE)
    while True:
        done = proc.poll() is not None
        for event in follower.poll():
            if on_event is not None:
                on_event(event)
        if done:
            break
        if should_stop is not None and should_stop():
            proc.terminate()
            proc.wait()
            raise EvalFailed(f"The evaluation of {request.model} was cancelled.")
        time.sleep(POLL_S)
    summary = read_json(folder / SUMMARY_FILE)
    if proc.returncode != 0 or summary.get("status") != "completed":
        raise EvalFailed(str(summary.get("error") or _last_line(folder / ENGINE_LOG)
                             or f"The evaluation of {request.model} ended with status {proc.returncode}."))
    return store.add_eval_result(summary, run=run, role=role)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


@dataclass
class Outcome:
    """The results of several evaluations, and the models that failed with why."""

    results: list[EvalResult] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def evaluate_models(requests: Sequence[EvalRequest], store: Store | None = None,
                    on_event: Callable[[str, dict[str, Any]], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> Outcome:
    """Evaluate each model in turn (one engine process each); a failure does not stop the others."""
    outcome = Outcome()
    for request in requests:
        def forward(event: dict[str, Any], model: str = request.model) -> None:
            if on_event is not None:
                on_event(model, event)
        try:
            outcome.results.append(run_eval(request, store, on_event=forward, should_stop=should_stop))
        except EvalFailed as exc:
            outcome.failures[request.model] = str(exc)
        if should_stop is not None and should_stop():
            break
    return outcome


def primary_metric(results: Sequence[EvalResult], preferred: str | None = None) -> str:
    """The figure to rank by: the checklist's metric when every result has it, else accuracy when it tells
    the results apart, else the loss on the responses."""
    def everywhere(key: str) -> bool:
        return bool(results) and all(r.metric(key) is not None for r in results)

    if preferred in DIRECTIONS and preferred is not None and everywhere(preferred):
        return preferred
    if everywhere("accuracy") and len({r.metric("accuracy") for r in results}) > 1:
        return "accuracy"
    return "loss"


def rank(results: Sequence[EvalResult], preferred: str | None = None) -> list[EvalResult]:
    """Best first by `primary_metric`, ties broken by the loss."""
    key = primary_metric(results, preferred)
    sign = -1.0 if DIRECTIONS[key] == "higher" else 1.0

    def order(r: EvalResult) -> tuple[float, float]:
        value, loss = r.metric(key), r.metric("loss")
        return (sign * value if value is not None else float("inf"), loss if loss is not None else float("inf"))

    return sorted(results, key=order)


def latest_by_model(results: Sequence[EvalResult]) -> dict[str, EvalResult]:
    """The newest result of each model."""
    out: dict[str, EvalResult] = {}
    for r in sorted(results, key=lambda r: (r.created, r.id)):
        out[r.model] = r
    return out


# ---------------------------------------------------------------------- base against fine-tuned


@dataclass(frozen=True)
class RunComparison:
    """A run's fine-tuned model and its base, evaluated on the same split, and the gain between them."""

    run: str
    fine_tuned: EvalResult
    base: EvalResult
    gain: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "fine_tuned": self.fine_tuned.to_json(), "base": self.base.to_json(),
                "gain": self.gain}


def _better_by(key: str, new: float, old: float) -> float:
    """How much better `new` is than `old` (negative: worse), in the figure's direction."""
    return new - old if DIRECTIONS[key] == "higher" else old - new


def _on_baseline_scale(metric: str, value: float, baseline_value: float) -> float:
    """Accuracy is a fraction here; a checklist baseline written as a percentage (above 1) is met halfway."""
    return value * 100 if metric == "accuracy" and baseline_value > 1 else value


def gain(fine_tuned: EvalResult, base: EvalResult, baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """What fine-tuning gained: per figure (positive is better), on the headline metric, and over the checklist's
    baseline (the best alternative's score) where the engine computes that metric."""
    deltas = {}
    for key in DIRECTIONS:
        new, old = fine_tuned.metric(key), base.metric(key)
        if new is not None and old is not None:
            deltas[key] = _better_by(key, new, old)
    metric = primary_metric([fine_tuned, base], baseline["metric"] if baseline else None)
    out: dict[str, Any] = {"metric": metric, "fine_tuned": fine_tuned.metric(metric), "base": base.metric(metric),
                           "delta": deltas.get(metric), "deltas": deltas, "baseline": baseline,
                           "over_baseline": None}
    if baseline and baseline.get("metric") in COMPUTED:
        value = fine_tuned.metric(str(baseline["metric"]))
        if value is not None:
            from slmtui.checklist import Baseline, improvement

            scaled = _on_baseline_scale(str(baseline["metric"]), value, float(baseline["value"]))
            out["over_baseline"] = improvement(Baseline(**baseline), scaled)  # type: ignore[typeddict-item]
    return out


def checklist_baseline(store: Store) -> dict[str, Any] | None:
    """The checklist's baseline (best alternative's score), as a plain dict."""
    from slmtui.checklist import baseline, load

    found = baseline(load(store))
    return dict(found) if found else None


def evaluate_run(run_dir: Path, store: Store | None = None, subset: int = 0,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, threads: int = 0) -> RunComparison:
    """Evaluate a run's adapter (or model) and its base on the run's test split; store both and the gain."""
    from engine.spec import SpecError, load_spec

    store = store or Store()
    try:
        spec = load_spec(run_dir / SPEC_FILE, check_files=False)
    except SpecError as exc:
        raise EvalFailed(f"The run {run_dir.name} has a broken spec ({exc.messages[0]})") from None
    split = "test" if spec.data.test_fraction > 0 else "validation"
    metrics = checklist_metrics(store)
    results = []
    for role, base in (("fine-tuned", False), ("base", True)):
        request = EvalRequest(model=str(run_dir), data=str(run_dir), subset=subset, split=split, metrics=metrics,
                              base=base, threads=threads)

        def forward(event: dict[str, Any], role: str = role) -> None:
            if on_event is not None:
                on_event(role, event)
        results.append(run_eval(request, store, run=run_dir.name, role=role, on_event=forward,
                                should_stop=should_stop))
    tuned, base_result = results
    found = gain(tuned, base_result, checklist_baseline(store))
    tuned = store.update_eval_details(tuned.id, gain=found)
    return RunComparison(run_dir.name, tuned, base_result, found)


def results_for_run(run_id: str, store: Store | None = None) -> RunComparison | None:
    """The latest base-against-fine-tuned comparison of a run, or None when it was never evaluated."""
    store = store or Store()
    found = store.eval_results(run=run_id)
    tuned = [r for r in found if r.role == "fine-tuned"]
    bases = [r for r in found if r.role == "base"]
    if not tuned or not bases:
        return None
    latest = tuned[-1]
    stored = latest.details.get("gain")
    return RunComparison(run_id, latest, bases[-1], stored if isinstance(stored, dict) else gain(latest, bases[-1]))


def run_gains(store: Store | None = None) -> dict[str, dict[str, Any]]:
    """Every compared run's gain (the journal's run table and export show them)."""
    store = store or Store()
    runs = {r.run for r in store.eval_results() if r.run}
    out = {}
    for run_id in sorted(runs):
        found = results_for_run(run_id, store)
        if found is not None:
            out[run_id] = found.gain
    return out


def describe_gain(found: dict[str, Any]) -> str:
    """One cell of text: "accuracy +0.420 (0.900 vs 0.480), +0.100 over prompt engineering"."""
    metric, delta = found.get("metric"), found.get("delta")
    if metric is None or delta is None:
        return "-"
    text = f"{metric} {delta:+.3f} ({found['fine_tuned']:.3f} vs {found['base']:.3f})"
    over, baseline = found.get("over_baseline"), found.get("baseline")
    if over is not None and baseline:
        text += f", {over:+.3g} over {str(baseline.get('source_label', 'the baseline')).lower()}"
    return text


def gains_markdown(store: Store | None = None) -> str:
    """The base-against-fine-tuned table for the journal's Markdown export ("" when no run was compared)."""
    gains = run_gains(store)
    if not gains:
        return ""
    rows = ["| run | metric | fine-tuned | base | gain | over the baseline |", "| --- | --- | --- | --- | --- | --- |"]
    def fmt(value: Any, sign: str = "") -> str:
        return "" if value is None else f"{value:{sign}.4g}"

    for run_id, g in gains.items():
        source = (g.get("baseline") or {}).get("source_label", "")
        over = fmt(g.get("over_baseline"), "+")
        rows.append(f"| `{run_id}` | {g.get('metric')} | {fmt(g.get('fine_tuned'))} | {fmt(g.get('base'))} | "
                    f"{fmt(g.get('delta'), '+')} | {over + f' ({source})' if over else ''} |")
    return "\n".join(rows)
