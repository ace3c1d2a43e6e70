"""The sweep file: a base run spec, the settings to search, and how to search them.

A sweep file is TOML with a `[sweep]` table (the base spec's path, the number of trials, each trial's budget, the
objective) and a `[space]` table (the settings tried). Every value the space can give is checked against the
base spec up front, so a bad rank fails before the first trial rather than at the fifth. Each problem is one
sentence naming the key (`SweepError`). Light: no Optuna here; `suggest` takes any object with Optuna's
`suggest_*` methods.
"""

from __future__ import annotations

import copy
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from engine.spec import RunSpec, SpecError, load_spec, parse_spec, spec_to_dict

#: The objectives a trial's `eval` events carry, and the direction each is best in by default.
OBJECTIVES = {"val_loss": "minimize", "perplexity": "minimize"}
DIRECTIONS = ("minimize", "maximize")
PRUNERS = ("median", "none")

#: Each searchable setting: the spec keys it sets, and whether it is a number range (`{low, high}`) or a list.
SPACE_KEYS: dict[str, tuple[str, ...]] = {
    "lr": ("train.lr",),
    "rank": ("method.rank",),
    "alpha": ("method.alpha",),
    "dropout": ("method.dropout",),
    "batch": ("train.micro_batch", "train.grad_accum"),
    "max_length": ("data.max_length",),
    "epochs": ("train.epochs",),
    "method": ("method.kind",),
}
#: The settings that may be a range; `lr` is searched on a log scale, `dropout` on a linear one.
RANGES = {"lr": True, "dropout": False}
_SWEEP_KEYS = ("name", "base", "trials", "at_once", "objective", "direction", "seed", "pruner", "startup_trials",
               "warmup_steps", "budget")
_BUDGET_KEYS = ("pilot", "max_steps")


class SweepError(ValueError):
    """A sweep file a user must fix; the text is one sentence per problem, each naming its key."""


class Suggester(Protocol):
    """The part of an Optuna trial `suggest` uses."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: the base spec, the space, and how the search runs."""

    name: str
    base: RunSpec
    space: dict[str, Any]
    trials: int = 10
    at_once: int = 0
    objective: str = "val_loss"
    direction: str = "minimize"
    seed: int = 0
    pruner: str = "median"
    startup_trials: int = 2
    warmup_steps: int = 0
    pilot: float | None = None
    max_steps: int = 0
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


def _nearest(key: str, known: tuple[str, ...]) -> str:
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else f" (known keys: {', '.join(known)})"


def _number(value: Any, whole: bool = False) -> TypeGuard[float]:
    kinds = (int,) if whole else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)


def _batch_choice(value: Any) -> str | None:
    """`[micro_batch, grad_accum]` as the choice Optuna stores ("8x2"), or None when malformed."""
    if isinstance(value, list) and len(value) == 2 and all(_number(v, whole=True) and v >= 1 for v in value):
        return f"{value[0]}x{value[1]}"
    return None


def apply_params(base: RunSpec, params: dict[str, Any]) -> RunSpec:
    """The base spec with a trial's settings put in (`batch` is "MICROxACCUM"); validated like any spec."""
    raw = spec_to_dict(base)
    for key, value in params.items():
        targets = SPACE_KEYS[key]
        values = [int(v) for v in str(value).split("x")] if key == "batch" else [value]
        for target, item in zip(targets, values, strict=True):
            table, name = target.split(".")
            raw[table][name] = item
    return parse_spec(raw, check_files=False)


def _space_values(key: str, value: Any, problems: list[str]) -> list[Any]:
    """The values of one space entry to check against the base spec (a range's two ends, a list's items)."""
    where = f"space.{key}"
    if isinstance(value, dict):
        if key not in RANGES:
            problems.append(f"{where} must be a list of values to try; only {', '.join(RANGES)} may be a "
                            "{ low, high } range.")
            return []
        low, high = value.get("low"), value.get("high")
        extra = sorted(set(value) - {"low", "high"})
        if extra or not (_number(low) and _number(high)) or not low < high:
            problems.append(f"{where} must be {{ low = A, high = B }} with numbers A < B.")
            return []
        if RANGES[key] and low <= 0:
            problems.append(f"{where} is searched on a log scale, so its low end must be above 0, not {low:g}.")
            return []
        return [float(low), float(high)]
    if not isinstance(value, list) or not value:
        problems.append(f"{where} must be a non-empty list of values to try"
                        + (" or a { low, high } range." if key in RANGES else "."))
        return []
    if key == "batch":
        choices = [_batch_choice(v) for v in value]
        if None in choices:
            problems.append(f"{where} must list [micro_batch, grad_accum] pairs of whole numbers, such as "
                            "[[4, 4], [8, 2]].")
            return []
        return choices
    if len({repr(v) for v in value}) != len(value):
        problems.append(f"{where} lists a value twice; list each once.")
        return []
    return list(value)


def _check_space(base: RunSpec, space: Any, problems: list[str]) -> dict[str, Any]:
    if not isinstance(space, dict) or not space:
        problems.append(f"[space] must list at least one setting to search: {', '.join(SPACE_KEYS)}.")
        return {}
    checked: dict[str, Any] = {}
    for key, value in space.items():
        if key not in SPACE_KEYS:
            problems.append(f"Unknown key {key!r} in [space]{_nearest(key, tuple(SPACE_KEYS))}.")
            continue
        values = _space_values(key, value, problems)
        for item in values:
            try:
                apply_params(base, {key: item})
            except SpecError as exc:
                problems.append(f"space.{key} value {item!r} makes a bad spec: {exc}")
                break
            except (TypeError, ValueError):
                problems.append(f"space.{key} value {item!r} is not a value {'/'.join(SPACE_KEYS[key])} takes.")
                break
        else:
            if values:
                checked[key] = value if isinstance(value, dict) else values
    return checked


def suggest(trial: Suggester, space: dict[str, Any]) -> dict[str, Any]:
    """Draw one trial's settings from the space (Optuna returns a trial's stored draw when asked again)."""
    params: dict[str, Any] = {}
    for key, value in space.items():
        if isinstance(value, dict):
            params[key] = trial.suggest_float(key, value["low"], value["high"], log=RANGES[key])
        else:
            params[key] = trial.suggest_categorical(key, value)
    return params


def _sweep_settings(table: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    for key in table:
        if key not in _SWEEP_KEYS:
            problems.append(f"Unknown key {key!r} in [sweep]{_nearest(key, _SWEEP_KEYS)}.")
    out: dict[str, Any] = {}
    wholes = {"trials": (1, 10000), "at_once": (0, 1024), "seed": (0, 2**32 - 1), "startup_trials": (0, 10000),
              "warmup_steps": (0, 10**9)}
    for key, (low, high) in wholes.items():
        if key in table:
            value = table[key]
            if not _number(value, whole=True) or not low <= value <= high:
                problems.append(f"sweep.{key} must be a whole number from {low} to {high}, not {value!r:.40}.")
            else:
                out[key] = value
    objective = table.get("objective", "val_loss")
    if objective not in OBJECTIVES:
        problems.append(f"sweep.objective must be one of {', '.join(OBJECTIVES)}, not {objective!r:.40}.")
    else:
        out["objective"] = objective
        out["direction"] = OBJECTIVES[objective]
    direction = table.get("direction", out.get("direction", "minimize"))
    if direction not in DIRECTIONS:
        problems.append(f"sweep.direction must be minimize or maximize, not {direction!r:.40}.")
    else:
        out["direction"] = direction
    pruner = table.get("pruner", "median")
    if pruner not in PRUNERS:
        problems.append(f"sweep.pruner must be median or none, not {pruner!r:.40}.")
    out["pruner"] = pruner
    _budget(table.get("budget"), out, problems)
    return out


def _budget(budget: Any, out: dict[str, Any], problems: list[str]) -> None:
    wanted = "[sweep.budget] needs pilot = FRACTION (such as 0.1) or max_steps = N for each trial"
    if not isinstance(budget, dict):
        problems.append(f"{wanted}.")
        return
    for key in budget:
        if key not in _BUDGET_KEYS:
            problems.append(f"Unknown key {key!r} in [sweep.budget]{_nearest(key, _BUDGET_KEYS)}.")
    pilot, steps = budget.get("pilot"), budget.get("max_steps")
    if (pilot is None) == (steps is None):
        problems.append(f"{wanted}, one of the two.")
    elif pilot is not None and not (_number(pilot) and 0 < pilot < 1):
        problems.append(f"sweep.budget.pilot must be a fraction between 0 and 1, such as 0.1, not {pilot!r:.40}.")
    elif steps is not None and not (_number(steps, whole=True) and steps >= 1):
        problems.append(f"sweep.budget.max_steps must be a whole number of at least 1, not {steps!r:.40}.")
    else:
        out["pilot"] = float(pilot) if pilot is not None else None
        out["max_steps"] = int(steps or 0)


def parse_sweep(raw: dict[str, Any], base_dir: Path) -> SweepSpec:
    """Build and check a `SweepSpec` from a parsed sweep file; raise `SweepError` listing every problem."""
    problems: list[str] = []
    for key in raw:
        if key not in ("sweep", "space"):
            problems.append(f"Unknown table {key!r} in the sweep file; it holds [sweep] and [space].")
    table = raw.get("sweep")
    if not isinstance(table, dict):
        raise SweepError("The sweep file needs a [sweep] table with base = \"RUN.toml\" (the spec slmtui train "
                         "takes) and a [sweep.budget].")
    base_ref = table.get("base")
    if not isinstance(base_ref, str) or not base_ref:
        raise SweepError("sweep.base must name the base run spec, such as base = \"run.toml\" (relative to the "
                         "sweep file).")
    base_path = (base_dir / base_ref).expanduser()
    try:
        base = load_spec(base_path)
    except SpecError as exc:
        raise SweepError(f"sweep.base {base_ref}: {exc}") from None
    if base.data.val_fraction <= 0:
        problems.append("The base spec's data.val_fraction is 0, so no trial has a validation split to measure the "
                        "objective on; raise it.")
    settings = _sweep_settings(table, problems)
    space = _check_space(base, raw.get("space"), problems)
    name = table.get("name", base.name)
    if not isinstance(name, str) or not name.strip():
        problems.append("sweep.name must be a non-empty string (it names the sweep's folder).")
    if problems:
        raise SweepError(" ".join(problems))
    return SweepSpec(name=str(name), base=base, space=space, raw=copy.deepcopy(raw), **settings)


def load_sweep(path: Path) -> SweepSpec:
    """Read and check a sweep file; raise `SweepError` for anything a user must fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"Cannot read the sweep file {path}: {exc.strerror or exc}; check the path.") from None
    except UnicodeDecodeError:
        raise SweepError(f"The sweep file {path} is not UTF-8 text; save it as UTF-8.") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"The sweep file {path} is not valid TOML ({exc}); fix the syntax.") from None
    return parse_sweep(raw, path.parent)
