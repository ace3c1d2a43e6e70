"""The checks only a GPU can make, end to end through the real CLI, in one prepared device call.

1. `slmtui gpus --json` and `slmtui doctor --json` on a real driver;
2. a real run through `slmtui train --detach`: a random 24-layer, 896-wide Llama (Qwen2.5-0.5B's depth and width,
   the demo's 2k vocabulary) on the demo dataset, with the GPU defaults (bf16, fused loss, fit rehearsal);
3. a real out-of-memory error: micro-batch 2048 of the demo rows with the rehearsal off, which the engine must
   shrink (same effective batch) and survive.

Each step's findings go to OUT/gpu_check.json as they come. `--smoke` runs the same steps on the CPU with a
small model (to test this script before spending device time).

    python bench/gpu_check.py --out DIR [--smoke]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slmtui", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def wait_finished(run_dir: Path, timeout: float) -> dict[str, Any]:
    from engine.protocol import read_events

    deadline = time.time() + timeout
    while time.time() < deadline:
        events = read_events(run_dir / "events.jsonl") if (run_dir / "events.jsonl").exists() else []
        if any(e["type"] == "finished" for e in events):
            break
        time.sleep(1)
    events = read_events(run_dir / "events.jsonl")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e)
    metrics = by_type.get("metrics", [])
    return {
        "finished": by_type.get("finished", [{}])[-1],
        "started": {k: by_type.get("started", [{}])[0].get(k) for k in ("precision", "device", "estimate")},
        "rehearsal": by_type.get("rehearsal"),
        "oom": [{k: e.get(k) for k in ("step", "batch_shape", "mem_at_failure_gib", "action")}
                for e in by_type.get("oom", [])],
        "first_metrics": metrics[0] if metrics else None,
        "last_metrics": metrics[-1] if metrics else None,
        "logs": [e.get("text") for e in by_type.get("log", [])][-8:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check-out")))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", choices=("train", "oom"), help="run just this one of the two training runs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path("/tmp/slmtui-gpu-check-home")
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "SLMTUI_HOME": str(home), "PYTHONPATH": pythonpath, "HF_HUB_OFFLINE": "1"}
    report: dict[str, Any] = {"smoke": args.smoke}
    out_file = args.out / "gpu_check.json"

    def save() -> None:
        out_file.write_text(json.dumps(report, indent=1, default=str))

    for name, argv in (() if args.only else (("gpus", ("gpus", "--json")), ("doctor", ("doctor", "--json")))):
        proc = cli(*argv, env=env)
        try:
            report[name] = json.loads(proc.stdout)
        except ValueError:
            report[name] = {"rc": proc.returncode, "stderr": proc.stderr[-2000:]}
        save()

    from engine.demo import ensure_demo
    from engine.tiny import build_tiny_model

    os.environ["SLMTUI_HOME"] = str(home)
    demo = ensure_demo(home)
    data = demo / "data" / "tickets.jsonl"
    model = home / "gpu-model"
    if not (model / "config.json").exists():
        texts = [json.loads(line)["input"] for line in data.read_text().splitlines()[:2000]]
        size = {"hidden": 128, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 256} if args.smoke else \
            {"hidden": 896, "layers": 24, "heads": 14, "kv_heads": 2, "intermediate": 4864}
        build_tiny_model(model, texts, vocab_size=2048, context=1024, **size)
    runs: dict[str, dict[str, Any]] = {
        "train": {"micro_batch": 8, "grad_accum": 2, "max_steps": 12 if args.smoke else 60, "rehearse": "auto"},
        "oom": {"micro_batch": 64 if args.smoke else 2048, "grad_accum": 1, "max_steps": 3, "rehearse": "off"},
    }
    for name, train in runs.items():
        if args.only and name != args.only:
            continue
        lines = [f'name = "gpu-{name}"', "[model]", f'name = "{model}"', "[data]", f'path = "{data}"',
                 "max_length = 256", "[method]", 'kind = "lora"', "[train]", "eval_every = 1000", "save_every = 1000"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in train.items()]
        spec = args.out / f"{name}.toml"
        spec.write_text("\n".join(lines) + "\n")
        extra = {"SLMTUI_TEST_OOM_AT_STEP": "1:32"} if args.smoke and name == "oom" else {}
        started = time.time()
        # The OOM run is meant not to fit: --force past the pre-launch memory check, which rightly refuses it.
        force = ("--force",) if name == "oom" else ()
        proc = cli("train", str(spec), "--detach", *force, env={**env, **extra}, timeout=60)
        run_id = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else ""
        if not run_id:
            report[name] = {"rc": proc.returncode, "stderr": proc.stderr[-2000:]}
            save()
            continue
        result = wait_finished(home / "runs" / run_id, timeout=110 if not args.smoke else 300)
        result["wall_s"] = round(time.time() - started, 1)
        report[name] = result
        save()
    runs_json = cli("runs", "--json", env=env)
    report["runs"] = [{k: r.get(k) for k in ("id", "status", "step", "message")}
                      for r in json.loads(runs_json.stdout or "{}").get("runs", [])]
    save()
    print(json.dumps(report, indent=1, default=str)[-6000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
