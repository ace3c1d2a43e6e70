"""What reporting every optimizer step costs: the same training steps with and without events.

Blocks of `--steps` optimizer steps alternate between "reported" (a `metrics` event per step through the real
`Reporter` to a real `events.jsonl`, `summary.json` rewrites, the control-file poll) and "silent" (the same
`train_step` calls, nothing written). Two figures: the reporting calls' own time per step against a silent
step (direct), and median reported block / median silent block - 1 (blocks; noisy on a shared machine).
The per-step `.item()` sync sits in `train_step` itself, so both modes pay it. Goal: at most 2%.

    python bench/log_overhead.py --size small --rounds 6
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = {  # LlamaConfig overrides for engine.tiny.build_tiny_model
    "tiny": {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 128},
    "small": {"hidden": 256, "layers": 4, "heads": 8, "kv_heads": 4, "intermediate": 688},
    "medium": {"hidden": 1024, "layers": 8, "heads": 16, "kv_heads": 8, "intermediate": 2816},
}


@dataclass
class Row:
    input_ids: list[int]
    labels: list[int]
    prompt: str = ""
    response: str = ""
    label: str | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--seq", type=int, default=256, help="tokens per example (no padding)")
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per timed block")
    parser.add_argument("--rounds", type=int, default=6, help="reported/silent block pairs")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from engine.modeling import load_for_training
    from engine.spec import RunSpec
    from engine.tiny import build_tiny_model
    from engine.train.loop import ControlInbox, Trainer, report_step
    from engine.train.reporting import Reporter

    work = Path(tempfile.mkdtemp(prefix="log-overhead-"))
    corpus = [f"ticket {i} about order {i * 7} and invoice {i * 13}" for i in range(400)]
    model_dir = build_tiny_model(work / "model", corpus, vocab_size=512, context=max(512, args.seq),
                                 **SIZES[args.size])
    spec = RunSpec(name="bench")
    spec.model.name = str(model_dir)
    spec.train.device = args.device
    spec.train.micro_batch = args.micro_batch
    spec.method.dropout = 0.0
    loaded = load_for_training(spec)
    rng = random.Random(0)
    vocab = loaded.tokenizer.vocab_size
    rows = [Row(ids, ids) for ids in ([rng.randrange(8, vocab) for _ in range(args.seq)] for _ in range(256))]
    total = 10 + 2 * args.rounds * args.steps
    trainer = Trainer(loaded, spec, rows, [], total_steps=total, shuffle=True)
    run_dir = work / "run"
    run_dir.mkdir()
    reporter = Reporter(run_dir, "bench")
    inbox = ControlInbox(run_dir / "control.jsonl")
    sync = torch.cuda.synchronize if loaded.device.type == "cuda" else (lambda: None)

    for _ in range(10):  # warm-up: allocator, kernels, autotuning
        trainer.train_step()

    reporting_s: list[float] = []

    def block(reported: bool) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(args.steps):
            result = trainer.train_step()
            if reported:
                t0 = time.perf_counter()
                report_step(reporter, trainer, result)
                inbox.poll()
                reporting_s.append(time.perf_counter() - t0)
        sync()
        return time.perf_counter() - start

    silent: list[float] = []
    reported: list[float] = []
    for i in range(args.rounds):
        order = (False, True) if i % 2 == 0 else (True, False)  # alternate to cancel drift
        for flag in order:
            (reported if flag else silent).append(block(flag))
    reporter.close()
    tokens = args.micro_batch * args.seq * args.steps
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "device": torch.cuda.get_device_name(loaded.device) if loaded.device.type == "cuda" else "cpu",
        "precision": loaded.precision.name,
        "size": args.size,
        "params_total": loaded.params_total,
        "seq": args.seq,
        "micro_batch": args.micro_batch,
        "steps_per_block": args.steps,
        "rounds": args.rounds,
        "step_ms_silent": round(1000 * statistics.median(silent) / args.steps, 3),
        "step_ms_reported": round(1000 * statistics.median(reported) / args.steps, 3),
        "tokens_per_s_silent": round(tokens / statistics.median(silent)),
        "reporting_us_per_step": round(1e6 * statistics.mean(reporting_s), 1),
        # the reporting calls' own time against a silent step: precise even on a busy machine
        "overhead_pct_direct": round(100 * statistics.mean(reporting_s) * args.steps / statistics.median(silent), 3),
        # whole blocks against each other: includes indirect costs, but noisy where other work shares the CPU
        "overhead_pct_blocks": round(100 * (statistics.median(reported) / statistics.median(silent) - 1), 2),
        "events_bytes": (run_dir / "events.jsonl").stat().st_size,
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
