"""Every GPU case of the training benches in one go: throughput (engine vs HF Trainer, 0.5B shape) then the
estimate's accuracy (engine peaks of the 1.5B shape; the 0.5B engine runs of the throughput bench serve both),
and real example lengths (bench/real_lengths.py: 0.5B and 1.5B shapes × lora, qlora, full × engine padded,
engine packed, HF Trainer default, HF Trainer at its best). `--only real` runs the last alone (24 cases, about
7 minutes on an H200 by the per-case times of 2026-11-26; `--budget-s 330` ends the call by about 6, see
docs/benchmarks.md), `--only fixed` the first two (12 cases, 217 s measured).

Each case runs in its own subprocess (a clean allocator) under a time cap; results are appended to
OUT/results.jsonl as they come, so a cut-short run still returns what it measured; OUT/report.md holds both
tables at the end. `--smoke` runs the same cases on a tiny shape (a CPU is enough) to test the driver.

    python bench/gpu_suite.py --out DIR [--only all|fixed|real] [--models a,b] [--budget-s 330] [--case-cap-s 75]
                              [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import estimate_accuracy, real_lengths, train_throughput

HERE = Path(__file__).resolve().parent


def run_one(case: dict[str, Any], cap_s: float, log: Any) -> dict[str, Any]:
    """One case in a fresh process; its figures, or an `error` (with the tail of its stderr in the log)."""
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(HERE / "train_throughput.py"), "--case", json.dumps(case)],
                              capture_output=True, text=True, timeout=cap_s, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired as exc:
        log.write(f"== {case} timed out after {cap_s}s\n{(exc.stderr or b'')[-3000:]!r}\n")
        return {**case, "error": f"over the {cap_s:.0f} s cap"}
    log.write(f"== {case} rc={proc.returncode} {time.perf_counter() - started:.1f}s\n{proc.stderr[-3000:]}\n")
    log.flush()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return {**case, "error": last}
    return {**json.loads(lines[-1]), "bench": case["bench"], "wall_s": round(time.perf_counter() - started, 1)}


def run_cases(cases: list[dict[str, Any]], out: Path, budget_s: float, cap_s: float) -> list[dict[str, Any]]:
    """Each case in its own process, in order, until `budget_s` is spent; rows appended to OUT/results.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.perf_counter() + budget_s
    rows = []
    with (out / "cases.log").open("a") as log:
        for case in cases:
            left = deadline - time.perf_counter()
            if left < 20:
                rows.append({**case, "error": "skipped: out of time"})
                continue
            row = run_one(case, min(cap_s, left), log)
            rows.append(row)
            with (out / "results.jsonl").open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps({k: row.get(k) for k in ("runner", "model", "method", "tokens_per_s",
                                                      "peak_reserved_gib", "wall_s", "error")}), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench-out")))
    parser.add_argument("--only", choices=("all", "fixed", "real"), default="all")
    parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b", help="model shapes of the real-length cases")
    parser.add_argument("--budget-s", type=float, default=330.0, help="start no case after this many seconds")
    parser.add_argument("--case-cap-s", type=float, default=75.0)
    parser.add_argument("--smoke", action="store_true", help="tiny shape, for testing the driver on a CPU")
    args = parser.parse_args()
    cases: list[dict[str, Any]] = []
    if args.only != "real":
        cases += train_throughput.throughput_cases(args.smoke)
        cases += [c for c in estimate_accuracy.estimate_cases(args.smoke, models=("qwen2.5-1.5b",))]
        if args.smoke:
            cases = [*cases[:8], cases[8]]
    if args.only != "fixed":
        cases += real_lengths.real_cases(args.smoke, models=args.models.split(","))
    if args.smoke:
        cases = [{**c, "device": "cpu"} for c in cases]
    rows = run_cases(cases, args.out, args.budget_s, args.case_cap_s)
    text = ("## Throughput\n\n" + train_throughput.report(rows) + "\n\n## Estimate accuracy\n\n"
            + estimate_accuracy.report(rows) + "\n\n## Real lengths\n\n" + real_lengths.report(rows) + "\n")
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
