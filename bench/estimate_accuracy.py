"""The memory estimate against the engine's measured peaks: Qwen2.5-0.5B and 1.5B shapes × lora, qlora, dora,
full, 8 × 1024 = 8192 tokens a step, bf16, the engine's defaults on a GPU (fused loss).

Measurements come from `bench/train_throughput.py`'s engine runner (peak reserved memory of a process that only
trained); `bench/gpu_suite.py` runs these cases together with the throughput bench (whose 0.5B engine cases are
the same runs) in one device call. Goal: the estimate within ±10% of the measured peak.

    python bench/estimate_accuracy.py --report results.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.train_throughput import METHODS, SMOKE

MODELS = ("qwen2.5-0.5b", "qwen2.5-1.5b")


def estimate_cases(smoke: bool, models: tuple[str, ...] = MODELS) -> list[dict[str, Any]]:
    """Engine runs per model and method (8192 tokens a step)."""
    if smoke:
        return [{"bench": "estimate", "runner": "engine", "method": m, **SMOKE} for m in METHODS]
    return [{"bench": "estimate", "runner": "engine", "method": m, "model": model, "batch": 8, "seq": 1024}
            for model in models for m in METHODS]


def estimate_for(row: dict[str, Any]) -> float | None:
    """engine.estimate's total for the setup a result row ran."""
    from engine.catalog import load_catalog
    from engine.estimate import TrainSetup, estimate_peak_memory

    entry = load_catalog().model(row["model"])
    if entry is None:
        return None
    setup = TrainSetup(method=row["method"], batch=row["batch"], seq=row["seq"], precision=row["precision"],
                       rank=row["rank"], dropout=row["dropout"],
                       loss="fused" if row["loss_kind"] == "fused" else "standard")
    return estimate_peak_memory(entry.shape, setup).total_gib


def report(rows: list[dict[str, Any]]) -> str:
    """Markdown: measured peak reserved vs the estimate for every engine run at 8192 tokens a step."""
    lines = ["| model | method | loss | measured peak reserved GiB | estimate GiB | error (goal ±10%) |",
             "| --- | --- | --- | --- | --- | --- |"]
    seen = set()
    for row in rows:
        key = (row.get("model"), row.get("method"))
        if row.get("runner") != "engine" or key in seen:
            continue
        seen.add(key)
        if "error" in row:
            lines.append(f"| {row.get('model')} | {row['method']} | | failed: {row['error']} | | |")
            continue
        measured, est = row.get("peak_reserved_gib"), estimate_for(row)
        error = f"{est / measured - 1:+.1%}" if measured and est else "n/a"
        lines.append(f"| {row['model']} | {row['method']} | {row['loss_kind']} | {measured} | {est} | {error} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, required=True, help="a results JSONL file of bench/gpu_suite.py")
    args = parser.parse_args()
    print(report([json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
