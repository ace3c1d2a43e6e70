"""The Data screen's headless side: the check options, running `python -m engine data-check --json`, the
recent datasets and the saved data settings (which New run reads), and the report's parts as plain rows.

Store settings written here:
- `data_settings`: `{"path", "map": {field: column}, "max_length", "overlength", "tokenizer"}`: the first four
  are `[data]` keys of a run spec (engine/spec.py DataSpec); `tokenizer` is what the lengths were counted with.
- `data_recent_paths`: the datasets checked lately, newest first.
Light: no textual, no ML stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.spec import DATA_MAP_FIELDS
from slmtui.scrub_report import change_summary
from slmtui.store import Store

SETTINGS_KEY = "data_settings"
RECENT_KEY = "data_recent_paths"
RECENT_LIMIT = 8
OVERLENGTH = ("truncate", "drop", "error")
#: How long a data check may take before the console gives up on it (a hub dataset may need a download).
CHECK_TIMEOUT_S = 600.0


class DataCheckFailed(Exception):
    """The check could not read the dataset or its settings are wrong; one sentence saying what to change."""


def parse_map_text(text: str) -> dict[str, str]:
    """`"prompt=question, response=answer"` -> `{"prompt": "question", "response": "answer"}`; raises
    `DataCheckFailed` naming the part it cannot read."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, eq, column = (s.strip() for s in part.partition("="))
        if not eq or not name or not column:
            raise DataCheckFailed(f"Write the mapping as FIELD=COLUMN pairs separated by commas, not {part!r}.")
        if name not in DATA_MAP_FIELDS:
            raise DataCheckFailed(f"{name!r} is not a field to map; use one of {', '.join(DATA_MAP_FIELDS)}.")
        mapping[name] = column
    return mapping


def map_text(mapping: dict[str, str]) -> str:
    """The inverse of `parse_map_text`."""
    return ",".join(f"{k}={v}" for k, v in mapping.items())


@dataclass(frozen=True)
class DataCheckOptions:
    """What the Data screen lets the user set, as the engine's data-check takes it."""

    path: str
    tokenizer: str = ""
    max_length: int = 1024
    overlength: str = "truncate"
    map: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_fields(cls, path: str, tokenizer: str, max_length: str, overlength: str, map_: str) -> DataCheckOptions:
        """Options from the screen's text fields; raises `DataCheckFailed` with one sentence on a bad value."""
        if not path.strip():
            raise DataCheckFailed("Type the path of a dataset file or folder, or a hub id.")
        try:
            length = int(max_length.strip())
        except ValueError:
            raise DataCheckFailed(f"The max length must be a whole number of tokens, not {max_length!r}.") from None
        if length < 1:
            raise DataCheckFailed("The max length must be at least 1 token.")
        if overlength not in OVERLENGTH:
            raise DataCheckFailed(f"The overlength policy must be one of {', '.join(OVERLENGTH)}.")
        return cls(path.strip(), tokenizer.strip(), length, overlength, parse_map_text(map_))

    def argv(self) -> list[str]:
        """Arguments of `python -m engine data-check`."""
        args = [self.path, "--max-length", str(self.max_length), "--policy", self.overlength]
        if self.tokenizer:
            args += ["--tokenizer", self.tokenizer]
        if self.map:
            args += ["--map", map_text(self.map)]
        return args

    def to_settings(self) -> dict[str, Any]:
        """The `data_settings` value (run-spec `[data]` key names, plus the tokenizer)."""
        return {"path": self.path, "map": dict(self.map), "max_length": self.max_length,
                "overlength": self.overlength, "tokenizer": self.tokenizer}

    @classmethod
    def from_settings(cls, saved: Any, default_path: str) -> DataCheckOptions:
        """Options from a saved `data_settings` value; anything missing or malformed takes its default."""
        saved = saved if isinstance(saved, dict) else {}
        length = saved.get("max_length")
        policy = saved.get("overlength")
        mapping = saved.get("map")
        return cls(
            path=str(saved.get("path") or default_path),
            tokenizer=str(saved.get("tokenizer") or ""),
            max_length=length if isinstance(length, int) and length > 0 else 1024,
            overlength=policy if policy in OVERLENGTH else "truncate",
            map={str(k): str(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {},
        )


def default_dataset(home: Path) -> str:
    """The demo dataset: HOME's copy once `slmtui demo` built it, else the one shipped with the engine."""
    import engine
    from engine.paths import demo_dir

    # engine.demo itself is off limits here (it builds models); these are the paths it uses.
    built = demo_dir(home) / "data" / "tickets.jsonl"
    shipped = Path(engine.__file__).resolve().parent / "demo_data" / "tickets.jsonl"
    return str(built if built.is_file() else shipped)


def load_options(store: Store) -> DataCheckOptions:
    """The last saved data settings, or the demo dataset with defaults."""
    return DataCheckOptions.from_settings(store.setting(SETTINGS_KEY), default_dataset(store.home))


def save_options(store: Store, options: DataCheckOptions) -> None:
    """Keep the settings for the next run (New run reads `data_settings`)."""
    store.set_setting(SETTINGS_KEY, options.to_settings())


def recent_paths(store: Store) -> list[str]:
    """Datasets checked lately, newest first."""
    saved = store.setting(RECENT_KEY, [])
    return [str(p) for p in saved if isinstance(p, str)] if isinstance(saved, list) else []


def remember_path(store: Store, path: str) -> list[str]:
    """Put `path` first among the recent datasets (at most `RECENT_LIMIT`); returns the new list."""
    paths = [path, *(p for p in recent_paths(store) if p != path)][:RECENT_LIMIT]
    store.set_setting(RECENT_KEY, paths)
    return paths


def run_data_check(options: DataCheckOptions, home: Path | None = None,
                   timeout: float = CHECK_TIMEOUT_S) -> dict[str, Any]:
    """Run the engine's data check (a subprocess: the ML stack never loads here) and return its report."""
    import subprocess

    from slmtui.engine_proc import EngineError, run_engine_json

    try:
        report = run_engine_json("data-check", *options.argv(), home=home, timeout=timeout)
    except EngineError as exc:
        raise DataCheckFailed(str(exc)) from None
    except subprocess.TimeoutExpired:
        raise DataCheckFailed(f"The data check took over {timeout:.0f} s and was stopped; try a smaller "
                              "dataset or check it with `slmtui data check`.") from None
    if not isinstance(report, dict):
        raise DataCheckFailed("The data check printed something other than a report.")
    return report


@dataclass(frozen=True)
class Bar:
    """One bar of a histogram or a count list."""

    label: str
    count: int
    over: bool = False


def length_bars(report: dict[str, Any]) -> list[Bar]:
    """The token-length histogram, from the first to the last non-empty bin; bins past max_length are `over`."""
    bins = [b for b in report.get("length_histogram") or [] if isinstance(b, dict)]
    counts = [int(b.get("count") or 0) for b in bins]
    nonzero = [i for i, c in enumerate(counts) if c]
    if not nonzero:
        return []
    limit = report.get("max_length")
    return [Bar(f"{b.get('from')}–{b.get('to')}", counts[i],
                isinstance(limit, int) and isinstance(b.get("to"), int) and b["to"] > limit)
            for i, b in enumerate(bins[nonzero[0]: nonzero[-1] + 1], start=nonzero[0])]


def count_bars(counts: Any) -> list[Bar]:
    """`{"EMAIL": 3, ...}` as bars, largest first."""
    if not isinstance(counts, dict):
        return []
    return [Bar(str(k), int(v)) for k, v in sorted(counts.items(), key=lambda kv: (-int(kv[1] or 0), kv[0])) if v]


def summary_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The report's key numbers as (name, value) pairs."""
    lengths = report.get("token_lengths") or {}
    tokenizer = report.get("tokenizer") or {}
    shape = str(report.get("shape", "?")) + (" (detected)" if report.get("shape_detected") else "")
    return [
        ("dataset", Path(str((report.get("source") or {}).get("path", ""))).name),
        ("rows", f"{report.get('rows', 0):,} ({report.get('kept_rows', 0):,} kept)"),
        ("shape", f"{shape}; columns {', '.join(report.get('columns') or [])}"),
        ("invalid rows", f"{report.get('invalid_rows_total', 0):,} ({report.get('invalid_policy', 'skip')})"),
        ("empty rows", f"{report.get('empty_rows', 0):,}"),
        ("exact duplicates", f"{report.get('duplicates', 0):,}"),
        ("token lengths", "  ".join(f"{k} {v}" for k, v in lengths.items()) or "–"),
        ("over max length", str(report.get("overlength_action") or report.get("over_max_length", 0))),
        ("personal data", f"{report.get('pii_rows', 0):,} rows; scrubbing {report.get('scrub', '?')}"),
        ("scrub changed", change_summary(report) or "–"),
        ("template", str(report.get("template", ""))),
        ("tokenizer", str(tokenizer.get("name", "")) + (" (the demo's)" if tokenizer.get("default_demo") else "")),
    ]
