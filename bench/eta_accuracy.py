"""How well a pilot run predicts the full run's wall time, and how well the live ETA tracks it.

On the demo (its 3000 support tickets and its tiny model, built under a temporary HOME): a `--pilot` fraction run
(`python -m engine run RUN --pilot F`, as `slmtui train SPEC --pilot F` starts it), then the full run of the same
spec, each a fresh engine process. Predicted: the pilot's `eta` event (training from the first step, evaluations,
checkpoints, final save; model loading and data preparation excluded). Actual: the full run's `finished` time
minus its `started` time (the same span). Also the live ETA of the full run's `metrics` events at 10%, 25%, 50%
and 75% of its steps against the time that actually remained. Goal: within ±10%.

    python bench/eta_accuracy.py --pilot 0.05 --threads 1 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def demo_spec(home: Path, args: argparse.Namespace) -> Any:
    from engine.demo import demo_paths, ensure_demo
    from engine.spec import RunSpec

    ensure_demo(home)
    data, model = demo_paths(home)
    spec = RunSpec(name="eta-bench")
    spec.model.name, spec.data.path = str(model), str(data)
    spec.train.device, spec.train.micro_batch, spec.train.epochs = args.device, args.micro_batch, args.epochs
    spec.train.eval_every, spec.train.save_every, spec.train.eval_samples = args.eval_every, args.save_every, 2
    spec.train.lr, spec.train.seed = 1e-3, 0
    return spec


def run_engine(run_dir: Path, home: Path, threads: int, *extra: str) -> float:
    env = dict(os.environ, SLMTUI_HOME=str(home), OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    with open(run_dir / "engine.log", "ab") as log:
        code = subprocess.call([sys.executable, "-m", "engine", "run", str(run_dir), *extra], env=env,
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if code != 0:
        raise SystemExit(f"engine run failed ({code}); see {run_dir / 'engine.log'}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilot", type=float, default=0.05)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per engine process")
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--keep", type=Path, help="keep the runs (their events) in this folder")
    parser.add_argument("--repeat", type=int, default=1, help="pilot + full run pairs, one after the other")
    args = parser.parse_args()

    rows = [measure_pair(args, i) for i in range(args.repeat)]
    actuals = [r["actual_s"] for r in rows]
    result = {
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
                   f"{os.cpu_count()} cores, OMP threads {args.threads}, load average {os.getloadavg()[0]:.1f}",
        "date": time.strftime("%Y-%m-%d"),
        "pairs": rows,
        "mean_abs_error": round(sum(abs(r["error"]) for r in rows) / len(rows), 4),
        "actual_spread": round(max(actuals) / min(actuals) - 1, 4),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(result["machine"])
    for r in rows:
        print(f"pilot {args.pilot:.0%} = {r['pilot_steps']} steps in {r['pilot_wall_s']:.1f} s; full run "
              f"{r['full_steps']} steps: predicted {r['predicted_s']:.1f} s ({r['predicted_low_s']:.1f} to "
              f"{r['predicted_high_s']:.1f}), actual {r['actual_s']:.1f} s, error {r['error']:+.1%}, "
              f"{'inside' if r['inside_range'] else 'outside'} the range")
        print("  live ETA: " + ", ".join(
            f"step {x['at_step']} {x['error']:+.1%}" if x["error"] is not None else f"step {x['at_step']} n/a"
            for x in r["live"]))
    print(f"mean |error| {result['mean_abs_error']:.1%}; the same full run's actual times differ by "
          f"{result['actual_spread']:.1%} (slowest over fastest)")
    return 0


def measure_pair(args: argparse.Namespace, index: int) -> dict[str, Any]:
    """One pilot and one full run in a fresh HOME; their figures."""
    from engine.protocol import read_events
    from slmtui.runs import create_run

    with tempfile.TemporaryDirectory(prefix="eta-bench-") as tmp:
        home = args.keep.resolve() / str(index) if args.keep else Path(tmp)
        os.environ["SLMTUI_HOME"] = str(home)
        spec = demo_spec(home, args)
        pilot_dir = create_run(spec, home / "runs")
        pilot_wall = run_engine(pilot_dir, home, args.threads, "--pilot", str(args.pilot))
        pilot_events = read_events(pilot_dir / "events.jsonl")
        eta = next(e for e in pilot_events if e["type"] == "eta")
        pilot_started = next(e for e in pilot_events if e["type"] == "started")

        time.sleep(1.1)  # run ids are per second
        full_dir = create_run(spec, home / "runs")
        full_wall = run_engine(full_dir, home, args.threads)
        events = read_events(full_dir / "events.jsonl")
    started = next(e for e in events if e["type"] == "started")
    finished = events[-1]
    actual = finished["t"] - started["t"]
    metrics = [e for e in events if e["type"] == "metrics"]
    live = []
    for share in (0.1, 0.25, 0.5, 0.75):
        m = metrics[int(len(metrics) * share) - 1]
        remaining = finished["t"] - m["t"]
        live.append({"at_step": m["step"], "eta_s": m["eta_s"], "actual_s": round(remaining, 2),
                     "error": round(m["eta_s"] / remaining - 1, 4) if m["eta_s"] else None})
    return {
        "pilot": args.pilot, "pilot_steps": pilot_started["total_steps"], "pilot_wall_s": round(pilot_wall, 2),
        "full_steps": started["total_steps"], "full_wall_s": round(full_wall, 2),
        "predicted_s": eta["eta_s"], "predicted_low_s": eta["eta_low_s"], "predicted_high_s": eta["eta_high_s"],
        "predicted_detail": eta["detail"], "actual_s": round(actual, 2),
        "error": round(eta["eta_s"] / actual - 1, 4),
        "inside_range": eta["eta_low_s"] <= actual <= eta["eta_high_s"],
        "live": live,
    }


if __name__ == "__main__":
    raise SystemExit(main())
