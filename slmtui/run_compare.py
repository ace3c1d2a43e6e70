"""Runs side by side, headless: the run table's rows, environment comparability, spec diffs, loss curves and
system series (tokens/s, memory), and tagging, archiving and deleting runs. Used by the journal's Runs view and
by the Markdown export.

The store's run index (kept current by `slmtui.reconcile`) gives the status, metrics and fingerprints; the
frozen `spec.toml` of each run folder gives its settings. Light: no textual, no ML stack.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.protocol import EVENTS_FILE, SPEC_FILE, SUMMARY_FILE, EventFollower
from slmtui.series import Series
from slmtui.store import RunRecord, Store

#: The parts of a run's environment that make its numbers comparable with another's.
ENV_KEYS = ("torch", "transformers", "peft", "gpu")
#: Points per curve the console keeps and draws, at most: a million-step run downsamples to this.
CURVE_POINTS = 800


class RunActionError(Exception):
    """A run cannot be changed that way (still training, folder gone); one sentence."""


def read_spec(run_dir: Path) -> dict[str, Any]:
    """A run's frozen spec as nested plain data, with every default filled in ({} when unreadable); an
    imported run's as written (its `[imported]` table and the settings its log gave)."""
    from engine.spec import IMPORTED_TABLE, SpecError, parse_spec, spec_to_dict

    try:
        raw = tomllib.loads((run_dir / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    if IMPORTED_TABLE in raw:  # a run trained elsewhere: only what its log said, no defaults filled in
        return raw
    try:
        return spec_to_dict(parse_spec(raw, check_files=False))
    except SpecError:  # an older or hand-edited spec: show what it says
        return raw


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"train": {"lr": 1e-4}}` -> `{"train.lr": 1e-4}` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def env_key(fingerprint: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The versions and GPU a run trained with (None when the run has not reported them yet)."""
    env = fingerprint.get("env") if isinstance(fingerprint, Mapping) else None
    if not isinstance(env, Mapping) or not env:
        return None
    return tuple(env.get(key) for key in ENV_KEYS)


def env_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """What differs between two runs' environments, e.g. `["torch 2.12 ≠ 2.13"]` (fingerprint dicts)."""
    ka, kb = env_key(a), env_key(b)
    if ka is None or kb is None:
        return []
    return [f"{name} {x or 'none'} ≠ {y or 'none'}" for name, x, y in zip(ENV_KEYS, ka, kb, strict=True) if x != y]


@dataclass(frozen=True)
class RunRow:
    """One line of the run table."""

    id: str
    dir: Path
    status: str
    model: str
    method: str
    rank: int | None
    lr: float | None
    batch: str
    max_length: int | None
    final_loss: float | None
    best_val_loss: float | None
    seconds: float | None
    data_fingerprint: str
    comparable: bool
    tags: tuple[str, ...] = ()
    archived: bool = False
    spec: dict[str, Any] = field(default_factory=dict, compare=False)
    record: RunRecord | None = field(default=None, compare=False)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_rows(records: Iterable[RunRecord], specs: Mapping[str, dict[str, Any]],
               now: float | None = None) -> list[RunRow]:
    """Rows for `records` (newest first). A run is comparable when its environment matches the newest run
    that reported one (a run with no environment yet is given the benefit of the doubt)."""
    records = list(records)
    reference = next((key for r in records if (key := env_key(r.fingerprint)) is not None), None)
    now = time.time() if now is None else now
    rows = []
    for r in records:
        spec = specs.get(r.id, {})
        method, train, data = spec.get("method", {}), spec.get("train", {}), spec.get("data", {})
        micro, accum = train.get("micro_batch"), train.get("grad_accum")
        batch = f"{micro}×{accum}" if micro and accum and accum != 1 else (str(micro) if micro else "")
        end = r.ended if r.ended else (now if r.status == "running" else None)
        key = env_key(r.fingerprint)
        rows.append(RunRow(
            id=r.id, dir=Path(r.dir), status=r.status, model=r.model or str(spec.get("model", {}).get("name", "")),
            method=r.method or str(method.get("kind", "")),
            rank=None if method.get("kind") == "full" else method.get("rank"),
            lr=_number(train.get("lr")), batch=batch, max_length=data.get("max_length"),
            final_loss=_number(r.latest.get("loss")), best_val_loss=_number(r.best.get("val_loss")),
            seconds=(end - r.started) if end and r.started else None,
            data_fingerprint=str((r.fingerprint or {}).get("data") or ""),
            comparable=key is None or reference is None or key == reference,
            tags=r.tags, archived=r.archived, spec=spec, record=r,
        ))
    return rows


def load_rows(store: Store, runs_dir: Path, reconcile_first: bool = True) -> list[RunRow]:
    """Reconcile the index with the run folders, then the table's rows (newest first). Call it in a worker."""
    if reconcile_first:
        from slmtui.reconcile import reconcile

        reconcile(store, runs_dir)
    records = store.runs()
    return build_rows(records, {r.id: read_spec(Path(r.dir)) for r in records})


def runs_token(runs_dir: Path) -> tuple[Any, ...]:
    """Cheap: changes when a run folder appears or goes, or a run's summary or events are written."""
    try:
        entries = sorted(os.scandir(runs_dir), key=lambda e: e.name)
    except OSError:
        return ()
    token: list[Any] = []
    for entry in entries:
        for name in (SUMMARY_FILE, EVENTS_FILE):
            try:
                st = os.stat(os.path.join(entry.path, name))
                token.append((entry.name, name, st.st_mtime_ns, st.st_size))
            except OSError:
                token.append((entry.name, name))
    return tuple(token)


@dataclass(frozen=True)
class SpecChange:
    """One setting that differs between two runs."""

    key: str
    a: Any
    b: Any


_MISSING = "—"


def spec_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[SpecChange]:
    """Every setting whose value differs between two (nested) specs, in key order; `—` where one lacks it."""
    fa, fb = flatten(a), flatten(b)
    return [SpecChange(key, fa.get(key, _MISSING), fb.get(key, _MISSING))
            for key in sorted(set(fa) | set(fb)) if fa.get(key, _MISSING) != fb.get(key, _MISSING)]


#: The system series the overlay draws beside the losses: key -> what the chart says it is.
SYSTEM_SERIES = {"tokens_per_s": "tokens/s", "memory": "memory, GiB"}


@dataclass(frozen=True)
class Curves:
    """A run's training and validation loss, downsampled (step, loss) pairs, and its system series (`SYSTEM_SERIES`:
    tokens/s, and memory: GPU memory allocated on a GPU, the engine process's resident memory on the CPU, as
    `memory_kind` says). GPU utilisation is not among them: the engine does not record it."""

    run: str
    train: list[tuple[float, float]]
    val: list[tuple[float, float]]
    system: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    memory_kind: str = ""


def curve(series: Series) -> list[tuple[float, float]]:
    """A series as (step, mean) pairs, each bucket at the middle of the steps it covers."""
    return [((p.step + p.last_step) / 2, p.mean) for p in series.points()]


def load_curves(run_dir: Path, points: int = CURVE_POINTS) -> Curves:
    """Read a run's `metrics` and `eval` events into downsampled loss curves (skipping null losses)."""
    train, val = Series(points), Series(points)
    system = {key: Series(points) for key in SYSTEM_SERIES}
    gpu_memory = False
    for event in EventFollower(run_dir / EVENTS_FILE):
        kind = event.get("type")
        if kind == "metrics":
            step, loss = _number(event.get("step")), _number(event.get("loss"))
            if step is not None and loss is not None:
                train.add(int(step), loss)
            gpu = _number(event.get("mem_allocated_gib"))
            gpu_memory |= gpu is not None
            for key, value in (("tokens_per_s", _number(event.get("tokens_per_s"))),
                               ("memory", gpu if gpu is not None else _number(event.get("rss_gib")))):
                if step is not None and value is not None:
                    system[key].add(int(step), value)
        elif kind == "eval":
            step, loss = _number(event.get("step")), _number(event.get("val_loss"))
            if step is not None and loss is not None:
                val.add(int(step), loss)
    memory_kind = "GPU allocated" if gpu_memory else ("process RAM" if system["memory"].count else "")
    return Curves(run_dir.name, curve(train), curve(val), {k: curve(v) for k, v in system.items()}, memory_kind)


def folder_size(path: Path) -> int:
    """Bytes of every file under `path` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def human_size(size: float) -> str:
    """`1536` -> `1.5 KiB`."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def delete_run(store: Store, run_dir: Path) -> int:
    """Delete a finished run's folder and drop it from the index (its journal entries stay); returns the bytes
    freed. Refuses a run whose engine is still running."""
    from slmtui.runs import read_run

    if not run_dir.is_dir():
        store.forget_run(run_dir.name)
        return 0
    if read_run(run_dir).status == "running":
        raise RunActionError(f"The run {run_dir.name} is still training; stop it before deleting it.")
    size = folder_size(run_dir)
    shutil.rmtree(run_dir)
    store.forget_run(run_dir.name)
    return size


def parse_tags(text: str) -> list[str]:
    """Tags typed as `a, b c` -> `["a", "b", "c"]` (commas or spaces; duplicates dropped, order kept)."""
    return list(dict.fromkeys(t for t in text.replace(",", " ").split() if t))
