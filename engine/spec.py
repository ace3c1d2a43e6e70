"""The run spec: what to train, on what, and how. TOML on disk, frozen into `RUN_DIR/spec.toml`.

Light on purpose (stdlib, `tomllib`, `tomli_w`): the console imports it to validate a spec before launch.
`parse_spec` checks everything it can without the ML stack and raises one `SpecError` listing each problem as the
key it is about and one sentence (an unknown key comes with the nearest known name).
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple, get_origin, get_type_hints

import tomli_w

from engine.paths import special_file


class SpecProblem(NamedTuple):
    """One thing a user must fix: the key it is about (`train.micro_batch`, `name`; "" for the whole spec or
    file) and one sentence."""

    field: str
    message: str


class SpecError(ValueError):
    """A spec a user must fix; `problems` holds each problem with the key it is about."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = list(problems) or [SpecProblem("", "the spec is invalid")]
        super().__init__(" ".join(self.messages))

    @classmethod
    def whole(cls, message: str) -> SpecError:
        """An error about the spec as a whole (its file, its syntax), not one key."""
        return cls([SpecProblem("", message)])

    @property
    def messages(self) -> list[str]:
        """One sentence per problem."""
        return [p.message for p in self.problems]


@dataclass
class ModelSpec:
    """The base model: a hub id or a local folder."""

    name: str = ""
    init: str = "pretrained"
    revision: str = ""
    trust_remote_code: bool = False
    allow_pickle: bool = False
    attn_implementation: str = ""


@dataclass
class DataSpec:
    """The dataset and how to prepare it (semantics owned by `engine.data`)."""

    path: str = ""
    format: str = "auto"
    split_name: str = "train"
    shape: str = "auto"
    map: dict[str, str] = field(default_factory=dict)
    template: str = "auto"
    system_prompt: str = ""
    train_on_prompt: bool = False
    max_length: int = 1024
    overlength: str = "truncate"
    scrub: str = "auto"
    scrub_types: list[str] = field(default_factory=list)
    phone_regions: list[str] = field(default_factory=list)
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    split_seed: int = 0
    label_column: str = ""
    invalid: str = "skip"


#: The methods FSDP shards (`train.strategy = "fsdp"`): the 16-bit ones. QLoRA's 4-bit base model is not sharded.
SHARDABLE_METHODS = ("full", "lora", "dora")


@dataclass
class MethodSpec:
    """How the weights are trained: LoRA (and its quantised/decomposed kin) or all of them."""

    kind: str = "lora"
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    quant_type: str = "nf4"
    double_quant: bool = True
    compute_dtype: str = "auto"


@dataclass
class TrainSpec:
    """The optimisation loop's settings."""

    precision: str = "auto"
    micro_batch: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    schedule: str = "cosine"
    warmup_steps: int = 0
    epochs: float = 1.0
    max_steps: int = 0
    eval_every: int = 50
    save_every: int = 100
    seed: int = 0
    gradient_checkpointing: bool = False
    report_to: list[str] = field(default_factory=list)
    log_every: int = 1
    eval_samples: int = 3
    on_oom: str = "shrink"
    keep_checkpoints: int = 2
    keep_best: bool = True
    early_stopping_patience: int = 0
    devices: int = 1
    device: str = "auto"
    loss: str = "auto"
    rehearse: str = "auto"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    packing: str = "auto"
    micro_batch_tokens: int = 0
    master_weights: str = "fp32"
    kernels: str = "auto"
    compile: bool = False
    strategy: str = "auto"
    nodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = ""


@dataclass
class RunSpec:
    """A whole run spec."""

    name: str = "run"
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    method: MethodSpec = field(default_factory=MethodSpec)
    train: TrainSpec = field(default_factory=TrainSpec)


#: Allowed values of the keys that take one of a few words.
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("model", "init"): ("pretrained", "random"),
    ("model", "attn_implementation"): ("", "eager", "sdpa", "flash_attention_2", "flash_attention_3"),
    ("data", "format"): ("auto", "jsonl", "json", "csv", "parquet", "disk", "hub"),
    ("data", "shape"): ("auto", "instruction", "chat", "prompt_completion", "text"),
    ("data", "template"): ("auto", "default"),
    ("data", "overlength"): ("truncate", "drop", "error"),
    ("data", "scrub"): ("auto", "on", "off"),
    ("data", "invalid"): ("skip", "error"),
    ("method", "kind"): ("lora", "full", "qlora", "dora", "qdora"),
    ("method", "quant_type"): ("nf4", "fp4"),
    ("method", "compute_dtype"): ("auto", "bf16", "fp16", "fp32"),
    ("train", "precision"): ("auto", "bf16", "fp16", "fp32"),
    ("train", "schedule"): ("cosine", "linear", "constant"),
    ("train", "on_oom"): ("shrink", "stop"),
    ("train", "loss"): ("auto", "standard", "fused"),
    ("train", "rehearse"): ("auto", "on", "off"),
    ("train", "packing"): ("auto", "off"),
    ("train", "master_weights"): ("fp32", "bf16"),
    ("train", "kernels"): ("auto", "off"),
    ("train", "strategy"): ("auto", "ddp", "fsdp"),
}
REPORT_TO = ("tensorboard", "wandb", "mlflow")
DATA_MAP_FIELDS = ("instruction", "input", "output", "messages", "prompt", "completion", "response", "text")

#: (table, key) -> (lowest, highest, lowest allowed inclusive); sanity bounds, generous on purpose.
BOUNDS: dict[tuple[str, str], tuple[float, float, bool]] = {
    ("data", "max_length"): (1, 1 << 20, True),
    ("data", "val_fraction"): (0, 0.5, True),
    ("data", "test_fraction"): (0, 0.5, True),
    ("data", "split_seed"): (0, 2**32 - 1, True),
    ("method", "rank"): (1, 4096, True),
    ("method", "alpha"): (0, 1e5, False),
    ("method", "dropout"): (0, 0.99, True),
    ("train", "micro_batch"): (1, 65536, True),
    ("train", "grad_accum"): (1, 65536, True),
    ("train", "lr"): (0, 1.0, False),
    ("train", "warmup_steps"): (0, 10**9, True),
    ("train", "epochs"): (0, 10000, False),
    ("train", "max_steps"): (0, 10**9, True),
    ("train", "eval_every"): (0, 10**9, True),
    ("train", "save_every"): (0, 10**9, True),
    ("train", "seed"): (0, 2**32 - 1, True),
    ("train", "log_every"): (1, 10**6, True),
    ("train", "eval_samples"): (0, 100, True),
    ("train", "keep_checkpoints"): (0, 10000, True),
    ("train", "early_stopping_patience"): (0, 10**6, True),
    ("train", "devices"): (1, 1024, True),
    ("train", "nodes"): (1, 1024, True),
    ("train", "node_rank"): (0, 1023, True),
    ("train", "weight_decay"): (0, 10, True),
    ("train", "max_grad_norm"): (0, 1e6, True),
    ("train", "micro_batch_tokens"): (0, 1 << 26, True),
}

_TABLES: dict[str, type] = {"model": ModelSpec, "data": DataSpec, "method": MethodSpec, "train": TrainSpec}
_FILE_FORMATS = ("jsonl", "json", "csv", "parquet")
_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".gz")


def _nearest(name: str, known: list[str]) -> str:
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else f" (known keys: {', '.join(known)})"


def _type_name(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    return "a list of strings" if get_origin(tp) is list else "a table"


def _coerce(where: str, value: Any, tp: Any, problems: list[SpecProblem]) -> Any:
    """Check one value against its annotated type; return it (ints widened to floats) or MISSING."""
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            problems.append(SpecProblem(where, f"{where} must be a finite number, not {value}."))
            return MISSING
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif get_origin(tp) is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif get_origin(tp) is dict:
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    else:  # str | list[str]
        ok = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        if not ok:
            problems.append(SpecProblem(where, f"{where} must be a string or a list of strings, not "
                                                   f"{type(value).__name__}."))
            return MISSING
    if not ok:
        problems.append(SpecProblem(where, f"{where} must be {_type_name(tp)}, not {type(value).__name__} {value!r:.40}."))
        return MISSING
    return value


def _build(table: str, cls: type, raw: Any, problems: list[SpecProblem]) -> Any:
    if not isinstance(raw, dict):
        problems.append(SpecProblem(table, f"[{table}] must be a table, not {type(raw).__name__}."))
        return cls()
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints:
            problems.append(SpecProblem(f"{table}.{key}", f"Unknown key {key!r} in [{table}]{_nearest(str(key), known)}."))
            continue
        checked = _coerce(f"{table}.{key}", value, hints[key], problems)
        if checked is not MISSING:
            kwargs[key] = checked
    return cls(**kwargs)


def looks_local(name: str) -> bool:
    """Whether a model or data name means a local path rather than a hub id."""
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def _check_values(spec: RunSpec, problems: list[SpecProblem]) -> None:
    for (table, key), allowed in CHOICES.items():
        value = getattr(getattr(spec, table), key)
        if value not in allowed:
            shown = [a for a in allowed if a]
            hint = difflib.get_close_matches(str(value), shown, n=1, cutoff=0.5)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(SpecProblem(f"{table}.{key}", f"{table}.{key} must be one of {', '.join(shown)}, "
                                                          f"not {value!r}{suggestion}."))
    for (table, key), (low, high, inclusive) in BOUNDS.items():
        value = getattr(getattr(spec, table), key)
        if value < low or (value == low and not inclusive):
            relation = "at least" if inclusive else "more than"
            problems.append(SpecProblem(f"{table}.{key}", f"{table}.{key} must be {relation} {low:g}, not {value:g}."))
        elif value > high:
            problems.append(SpecProblem(f"{table}.{key}",
                                        f"{table}.{key} = {value:g} is absurdly large; use at most {high:g}."))
    for name in spec.train.report_to:
        if name not in REPORT_TO:
            problems.append(SpecProblem("train.report_to", f"train.report_to entry {name!r} is not one of "
                                                           f"{', '.join(REPORT_TO)}."))
    problems += scrub_setting_problems(spec.data)
    for canonical in spec.data.map:
        if canonical not in DATA_MAP_FIELDS:
            problems.append(SpecProblem("data.map", f"data.map key {canonical!r} is not a field"
                                                    f"{_nearest(canonical, list(DATA_MAP_FIELDS))}."))
    if spec.data.val_fraction + spec.data.test_fraction >= 0.9:
        problems.append(SpecProblem("data.val_fraction", "data.val_fraction + data.test_fraction leave under 10% to "
                                                         "train on; lower them."))
    if not spec.model.name:
        problems.append(SpecProblem("model.name", "model.name is missing; give a hub id such as 'Qwen/Qwen2.5-0.5B' "
                                                  "or a local folder."))
    if not spec.data.path:
        problems.append(SpecProblem("data.path", "data.path is missing; give a JSONL/CSV/Parquet file, a saved "
                                                 "dataset folder or a hub id."))
    budget = spec.train.micro_batch_tokens
    if 0 < budget < spec.data.max_length:
        problems.append(SpecProblem("train.micro_batch_tokens", f"train.micro_batch_tokens = {budget} cannot hold one "
                                    f"example of data.max_length = {spec.data.max_length}; raise it or use 0 "
                                    "(micro_batch × max_length)."))
    if spec.train.master_weights == "bf16" and spec.method.kind != "full":
        problems.append(SpecProblem("train.master_weights", "train.master_weights applies to full fine-tuning only "
                                    "(adapters always train in fp32); remove it or use method.kind = \"full\"."))
    elif spec.train.master_weights == "bf16" and spec.train.precision in ("fp16", "fp32"):
        problems.append(SpecProblem("train.master_weights", f"train.master_weights = \"bf16\" needs bf16 compute, "
                                    f"not train.precision = \"{spec.train.precision}\"; use precision bf16 or "
                                    "auto, or master_weights fp32."))
    if spec.train.strategy == "fsdp" and spec.method.kind not in SHARDABLE_METHODS:
        problems.append(SpecProblem("train.strategy", f"train.strategy = \"fsdp\" does not shard {spec.method.kind}'s "
                                    "4-bit base model; use ddp or auto (each GPU holds the 4-bit model), or "
                                    "method.kind = \"lora\" to shard a 16-bit one."))
    problems += node_problems(spec.train)
    device = spec.train.device
    if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        problems.append(SpecProblem("train.device", f"train.device must be auto, cpu, cuda or cuda:N, not {device!r}."))
    if not spec.name.strip() or not slug(spec.name):
        problems.append(SpecProblem("name", "name must contain at least one letter or digit (it names the run "
                                            "folder)."))


def node_problems(train: TrainSpec) -> list[SpecProblem]:
    """What is wrong with a run's machines: the node rank beyond the nodes, or several nodes and no meeting point."""
    if train.node_rank >= train.nodes:
        return [SpecProblem("train.node_rank", f"train.node_rank {train.node_rank} is not below train.nodes "
                                               f"({train.nodes}); number the machines from 0.")]
    host, _, port = train.rdzv_endpoint.rpartition(":")
    if train.nodes > 1 and not (host and port.isdigit()):
        return [SpecProblem("train.rdzv_endpoint", f"train.nodes = {train.nodes} needs train.rdzv_endpoint = "
                                                   "\"HOST:PORT\" of node 0, which every node can reach (e.g. "
                                                   "\"gpu-box-0:29500\").")]
    return []


def scrub_setting_problems(data: DataSpec) -> list[SpecProblem]:
    """One problem per unknown entry of `data.scrub_types` or `data.phone_regions`."""
    from engine.pii.detect import PII_TYPES

    problems: list[SpecProblem] = []
    for name in data.scrub_types:
        if name.upper() not in PII_TYPES:
            problems.append(SpecProblem("data.scrub_types", f"data.scrub_types entry {name!r} is not a type"
                                                            f"{_nearest(name.upper(), list(PII_TYPES))}."))
    if data.phone_regions:
        import phonenumbers

        for region in data.phone_regions:
            if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
                problems.append(SpecProblem("data.phone_regions", f"data.phone_regions entry {region!r} is not a "
                                            "region code; use two-letter codes such as US, GB, DE, IN."))
    return problems


def _check_files(spec: RunSpec, problems: list[SpecProblem]) -> None:
    model = spec.model.name
    if model and looks_local(model) and not Path(model).expanduser().is_dir():
        problems.append(SpecProblem("model.name", f"model.name {model!r} is not a folder; give an existing model "
                                                  "folder or a hub id."))
    data = spec.data.path
    if not data:
        return
    must_be_local = spec.data.format in (*_FILE_FORMATS, "disk") or (
        spec.data.format == "auto" and (looks_local(data) or data.lower().endswith(_FILE_SUFFIXES))
    )
    what = special_file(data) if must_be_local else None
    if what:
        problems.append(SpecProblem("data.path", f"data.path {data!r} is {what}, not a dataset; give a JSONL, JSON, "
                                                 "CSV or Parquet file or a saved dataset folder."))
    elif must_be_local and not Path(data).expanduser().exists():
        problems.append(SpecProblem("data.path", f"data.path {data!r} does not exist; fix the path (relative paths "
                                                 "are from the spec file)."))


def slug(name: str) -> str:
    """A file-name-safe slug of a run name (lowercase letters, digits and dashes, at most 40 characters)."""
    out = "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower())
    return "-".join(part for part in out.split("-") if part)[:40].strip("-")


#: The table that marks the spec of an imported run (engine/external/run_folder.py): not a spec to train.
IMPORTED_TABLE = "imported"


def parse_spec(raw: Any, base_dir: Path | None = None, check_files: bool = True) -> RunSpec:
    """Build and validate a `RunSpec` from a parsed TOML dict; raise `SpecError` listing every problem.

    Relative local paths are resolved against `base_dir` (the spec file's folder) when given.
    """
    problems: list[SpecProblem] = []
    if not isinstance(raw, dict):
        raise SpecError.whole(f"The spec must be a table of settings, not {type(raw).__name__}.")
    if isinstance(raw.get(IMPORTED_TABLE), dict):
        raise SpecError.whole("This run was trained elsewhere and imported (slmtui runs import): it has only its "
                              "curves, no model or data to train, evaluate or export.")
    spec = RunSpec()
    known = ["name", *_TABLES]
    for key, value in raw.items():
        if key == "name":
            checked = _coerce("name", value, str, problems)
            if checked is not MISSING:
                spec.name = checked
        elif key in _TABLES:
            setattr(spec, key, _build(key, _TABLES[key], value, problems))
        else:
            problems.append(SpecProblem(str(key), f"Unknown top-level key {key!r}{_nearest(str(key), known)}."))
    if base_dir is not None:
        _resolve_paths(spec, base_dir)
    _check_values(spec, problems)
    if check_files:
        _check_files(spec, problems)
    if problems:
        raise SpecError(problems)
    return spec


def _resolve_paths(spec: RunSpec, base_dir: Path) -> None:
    for holder, attr in ((spec.model, "name"), (spec.data, "path")):
        value = getattr(holder, attr)
        if value.startswith(("./", "../")) or (value and not value.startswith(("/", "~")) and (base_dir / value).exists()):
            try:
                setattr(holder, attr, str((base_dir / value).resolve()))
            except (OSError, RuntimeError):  # a symbolic link loop: `_check_files` says so
                setattr(holder, attr, os.path.normpath(base_dir / value))


def load_spec(path: Path, check_files: bool = True) -> RunSpec:
    """Read and validate a spec file; raise `SpecError` for anything a user must fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError.whole(f"The spec file {str(path)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError.whole(f"The spec file {str(path)!r} cannot be read ({exc}).") from None
    try:
        raw = tomllib.loads(text.removeprefix("\ufeff"))  # a BOM some editors write (TOML allows none)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError.whole(f"The spec file {str(path)!r} is not valid TOML ({exc}); fix its syntax.") from None
    return parse_spec(raw, base_dir=path.resolve().parent, check_files=check_files)


def spec_to_dict(spec: RunSpec) -> dict[str, Any]:
    """The spec as plain data (what `started` events carry)."""
    return asdict(spec)


def dump_spec(spec: RunSpec) -> str:
    """The spec as TOML text; `parse_spec(tomllib.loads(dump_spec(s)))` gives `s` back."""
    return tomli_w.dumps(spec_to_dict(spec))


def micro_batch_tokens(spec: RunSpec) -> int:
    """The token budget of a packed micro-batch: `train.micro_batch_tokens`, or 0 for micro_batch × max_length."""
    return spec.train.micro_batch_tokens or spec.train.micro_batch * spec.data.max_length


def total_steps(spec: TrainSpec, train_examples: int) -> int:
    """Optimizer steps the run will take: `max_steps`, else epochs over the training split."""
    if spec.max_steps > 0:
        return spec.max_steps
    per_step = spec.micro_batch * spec.grad_accum
    return max(1, math.ceil(spec.epochs * train_examples / per_step))
