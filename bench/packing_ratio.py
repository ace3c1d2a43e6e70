"""Padding against packing on the demo: the pad share of each micro-batch, and CPU training tokens/s either way.

The demo run's spec (the demo model, the tickets, micro-batch 8, data.max_length 256) on one torch thread. The
pad share is counted over one epoch of the seeded order: for padding, the pad tokens of each micro-batch over
its padded size; packing has none, and its rows (the step's examples end to end, up to max_length tokens a row)
are reported by fill. Tokens/s counts real tokens over `--steps` timed steps after `--warmup`, each way from the
same initial weights and data order: padded; packed as the engine packs for sdpa (rows of at most max_length,
as many a micro-batch as its budget of micro_batch × max_length tokens holds); and packed in one row of the whole
budget a micro-batch, the layout of flash-attention's varlen path, here through sdpa with a T × T block mask,
whose attention work grows with the square of the row.

    python bench/packing_ratio.py [--steps 20] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pad_shares(lengths: list[int], micro_batch: int) -> list[float]:
    """The pad share of each padded micro-batch of `lengths`, in order."""
    shares = []
    for start in range(0, len(lengths), micro_batch):
        batch = lengths[start : start + micro_batch]
        shares.append(1 - sum(batch) / (max(batch) * len(batch)))
    return shares


def timed_steps(spec: Any, train: list[Any], validation: list[Any], steps: int, warmup: int,
                one_row: bool = False) -> dict[str, Any]:
    """Tokens/s of `steps` training steps after `warmup`, packed or padded as `spec.train.packing` says (packed
    in one row a micro-batch with `one_row`)."""
    import torch

    from engine.modeling import load_for_training
    from engine.train.loop import Trainer
    from engine.train.packing import choose_packer

    torch.manual_seed(0)
    trainer = Trainer(load_for_training(spec), spec, train, validation, total_steps=warmup + steps)
    trainer.packer = choose_packer(spec, trainer.model)
    if trainer.packer is not None and one_row:
        trainer.packer.row_tokens = None
    for _ in range(warmup):
        trainer.train_step()
    tokens, losses = 0, []
    started = time.perf_counter()
    for _ in range(steps):
        result = trainer.train_step()
        tokens += result.tokens
        losses.append(result.loss.item())
    seconds = time.perf_counter() - started
    return {"packing": trainer.packer is not None, "rows": trainer.packer.shape() if trainer.packer else None,
            "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds), "mean_loss": round(statistics.fmean(losses), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import os

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="slmtui-bench-") as tmp:
        home = Path(tmp)
        os.environ["SLMTUI_HOME"] = str(home)
        from engine.data import prepare
        from engine.demo import ensure_demo
        from engine.modeling import load_tokenizer
        from engine.paths import cache_dir
        from engine.spec import micro_batch_tokens
        from engine.train.batching import epoch_order
        from engine.train.packing import pack_rows
        from slmtui.demo import demo_spec

        ensure_demo(home)
        spec = demo_spec(home)
        prepared = prepare(spec.data, load_tokenizer(spec.model), cache_dir=cache_dir())
        train = prepared.train
        order = [train[i] for i in epoch_order(len(train), spec.train.seed, 0)]
        lengths = [len(e.input_ids) for e in order]
        mb = spec.train.micro_batch
        shares = pad_shares(lengths, mb)
        budget = micro_batch_tokens(spec)
        row_budget = min(budget, spec.data.max_length)
        fills = [sum(len(e.input_ids) for e in row) / row_budget
                 for start in range(0, len(order), mb) for row in pack_rows(order[start : start + mb], row_budget)]
        report: dict[str, Any] = {
            "examples": len(train), "micro_batch": mb, "max_length": spec.data.max_length,
            "length_p50": statistics.median(lengths), "length_max": max(lengths),
            "padding": {"pad_share_mean": round(statistics.fmean(shares), 4),
                        "pad_share_p50": round(statistics.median(shares), 4),
                        "pad_share_max": round(max(shares), 4),
                        "padded_tokens": sum(max(lengths[i : i + mb]) * len(lengths[i : i + mb])
                                             for i in range(0, len(lengths), mb)),
                        "real_tokens": sum(lengths)},
            "packing": {"pad_share": 0.0, "micro_batch_tokens": budget, "rows": len(fills),
                        "row_fill_mean": round(statistics.fmean(fills), 4)},
        }
        for name, packing, one_row in (("padded", "off", False), ("packed_rows", "auto", False),
                                       ("packed_one_row", "auto", True)):
            spec.train.packing = packing
            report[name] = timed_steps(spec, train, prepared.validation, args.steps, args.warmup, one_row)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
