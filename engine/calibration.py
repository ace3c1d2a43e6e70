"""Measured-over-estimated memory ratios from fit rehearsals, kept per (model, method, GPU) in HOME.

Light (stdlib only): the console may read it to calibrate its estimates. The engine writes it after a
rehearsal on a GPU; it is a plain JSON file, not the store.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from engine.paths import slmtui_home
from engine.protocol import write_json_atomic

CALIBRATION_FILE = "calibration.json"


def calibration_path(home: Path | None = None) -> Path:
    """HOME/calibration.json."""
    return (home or slmtui_home()) / CALIBRATION_FILE


def calibration_key(model: str, method: str, gpu: str) -> str:
    """One entry per model (name or folder), method and GPU name."""
    return f"{model}|{method}|{gpu}"


def load_calibration(home: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every entry: key -> {ratio, samples, updated, model, method, gpu}; empty when the file is missing or bad."""
    try:
        data = json.loads(calibration_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("ratio"), int | float)} \
        if isinstance(data, dict) else {}


def ratio_for(model: str, method: str, gpu: str, home: Path | None = None) -> float | None:
    """The kept measured/estimate ratio for this model, method and GPU, if a rehearsal measured one."""
    entry = load_calibration(home).get(calibration_key(model, method, gpu))
    return float(entry["ratio"]) if entry else None


def record_ratio(model: str, method: str, gpu: str, ratio: float, home: Path | None = None) -> dict[str, Any]:
    """Keep a new measurement; the kept ratio is the mean of the last few (newer runs weigh the same)."""
    entries = load_calibration(home)
    key = calibration_key(model, method, gpu)
    recent = [*entries.get(key, {}).get("recent", []), round(ratio, 4)][-5:]
    entries[key] = {"ratio": round(sum(recent) / len(recent), 4), "recent": recent, "samples": len(recent),
                    "updated": time.time(), "model": model, "method": method, "gpu": gpu}
    write_json_atomic(calibration_path(home), entries)
    return entries[key]
