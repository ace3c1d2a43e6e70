"""The real-length bench's data (bench/real_lengths.py): seeded log-normal lengths truncated at seq, the prompt
masked from the loss, and target tokens counted alike however a batch is padded or packed (no training)."""

from __future__ import annotations

import statistics

from bench.real_lengths import (
    IGNORE_INDEX,
    MEDIAN,
    MIN_LENGTH,
    P99,
    CountingCollator,
    padding_ratio,
    real_rows,
    row_targets,
    sample_lengths,
)
from engine.train.batching import collate, count_targets
from engine.train.packing import collate_packed


def test_lengths_are_seeded() -> None:
    assert sample_lengths(200, 1024, seed=3) == sample_lengths(200, 1024, seed=3)
    assert sample_lengths(200, 1024, seed=3) != sample_lengths(200, 1024, seed=4)


def test_lengths_are_truncated_at_seq() -> None:
    lengths = sample_lengths(5000, 1024)
    assert min(lengths) >= MIN_LENGTH and max(lengths) == 1024
    truncated = lengths.count(1024) / len(lengths)
    assert 0.08 < truncated < 0.14  # the log-normal's mass above 1024 tokens: 10.7%


def test_median_and_p99_match_the_targets() -> None:
    lengths = sorted(sample_lengths(20000, 10**6))
    assert abs(statistics.median(lengths) / MEDIAN - 1) < 0.05
    assert abs(lengths[int(0.99 * len(lengths))] / P99 - 1) < 0.12
    other = sorted(sample_lengths(20000, 10**6, median=100, p99=400))
    assert abs(statistics.median(other) / 100 - 1) < 0.05


def test_prompt_is_masked_and_response_is_the_target() -> None:
    for row in real_rows(50, 512, vocab=1000):
        prompt = row.labels.count(IGNORE_INDEX)
        assert prompt >= 1 and row.labels[:prompt] == [IGNORE_INDEX] * prompt
        assert row.labels[prompt:] == row.input_ids[prompt:]
        assert row_targets(row.labels) == len(row.input_ids) - prompt


def test_pads_and_prompts_never_count_padded_or_packed() -> None:
    from transformers import DataCollatorWithFlattening

    rows = real_rows(8, 256, vocab=1000, median=60, p99=250)
    expected = sum(row_targets(r.labels) for r in rows)
    padded = collate(rows, pad_id=0)
    assert padded["labels"].numel() > sum(len(r.input_ids) for r in rows)  # there is padding to leave out
    assert count_targets(padded["labels"]) == expected
    assert count_targets(collate_packed(rows)["labels"]) == expected
    counting = CountingCollator(DataCollatorWithFlattening())
    counting([{"input_ids": r.input_ids, "labels": r.labels} for r in rows])
    assert counting.targets == [expected]


def test_padding_ratio_is_real_over_padded_tokens() -> None:
    assert padding_ratio([2, 4, 3, 3], 2) == round(12 / 14, 4)
