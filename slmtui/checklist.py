"""The decision checklist: the questions a careful team answers before it fine-tunes, and the verdict.

Headless (no textual): the questions are data (the tables below), the answers a `Checklist` of small
dataclasses, and everything derived from them is a pure function: `verdict()` says `go` or `not yet` and
why, `baseline()` names the best score an alternative reached, the number every run is compared with.
The answers persist through `Store.checklist()` / `Store.save_checklist()` as a versioned dict.
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from slmtui.store import Store

CHECKLIST_VERSION = 1


class ChecklistError(Exception):
    """An answer the checklist cannot hold, or a checklist saved by a newer slmtui; one sentence."""


@dataclass(frozen=True)
class Option:
    """One choice of a question: a stable key (what is stored), a label and a one-line hint."""

    key: str
    label: str
    hint: str = ""


@dataclass(frozen=True)
class Metric(Option):
    """A success metric; `direction` says which way is better, `judged` that people or a model rate it."""

    direction: str = "higher"
    judged: bool = False


DRIVERS = (
    Option("domain_knowledge", "Domain knowledge", "the model must know a field's facts and terms"),
    Option("output_quality", "Output quality/format", "answers must follow a style, schema or format"),
    Option("hallucinations", "Fewer hallucinations", "confident wrong answers cost too much"),
    Option("cost_latency", "Cost or latency", "a large model is too slow or too expensive to serve"),
    Option("small_devices", "Small devices", "it has to run on a laptop, a phone or at the edge"),
)
ALTERNATIVES = (
    Option("prompt_engineering", "Prompt engineering", "clearer instructions and examples in the prompt"),
    Option("rag", "Retrieval-augmented generation", "fetch current or specialised facts per question"),
    Option("reasoning", "Intermediate reasoning", "chain of thought: steps before the answer"),
    Option("agents", "Several agents", "split the task between cooperating model calls"),
    Option("memory", "Memory", "keep and recall what earlier turns established"),
)
METRICS = (
    Metric("accuracy", "Accuracy", "how often a classification is right", "higher"),
    Metric("perplexity", "Perplexity", "how well it predicts the next token", "lower"),
    Metric("benchmark", "Task benchmark", "the score on a test set of your own use case", "higher"),
    Metric("coherence", "Coherence", "no contradictions (rated by people or a model)", "higher", True),
    Metric("relevance", "Relevance", "answers are what you expect (rated)", "higher", True),
)
DATA_ROUTES = (
    Option("own", "Own data", "collect and label examples of the task yourselves"),
    Option("existing", "Existing dataset", "a public or bought dataset that matches the task"),
)
DATA_STEPS = (
    Option("preprocessing", "Preprocessing", "cleaned, deduplicated, malformed rows fixed or dropped"),
    Option("personal_data", "Personal data scrubbing", "names, addresses, phone numbers, e-mails"),
    Option("splits", "Train/val/test splits", "held-out sets no training step ever sees"),
    Option("context_window", "Context window fit", "the longest examples fit the model's context"),
    Option("pipeline", "Reproducible pipeline", "the same steps rerun automatically from the raw data"),
)
TRACKERS = (
    Option("slmtui", "slmtui events and journal"),
    Option("wandb", "Weights & Biases"),
    Option("mlflow", "MLflow"),
    Option("tensorboard", "TensorBoard"),
    Option("other", "Other"),
)
DIRECTIONS = ("higher", "lower")
DECISIONS = ("go", "not yet")

_LABELS = {o.key: o.label for o in (*DRIVERS, *ALTERNATIVES, *METRICS, *DATA_ROUTES, *DATA_STEPS, *TRACKERS)}
_METRIC = {m.key: m for m in METRICS}


def label(key: str) -> str:
    """The label of any option key (the key itself when unknown)."""
    return _LABELS.get(key, key)


@dataclass
class AlternativeAnswer:
    """Whether an alternative to fine-tuning was tried, its score on the baseline metric, and a note."""

    tried: bool = False
    score: float | None = None
    note: str = ""


@dataclass
class MetricAnswer:
    """A success metric's target (None: not used) and which way is better."""

    target: float | None = None
    direction: str = "higher"


@dataclass
class DataAnswer:
    """The data route, where the data comes from, notes on relevance and quality, and the steps done."""

    route: str = ""
    source: str = ""
    relevance: str = ""
    quality: str = ""
    steps: dict[str, bool] = field(default_factory=lambda: {s.key: False for s in DATA_STEPS})


@dataclass
class ComputeAnswer:
    """Where training runs and on which GPU."""

    platform: str = ""
    gpu: str = ""


@dataclass
class TrackingAnswer:
    """How experiments are tracked (a `TRACKERS` key) and a note."""

    tool: str = ""
    note: str = ""


@dataclass
class DecisionAnswer:
    """The team's own call: "" follows the computed verdict, else "go" or "not yet"; with its reason."""

    override: str = ""
    note: str = ""


@dataclass
class Checklist:
    """All the answers; `baseline_metric` "" means the first success metric with a target."""

    drivers: dict[str, bool] = field(default_factory=lambda: {d.key: False for d in DRIVERS})
    drivers_note: str = ""
    alternatives: dict[str, AlternativeAnswer] = field(
        default_factory=lambda: {a.key: AlternativeAnswer() for a in ALTERNATIVES})
    metrics: dict[str, MetricAnswer] = field(
        default_factory=lambda: {m.key: MetricAnswer(direction=m.direction) for m in METRICS})
    baseline_metric: str = ""
    data: DataAnswer = field(default_factory=DataAnswer)
    compute: ComputeAnswer = field(default_factory=ComputeAnswer)
    tracking: TrackingAnswer = field(default_factory=TrackingAnswer)
    decision: DecisionAnswer = field(default_factory=DecisionAnswer)
    updated: float | None = None

    def set(self, path: str, value: Any) -> None:
        """Set one answer by its dotted path (`alternatives.rag.score`, `data.steps.splits`, ...)."""
        *parents, leaf = path.split(".")
        node: Any = self
        for part in parents:
            node = _child(node, part, path)
        _set_leaf(node, leaf, value, path)


_ALLOWED: dict[str, tuple[str, ...]] = {
    "direction": DIRECTIONS,
    "override": ("", *DECISIONS),
    "route": ("", *(r.key for r in DATA_ROUTES)),
    "baseline_metric": ("", *(m.key for m in METRICS)),
    "tracking.tool": ("", *(t.key for t in TRACKERS)),
}


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if dataclasses.is_dataclass(node) and part in {f.name for f in dataclasses.fields(node)}:
        return getattr(node, part)
    raise ChecklistError(f"There is no answer {path!r}; check the question's name.")


_KINDS: dict[str, type] = {"bool": bool, "str": str, "float | None": float}


def _set_leaf(node: Any, leaf: str, value: Any, path: str) -> None:
    if isinstance(node, dict):
        if leaf not in node or not isinstance(node[leaf], bool):
            raise ChecklistError(f"There is no answer {path!r}; check the question's name.")
        node[leaf] = _checked(path, bool, value)
        return
    kinds = {f.name: _KINDS.get(str(f.type)) for f in dataclasses.fields(node)} if dataclasses.is_dataclass(
        node) else {}
    kind = kinds.get(leaf)
    if kind is None or leaf == "updated":
        raise ChecklistError(f"There is no answer {path!r}; check the question's name.")
    value = _checked(path, kind, value)
    allowed = _ALLOWED.get(path, _ALLOWED.get(leaf))
    if allowed is not None and value not in allowed:
        raise ChecklistError(f"{path} must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}.")
    setattr(node, leaf, value)


def _checked(path: str, kind: type, value: Any) -> Any:
    if kind is float:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
            return float(value)
        raise ChecklistError(f"{path} must be a number or empty, not {value!r}.")
    if not isinstance(value, kind):
        raise ChecklistError(f"{path} must be {'true or false' if kind is bool else 'text'}, not {value!r}.")
    return value


def parse_number(text: str) -> float | None:
    """A score or target as typed: "" is None, "0.82" and "82%" both read 0.82; anything else raises."""
    raw = text.strip().replace("_", "")
    if not raw:
        return None
    scale = 1.0
    if raw.endswith("%"):
        raw, scale = raw[:-1].strip(), 0.01
    try:
        number = float(raw)
    except ValueError:
        raise ChecklistError(f"{text.strip()!r} is not a number; type e.g. 0.85 or 85%.") from None
    if not math.isfinite(number):
        raise ChecklistError(f"{text.strip()!r} is not a finite number; type e.g. 0.85 or 85%.")
    return round(number * scale, 12)


def format_number(value: float | None) -> str:
    """A number as the form shows it ("" for none)."""
    return "" if value is None else f"{value:g}"


class Baseline(TypedDict):
    """The best score an alternative reached: `metric` key, `value`, `source` alternative key (+ labels)."""

    metric: str
    value: float
    source: str
    source_label: str
    direction: str


@dataclass(frozen=True)
class Verdict:
    """`decision` is what counts ("go"/"not yet"): the override if any, else `computed`."""

    decision: str
    computed: str
    reasons: tuple[str, ...]
    advice: tuple[str, ...]
    overridden: bool = False
    note: str = ""

    @property
    def go(self) -> bool:
        """Whether the decision that counts is go."""
        return self.decision == "go"

    def headline(self) -> str:
        """One line: "go", or "not yet: <first reason>"."""
        head = self.decision if self.decision == "go" or not self.reasons else f"not yet: {self.reasons[0]}"
        return f"{head} (your call; computed: {self.computed})" if self.overridden else head

    def to_json(self) -> dict[str, Any]:
        """The verdict as stored and printed by `slmtui checklist --json`."""
        data = dataclasses.asdict(self)
        data.update(reasons=list(self.reasons), advice=list(self.advice))
        return data


def resolved_baseline_metric(cl: Checklist) -> str | None:
    """The metric alternatives' scores are on: the chosen one, else the first metric with a target."""
    if cl.baseline_metric in _METRIC:
        return cl.baseline_metric
    return next((m.key for m in METRICS if cl.metrics[m.key].target is not None), None)


def baseline(cl: Checklist) -> Baseline | None:
    """The best score among the alternatives tried (first in table order on a tie); None without one."""
    metric = resolved_baseline_metric(cl)
    scored = [(a.key, cl.alternatives[a.key].score) for a in ALTERNATIVES
              if cl.alternatives[a.key].tried and cl.alternatives[a.key].score is not None]
    if metric is None or not scored:
        return None
    direction = cl.metrics[metric].direction
    sign = 1.0 if direction == "higher" else -1.0
    key, value = max(scored, key=lambda kv: sign * float(kv[1] or 0.0))
    assert value is not None
    return Baseline(metric=metric, value=value, source=key, source_label=label(key), direction=direction)


def improvement(base: Baseline, value: float) -> float:
    """How much better `value` is than the baseline (negative: worse), in the metric's direction."""
    return value - base["value"] if base["direction"] == "higher" else base["value"] - value


def meets(value: float, target: float, direction: str) -> bool:
    """Whether a score reaches a target, which way being better given by `direction`."""
    return value >= target if direction == "higher" else value <= target


def verdict(cl: Checklist) -> Verdict:
    """Go or not yet, with the reasons (what blocks) and advice (what is worth doing) from the answers."""
    reasons: list[str] = []
    advice: list[str] = []
    tried = [a for a in ALTERNATIVES if cl.alternatives[a.key].tried]
    targets = [m for m in METRICS if cl.metrics[m.key].target is not None]
    metric = resolved_baseline_metric(cl)
    best = baseline(cl)

    if not any(cl.drivers.values()):
        reasons.append("nothing says what drives it: pick at least one reason")
    if not targets:
        reasons.append("no success metric has a target")
    if not tried:
        reasons.append("no alternative tried yet: start with prompt engineering")
    else:
        if not cl.alternatives["prompt_engineering"].tried:
            reasons.append("prompt engineering not tried: the cheapest alternative")
        needs_facts = [d for d in ("domain_knowledge", "hallucinations") if cl.drivers.get(d)]
        if needs_facts and not cl.alternatives["rag"].tried:
            reasons.append(f"retrieval-augmented generation not tried, yet {label(needs_facts[0]).lower()} "
                           "drives this")
        if best is None and metric is not None:
            reasons.append(f"no baseline: score the alternatives you tried on {label(metric).lower()}")
        advice += [f"give {a.label.lower()} a score" for a in tried
                   if best is not None and cl.alternatives[a.key].score is None]
    if best is not None:
        target = cl.metrics[best["metric"]].target
        if target is not None and meets(best["value"], target, best["direction"]):
            sign = "≥" if best["direction"] == "higher" else "≤"
            reasons.append(f"{best['source_label'].lower()} already meets the {label(best['metric']).lower()} "
                           f"target ({format_number(best['value'])} {sign} {format_number(target)})")
    if not cl.data.route:
        reasons.append("no data route chosen: own data or an existing dataset")
    if not cl.data.steps.get("personal_data"):
        reasons.append("personal data not handled: scrub names, addresses, phones and e-mails")

    left = [s.label.lower() for s in DATA_STEPS if s.key != "personal_data" and not cl.data.steps.get(s.key)]
    if left:
        advice.append(f"data steps not done: {', '.join(left)}")
    if cl.data.route and not (cl.data.relevance.strip() and cl.data.quality.strip()):
        advice.append("note why the data is relevant and how good it is")
    if not (cl.compute.platform.strip() and cl.compute.gpu.strip()):
        advice.append("name the platform and GPU: start with the smallest GPU that fits")
    if not cl.tracking.tool:
        advice.append("choose experiment tracking before the first run")
    judged = [m.label.lower() for m in targets if m.judged]
    if judged:
        advice.append(f"{' and '.join(judged)} need people or a model to rate the answers")

    computed = "not yet" if reasons else "go"
    override = cl.decision.override if cl.decision.override in DECISIONS else ""
    return Verdict(decision=override or computed, computed=computed, reasons=tuple(reasons),
                   advice=tuple(advice), overridden=bool(override) and override != computed,
                   note=cl.decision.note)


# ---------------------------------------------------------------------- persistence


def to_dict(cl: Checklist) -> dict[str, Any]:
    """The JSON-able, versioned form stored; `verdict` and `baseline` are derived copies for readers."""
    data = dataclasses.asdict(cl)
    data["version"] = CHECKLIST_VERSION
    data["verdict"] = verdict(cl).to_json()
    data["baseline"] = baseline(cl)
    return data


def from_dict(data: dict[str, Any]) -> Checklist:
    """Answers from their stored form; unknown keys and values of the wrong type fall back to defaults."""
    version = data.get("version", CHECKLIST_VERSION)
    if isinstance(version, int) and not isinstance(version, bool) and version > CHECKLIST_VERSION:
        raise ChecklistError(f"The checklist was saved by a newer slmtui (version {version}); "
                             "upgrade slmtui to read it.")
    cl = Checklist()
    _fill(cl, data, "")
    updated = data.get("updated")
    cl.updated = float(updated) if isinstance(updated, int | float) and not isinstance(updated, bool) else None
    return cl


def _fill(node: Any, data: Any, prefix: str) -> None:
    if not isinstance(data, dict):
        return
    names = node.keys() if isinstance(node, dict) else [f.name for f in dataclasses.fields(node)]
    for name in names:
        if name == "updated" or name not in data:
            continue
        current = node[name] if isinstance(node, dict) else getattr(node, name)
        if isinstance(current, dict) or dataclasses.is_dataclass(current):
            _fill(current, data[name], f"{prefix}{name}.")
            continue
        with suppress(ChecklistError):
            _set_leaf(node, name, data[name], prefix + name)


def load(store: Store) -> Checklist:
    """The saved answers (defaults when none were saved)."""
    return from_dict(store.checklist())


def save(store: Store, cl: Checklist) -> dict[str, Any]:
    """Stamp and write the answers; returns what was stored."""
    cl.updated = time.time()
    data = to_dict(cl)
    store.save_checklist(data)
    return data


# ---------------------------------------------------------------------- text


def describe(cl: Checklist) -> list[str]:
    """The answers, verdict and baseline as plain lines (the CLI's output; fits Markdown too)."""
    v, base = verdict(cl), baseline(cl)
    lines = [f"Verdict: {v.decision}" + (f" (your call; computed: {v.computed})" if v.overridden else "")]
    lines += [f"  - {r}" for r in v.reasons]
    if v.note:
        lines.append(f"  your note: {v.note}")
    lines += [f"  advice: {a}" for a in v.advice]
    lines.append("Baseline: " + (f"{label(base['metric']).lower()} {format_number(base['value'])} "
                                 f"from {base['source_label'].lower()}" if base else "none yet"))
    chosen = [d.label for d in DRIVERS if cl.drivers[d.key]]
    lines.append("Drives it: " + (", ".join(chosen) or "-") + _note(cl.drivers_note))
    metric = resolved_baseline_metric(cl)
    lines.append(f"Alternatives (scores on {label(metric).lower() if metric else '-'}):")
    for a in ALTERNATIVES:
        ans = cl.alternatives[a.key]
        state = f"tried, {format_number(ans.score) or 'no score'}" if ans.tried else "not tried"
        lines.append(f"  {a.label}: {state}{_note(ans.note)}")
    lines.append("Success metrics:")
    for m in METRICS:
        target = cl.metrics[m.key].target
        if target is not None:
            lines.append(f"  {m.label}: target {format_number(target)}, {cl.metrics[m.key].direction} is better")
    if all(cl.metrics[m.key].target is None for m in METRICS):
        lines.append("  none with a target")
    route = label(cl.data.route) if cl.data.route else "no route chosen"
    lines.append(f"Data: {route}" + (f" ({cl.data.source})" if cl.data.source else ""))
    for name, text in (("relevance", cl.data.relevance), ("quality", cl.data.quality)):
        if text:
            lines.append(f"  {name}: {text}")
    lines.append("  steps: " + ", ".join(f"[{'x' if cl.data.steps[s.key] else ' '}] {s.label}" for s in DATA_STEPS))
    lines.append(f"Compute: {cl.compute.platform or '-'}, GPU {cl.compute.gpu or '-'}")
    lines.append(f"Tracking: {label(cl.tracking.tool) if cl.tracking.tool else '-'}" + _note(cl.tracking.note))
    return lines


def _note(text: str) -> str:
    return f" ({text})" if text.strip() else ""
