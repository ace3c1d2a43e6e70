"""The Data screen's headless side: its fields as a data-check request, the recent datasets and the saved data
settings (which New run reads), and the report's parts as plain rows. The check itself is
`slmtui.data_service.run_data_check`.

Store settings written here:
- `data_settings`: `{"path", "map": {field: column}, "max_length", "overlength", "tokenizer"}`: the first four
  are `[data]` keys of a run spec (engine/spec.py DataSpec), which New run starts from; `tokenizer` is what the
  lengths were counted with.
- `data_recent_paths`: the datasets checked lately, newest first.
Light: no textual, no ML stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmtui.data_service import DataCheckFailed, DataRequest, parse_map_text
from slmtui.scrub_report import change_summary
from slmtui.store import Store

SETTINGS_KEY = "data_settings"
RECENT_KEY = "data_recent_paths"
RECENT_LIMIT = 8
OVERLENGTH = ("truncate", "drop", "error")
#: The `data_settings` keys that are `[data]` keys of a run spec.
SPEC_DATA_KEYS = ("path", "map", "max_length", "overlength")


def request_from_fields(path: str, tokenizer: str, max_length: str, overlength: str, map_: str) -> DataRequest:
    """The request the Data screen's text fields make; raises `DataCheckFailed` with one sentence on a bad value."""
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
    return DataRequest(path.strip(), tokenizer.strip(), length, overlength, parse_map_text(map_))


def settings_of(request: DataRequest) -> dict[str, Any]:
    """The `data_settings` value (run-spec `[data]` key names, plus the tokenizer)."""
    return {"path": request.path, "map": dict(request.map), "max_length": request.max_length,
            "overlength": request.overlength, "tokenizer": request.tokenizer}


def request_from_settings(saved: Any, default_path: str) -> DataRequest:
    """The request a saved `data_settings` value makes; anything missing or malformed takes its default."""
    saved = saved if isinstance(saved, dict) else {}
    length = saved.get("max_length")
    policy = saved.get("overlength")
    mapping = saved.get("map")
    return DataRequest(
        path=str(saved.get("path") or default_path),
        tokenizer=str(saved.get("tokenizer") or ""),
        max_length=length if isinstance(length, int) and not isinstance(length, bool) and length > 0 else 1024,
        overlength=policy if policy in OVERLENGTH else "truncate",
        map=tuple((str(k), str(v)) for k, v in mapping.items()) if isinstance(mapping, dict) else (),
    )


def default_dataset(home: Path) -> str:
    """The demo dataset: HOME's copy once `slmtui demo` built it, else the one shipped with the engine."""
    import engine
    from engine.paths import demo_dir

    # engine.demo itself is off limits here (it builds models); these are the paths it uses.
    built = demo_dir(home) / "data" / "tickets.jsonl"
    shipped = Path(engine.__file__).resolve().parent / "demo_data" / "tickets.jsonl"
    return str(built if built.is_file() else shipped)


def load_options(store: Store) -> DataRequest:
    """The last saved data settings, or the demo dataset with defaults."""
    return request_from_settings(store.setting(SETTINGS_KEY), default_dataset(store.home))


def save_options(store: Store, request: DataRequest) -> None:
    """Keep the settings for the next run (New run reads `data_settings`)."""
    store.set_setting(SETTINGS_KEY, settings_of(request))


def saved_spec_data(store: Store) -> dict[str, Any]:
    """The saved settings as a run spec's `[data]` keys (what New run starts from); {} when none were saved."""
    saved = store.setting(SETTINGS_KEY)
    if not isinstance(saved, dict):
        return {}
    settings = settings_of(request_from_settings(saved, ""))
    return {key: settings[key] for key in SPEC_DATA_KEYS if key in saved and settings[key] != ""}


def recent_paths(store: Store) -> list[str]:
    """Datasets checked lately, newest first."""
    saved = store.setting(RECENT_KEY, [])
    return [str(p) for p in saved if isinstance(p, str)] if isinstance(saved, list) else []


def remember_path(store: Store, path: str) -> list[str]:
    """Put `path` first among the recent datasets (at most `RECENT_LIMIT`); returns the new list."""
    paths = [path, *(p for p in recent_paths(store) if p != path)][:RECENT_LIMIT]
    store.set_setting(RECENT_KEY, paths)
    return paths


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
