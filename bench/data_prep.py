"""How long the data pipeline takes on 100k rows: load, scrub, format, tokenise, split (goal: <= 60 s).

Rows are the demo tickets repeated and perturbed (a ticket number, shuffled sentence order, an extra phrase),
so that no two rows are alike and the scrubber's cache of repeated strings cannot hide the work.

    python bench/data_prep.py [--rows 100000] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXTRA = ["Please answer soon.", "Ticket reopened.", "Second message on this.", "Sent from my phone.", ""]


def make_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` rows made from the demo tickets, each one different."""
    from engine.demo import SHIPPED_DATASET

    base = [json.loads(line) for line in SHIPPED_DATASET.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = dict(base[i % len(base)])
        sentences = row["input"].split(". ")
        rng.shuffle(sentences)
        row["input"] = f"[#{i}] " + ". ".join(sentences) + " " + rng.choice(EXTRA)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.md")
    args = parser.parse_args()

    from engine.data import DataOptions, prepare
    from engine.data.load import load_source
    from engine.demo import SHIPPED_DATASET, _training_texts
    from engine.tiny import train_tokenizer

    tokenizer = train_tokenizer(_training_texts(SHIPPED_DATASET), vocab_size=2048)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in make_rows(args.rows)), encoding="utf-8")
        t0 = time.perf_counter()
        loaded = load_source(str(src))
        t_load = time.perf_counter() - t0
        stages: list[tuple[float, str]] = []
        start = time.perf_counter()
        prepared = prepare(DataOptions(path=str(src), max_length=512), tokenizer, cache_dir=Path(tmp) / "cache",
                           log=lambda m: stages.append((time.perf_counter() - start, m)))
        t_cold = time.perf_counter() - start
        start = time.perf_counter()
        prepare(DataOptions(path=str(src), max_length=512), tokenizer, cache_dir=Path(tmp) / "cache")
        t_warm = time.perf_counter() - start
    counts = prepared.report["splits"]
    lines = [
        "| rows | load only | prepare, cold (load, scrub, format, tokenise, split, write cache) | prepare, cache hit |",
        "| --- | --- | --- | --- |",
        f"| {len(loaded.rows)} | {t_load:.1f} s | {t_cold:.1f} s | {t_warm:.1f} s |",
        "",
        f"Splits {counts['train']} / {counts['validation']} / {counts['test']}; personal data found: "
        + ", ".join(f"{k} {v}" for k, v in prepared.report["pii"].items())
        + f"; token length p50 {prepared.report['token_lengths']['p50']}, max "
        f"{prepared.report['token_lengths']['max']}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.record:
        with open(ROOT / "docs" / "benchmarks.md", "a", encoding="utf-8") as fh:
            fh.write(f"\n### bench/data_prep.py: {dt.date.today().isoformat()}\n\n"
                     f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                     f"load average {os.getloadavg()[0]:.1f} at the end (other jobs shared the cores). "
                     f"Command: `python bench/data_prep.py --rows {args.rows} --record`. Tokenizer: the demo's "
                     f"(byte-level BPE, 2048 tokens, Llama-3-style chat template). Goal: <= 60 s cold.\n\n{text}\n")


if __name__ == "__main__":
    main()
