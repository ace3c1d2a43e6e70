"""The New run editor's logic, headless: the fields it edits, form text to a spec, validation, defaults,
the last run's spec and saving (launching is `slmtui.launch`, shared with `slmtui train`).

The screen keeps the spec as a raw TOML-like dict (so keys the form does not show, such as `data.map`, survive a
round trip) and overlays the form's text on it; `engine.spec.parse_spec` says what is wrong, each problem with
the key it is about.
"""

from __future__ import annotations

import tomllib
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.paths import slmtui_home
from engine.protocol import SPEC_FILE
from engine.spec import CHOICES, RunSpec, SpecError, SpecProblem, dump_spec, parse_spec, slug
from slmtui.demo import demo_spec
from slmtui.runs import RunNotFound, resolve_run

#: The fraction of the data a pilot run trains on (`slmtui train --pilot 0.05`).
PILOT_FRACTION = 0.05


@dataclass(frozen=True)
class FormField:
    """One field of the editor: where it lives in the spec, its label and the kind of control."""

    table: str  # "" for top-level keys
    key: str
    label: str
    kind: str  # text | int | float | choice | bool | modules | list
    help: str = ""
    #: A switch's words when off and when on (short: the form's value column is narrow at 80 columns).
    states: tuple[str, str] = ("off", "on")
    #: The hint inside an empty text field when `help` is longer than the field at 80 columns (32 cells).
    hint: str = ""

    @property
    def placeholder(self) -> str:
        """What an empty text field shows: the short hint, else the help (the tooltip always has the help)."""
        return self.hint or self.help

    @property
    def path(self) -> str:
        """`table.key` (or `key` at the top level): how problems and the form name it."""
        return f"{self.table}.{self.key}" if self.table else self.key

    @property
    def choices(self) -> tuple[str, ...]:
        """The allowed words of a choice field."""
        return tuple(c for c in CHOICES.get((self.table, self.key), ()) if c)


#: The editor's fields in order, grouped by section title.
SECTIONS: tuple[tuple[str, tuple[FormField, ...]], ...] = (
    ("Run", (FormField("", "name", "Name", "text", "names the run folder"),)),
    ("Model and data", (
        FormField("model", "name", "Model", "text", "a local folder, a catalog name or a hub id",
                  hint="folder, catalog name or hub id"),
        FormField("model", "trust_remote_code", "Remote code", "bool",
                  "ticked, the model repository's own Python code runs: only for models you trust",
                  states=("off (safe)", "ON: its code runs")),
        FormField("data", "path", "Dataset", "text", "a JSONL/CSV/Parquet file, a saved dataset or a hub id",
                  hint="file, saved dataset or hub id"),
        FormField("data", "shape", "Shape", "choice"),
        FormField("data", "max_length", "Max length", "int", "tokens per example"),
        FormField("data", "overlength", "Over max", "choice"),
        FormField("data", "scrub", "Scrub", "choice", "personal data: auto and on scrub, off keeps it"),
        FormField("data", "scrub_types", "Scrub types", "list", "blank: all; or e.g. EMAIL, NAME, ADDRESS",
                  hint="blank: all; or e.g. EMAIL, NAME"),
    )),
    ("Method", (
        FormField("method", "kind", "Method", "choice"),
        FormField("method", "rank", "Rank", "int"),
        FormField("method", "alpha", "Alpha", "float"),
        FormField("method", "dropout", "Dropout", "float"),
        FormField("method", "target_modules", "Targets", "modules", "all-linear, or names separated by commas",
                  hint="all-linear, or names, commas"),
        FormField("method", "quant_type", "Quant type", "choice", "QLoRA and QDoRA only"),
    )),
    ("Batch and schedule", (
        FormField("train", "micro_batch", "Micro-batch", "int"),
        FormField("train", "grad_accum", "Grad accum", "int"),
        FormField("train", "lr", "Learning rate", "float"),
        FormField("train", "schedule", "Schedule", "choice"),
        FormField("train", "warmup_steps", "Warm-up steps", "int"),
        FormField("train", "epochs", "Epochs", "float"),
        FormField("train", "max_steps", "Max steps", "int", "0: from epochs"),
    )),
    ("Intervals and runtime", (
        FormField("train", "eval_every", "Eval every", "int", "steps; 0 never"),
        FormField("train", "save_every", "Save every", "int", "steps; 0 never"),
        FormField("train", "seed", "Seed", "int"),
        FormField("train", "precision", "Precision", "choice"),
        FormField("train", "master_weights", "Master dtype", "choice",
                  "full fine-tuning: bf16 master weights halve their memory"),
        FormField("train", "packing", "Packing", "choice", "auto: no padding where exact"),
        FormField("train", "gradient_checkpointing", "Checkpointing", "bool", "recompute activations to save memory",
                  states=("off", "on (saves memory)")),
        FormField("train", "on_oom", "On OOM", "choice"),
        FormField("train", "devices", "GPUs", "int", "one training process per GPU"),
        FormField("train", "strategy", "Strategy", "choice", "auto: FSDP if one GPU is too small"),
    )),
)
FIELDS: tuple[FormField, ...] = tuple(f for _, group in SECTIONS for f in group)
FIELDS_BY_PATH: dict[str, FormField] = {f.path: f for f in FIELDS}


def default_raw(home: Path | None = None, saved_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new spec: the engine's defaults, with the demo's model and data when HOME/demo is built, and the Data
    screen's saved settings (`saved_data`: `[data]` keys, from `slmtui.data_report.saved_spec_data`) over them."""
    demo = demo_spec(home or slmtui_home())
    if Path(demo.data.path).is_file() and (Path(demo.model.name) / "config.json").is_file():
        raw = _plain(demo)  # the settings `slmtui demo` trains with, which are known to learn
    else:
        raw = _plain(RunSpec())
    raw["data"].update(deepcopy(saved_data or {}))  # key by key: a saved column map replaces the default's
    return raw


def _plain(spec: RunSpec) -> dict[str, Any]:
    raw: dict[str, Any] = tomllib.loads(dump_spec(spec))
    return raw


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` laid over it, table by table (neither is modified)."""
    out = deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = deepcopy(value)
    return out


def value_text(raw: dict[str, Any], field: FormField) -> str | bool:
    """What the form shows for `field` in the raw spec (a bool for switches)."""
    holder = raw.get(field.table, {}) if field.table else raw
    value = holder.get(field.key) if isinstance(holder, dict) else None
    if field.kind == "bool":
        return bool(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def convert(field: FormField, text: str | bool) -> Any:
    """Form text to the spec's value; text that is not a number stays text, so the spec names the problem."""
    if field.kind == "bool":
        return bool(text)
    text = str(text).strip()
    try:
        if field.kind == "int":
            return int(text)
        if field.kind == "float":
            return float(text)
    except ValueError:
        return text
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if field.kind == "modules":
        return parts[0] if len(parts) == 1 and parts[0] == "all-linear" else parts
    if field.kind == "list":
        return parts
    return text


def apply_form(base: dict[str, Any], values: dict[str, str | bool]) -> dict[str, Any]:
    """The raw spec `base` with each form value (keyed by field path) converted and set."""
    raw = deepcopy(base)
    for path, text in values.items():
        field = FIELDS_BY_PATH[path]
        holder = raw.setdefault(field.table, {}) if field.table else raw
        holder[field.key] = convert(field, text)
    return raw


def validate(raw: dict[str, Any], check_files: bool = True) -> tuple[RunSpec | None, list[SpecProblem]]:
    """(the spec, []) when valid, else (None, each problem with the key it is about)."""
    try:
        return parse_spec(raw, check_files=check_files), []
    except SpecError as exc:
        return None, list(exc.problems)


def estimable(raw: dict[str, Any]) -> RunSpec | None:
    """A spec good enough to estimate memory from (model, method, batch, length, precision, GPUs), even while
    other fields still have problems; None when those fields themselves are wrong."""
    spec, _ = validate(raw, check_files=False)
    if spec is not None:
        return spec
    keep = {"model": ("name",), "method": ("kind", "rank", "dropout", "target_modules"),
            "train": ("micro_batch", "precision", "gradient_checkpointing", "loss", "master_weights", "packing",
                      "micro_batch_tokens", "devices", "nodes", "strategy"), "data": ("max_length",)}
    reduced: dict[str, Any] = {"name": "estimate", "data": {"path": "estimate"}}
    for table, keys in keep.items():
        source = raw.get(table) if isinstance(raw.get(table), dict) else {}
        assert isinstance(source, dict)
        reduced.setdefault(table, {}).update({k: source[k] for k in keys if k in source})
    spec, _ = validate(reduced, check_files=False)
    return spec


def run_spec_raw(run_dir: Path, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's frozen spec as a raw dict with `changes` laid over it (an OOM post-mortem's suggested fix, say:
    `{"train": {"micro_batch": 4, "grad_accum": 2}}`); what `NewRunScreen(spec)` takes. Raises SpecError."""
    path = run_dir / SPEC_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError.whole(f"The spec of run {run_dir.name} cannot be read ({exc}).") from None
    return merge(raw, changes or {})


def last_run_raw(runs_dir: Path) -> tuple[str, dict[str, Any]]:
    """(run id, raw spec) of the newest run; raises RunNotFound or SpecError (one sentence)."""
    run_dir = resolve_run("last", runs_dir)
    return run_dir.name, run_spec_raw(run_dir)


def default_spec_path(home: Path, spec: RunSpec) -> Path:
    """Where the editor offers to save a spec: HOME/specs/<name>.toml."""
    return home / "specs" / f"{slug(spec.name) or 'run'}.toml"


def save_spec(spec: RunSpec, path: Path) -> Path:
    """Write the spec as TOML (through a temporary file, so a reader never sees half of it)."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dump_spec(spec), encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["FIELDS", "PILOT_FRACTION", "SECTIONS", "FormField", "RunNotFound", "apply_form", "default_raw",
           "estimable", "validate"]
