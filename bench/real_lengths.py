"""Real example lengths for the throughput bench: a seeded log-normal of prompt + response lengths, the prompt
masked from the loss, and the four runners that train on them (engine padded, engine packed, HF Trainer as a user
first runs it, HF Trainer at its best).

Where the lengths come from. No instruction dataset could be downloaded here, and the searches for published
per-example token-length statistics of a named public dataset (Alpaca, Dolly-15k, OpenHermes-2.5, UltraChat,
ShareGPT) found dataset cards with example counts and bytes but no length percentiles. The one published
percentile table found is https://huggingface.co/datasets/Efe2898/last/blob/main/reports/token_stats.csv (24,690
chat examples, tokenizer not stated): p50 357 tokens, p90 1,058, p95 2,105, p99 8,192 (its truncation), mean
688; assistant tokens p50 283, mean 605, so about 80% of an example's tokens are the response. Its card does not
say which data it holds, so the defaults below are assumptions fitted to it, not Alpaca's or ShareGPT's
figures: median 357 and p99 2,570 (the log-normal through its p50 and p90: sigma 0.85, which puts p95 at 1,440
against its 2,105; the tail is thinner than the table's), the prompt 20% of each example (drawn between 10% and
30%). Give `--median` and `--p99` to model other data. Lengths are truncated at `seq` (with the default 1024,
about 11% of examples are), and are at least `MIN_LENGTH`.
"""

from __future__ import annotations

import importlib.util
import math
import random
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

from bench.log_overhead import Row

IGNORE_INDEX = -100
#: Assumptions fitted to the table above (the module docstring says how).
MEDIAN, P99, PROMPT_SHARE = 357, 2570, (0.1, 0.3)
MIN_LENGTH = 8
RUNNERS = ("engine", "engine-packed", "hf-default", "hf-best")
Z99 = NormalDist().inv_cdf(0.99)


def sample_lengths(n: int, seq: int, median: float = MEDIAN, p99: float = P99, seed: int = 0) -> list[int]:
    """`n` example lengths from the log-normal with this median and 99th percentile, truncated at `seq`."""
    rng = random.Random(seed)
    mu, sigma = math.log(median), math.log(p99 / median) / Z99
    return [max(MIN_LENGTH, min(seq, round(rng.lognormvariate(mu, sigma)))) for _ in range(n)]


def real_rows(n: int, seq: int, vocab: int, median: float = MEDIAN, p99: float = P99, seed: int = 0) -> list[Row]:
    """`n` examples of random tokens at sampled lengths; the prompt part of each has label -100."""
    rng = random.Random(seed + 1)
    rows = []
    for length in sample_lengths(n, seq, median, p99, seed):
        ids = [rng.randrange(vocab) for _ in range(length)]
        prompt = max(1, round(length * rng.uniform(*PROMPT_SHARE)))
        rows.append(Row(ids, [IGNORE_INDEX] * prompt + ids[prompt:]))
    return rows


def row_targets(labels: Sequence[int]) -> int:
    """Tokens of one example that carry loss: labels after the causal shift that are not masked (as the
    engine's `count_targets` counts a collated batch, so pads never count)."""
    return sum(1 for label in labels[1:] if label != IGNORE_INDEX)


class CountingCollator:
    """Wraps an HF collator and keeps the target tokens of each batch it makes, in order."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate
        self.targets: list[int] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        from engine.train.batching import count_targets

        batch = self.collate(features)
        self.targets.append(count_targets(batch["labels"]))
        return batch


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def hf_recipe(runner: str, cuda: bool, folder: Path) -> tuple[Any, str, dict[str, Any], str]:
    """(collator, attention, extra TrainingArguments, what it is in words) of an HF runner; `folder` holds the
    tokenizer that pads.

    `hf-default`: what a user first runs: `DataCollatorForSeq2Seq` padding each batch to its longest row, sdpa.
    `hf-best`: padding-free batches (`DataCollatorWithFlattening`) with flash_attention_2 and Liger kernels
    where they are installed on a CUDA machine; without flash-attn the flattened rows go to sdpa, which reads
    the example boundaries from the restarting position_ids (transformers' packed-sequence mask)."""
    from transformers import (
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        DataCollatorWithFlattening,
        default_data_collator,
    )

    if runner == "hf":
        return default_data_collator, "sdpa", {}, "fixed lengths, default collator"
    if runner == "hf-default":
        padding = DataCollatorForSeq2Seq(AutoTokenizer.from_pretrained(folder), padding="longest",
                                         label_pad_token_id=IGNORE_INDEX)
        return padding, "sdpa", {}, "DataCollatorForSeq2Seq, pad to longest, sdpa"
    flash = cuda and installed("flash_attn")
    liger = cuda and installed("liger_kernel")
    attention = "flash_attention_2" if flash else "sdpa"
    kernels = "Liger kernels" if liger else "no Liger (not installed)" if cuda else "no Liger (no CUDA)"
    words = f"DataCollatorWithFlattening, {attention}, {kernels}"
    return DataCollatorWithFlattening(), attention, {"use_liger_kernel": True} if liger else {}, words


def real_cases(smoke: bool, models: Sequence[str] = ("qwen2.5-0.5b", "qwen2.5-1.5b"),
               methods: Sequence[str] = ("lora", "qlora", "full")) -> list[dict[str, Any]]:
    """The four runners for each model shape and method on real lengths, runners of one case adjacent."""
    if smoke:
        models, methods = ("tiny",), ("lora", "full")
    extra = {"warmup": 1, "steps": 5} if smoke else {"steps": 4}
    return [{"bench": "real_lengths", "lengths": "real", "runner": runner, "model": model, "method": method, **extra}
            for model in models for method in methods for runner in RUNNERS]


def padding_ratio(lengths: Sequence[int], batch: int) -> float:
    """Real tokens over the tokens of micro-batches padded to their longest row (what packing saves)."""
    from engine.train.packing import padding_stats

    return padding_stats(lengths, batch)["ratio"]


def report(rows: list[dict[str, Any]]) -> str:
    """Markdown: per model and method, each runner's target tokens/s, its speed against hf-default, peak memory."""
    lines = ["| model | method | runner | target tok/s | × hf-default | peak GiB | packing ratio | recipe |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    done = [r for r in rows if r.get("bench") == "real_lengths"]
    base = {(r["model"], r["method"]): r for r in done if r["runner"] == "hf-default" and "error" not in r}
    for r in done:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['method']} | {r['runner']} | failed: {r['error']} | | | | |")
            continue
        ref = base.get((r["model"], r["method"]))
        speed = f"{r['tokens_per_s'] / ref['tokens_per_s']:.2f}" if ref else "n/a"
        peak = r.get("peak_reserved_gib") or r.get("peak_rss_gib")
        lines.append(f"| {r['model']} | {r['method']} | {r['runner']} | {r['tokens_per_s']:,.0f} | {speed} | {peak} | "
                     f"{r.get('packing_ratio')} | {r.get('recipe', '')} |")
    return "\n".join(lines)
