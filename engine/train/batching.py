"""Turning prepared examples into padded micro-batches, in a seeded order a checkpoint can resume."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

IGNORE_INDEX = -100


class TokenizedExample(Protocol):
    """What batching needs of an `engine.data.Example`."""

    input_ids: list[int]
    labels: list[int]


def collate(examples: Sequence[TokenizedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch: `input_ids` with `pad_id`, `labels` with -100, and an attention mask."""
    longest = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), longest), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), longest), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


class Collator:
    """A picklable collate function (HF Trainer and DataLoader workers take it as `data_collator`)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        return collate(examples, self.pad_id)


def count_targets(labels: torch.Tensor) -> int:
    """Tokens that carry loss in a causal LM: labels after the shift that are not masked."""
    return int((labels[..., 1:] != IGNORE_INDEX).sum())


def batch_tokens(batch: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(real tokens, the longest example's length) of a padded or a packed micro-batch."""
    if "position_ids" in batch:  # packed: each example's positions start at 0
        return int(batch["row_lengths"].sum()), int(batch["position_ids"].max()) + 1
    lengths = batch["attention_mask"].sum(1)
    return int(lengths.sum()), int(lengths.max())


@dataclass
class StreamState:
    """Where a `BatchStream` is: enough to continue the same order after a resume."""

    epoch: int = 0
    cursor: int = 0
    examples_seen: int = 0


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """The order of `n` training examples in one epoch (seed + epoch), the one `BatchStream` follows."""
    order = list(range(n))
    if shuffle:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


class BatchStream:
    """Endless micro-batches over the training split: reshuffled each epoch (seed + epoch), or in order.

    A short last micro-batch of an epoch is kept, as HF's DataLoader does (drop_last = False).
    """

    def __init__(self, examples: Sequence[TokenizedExample], micro_batch: int, pad_id: int, seed: int,
                 shuffle: bool = True, state: StreamState | None = None) -> None:
        if not examples:
            raise ValueError("no training examples")
        self.examples = examples
        self.micro_batch = micro_batch
        self.pad_id = pad_id
        self.seed = seed
        self.shuffle = shuffle
        self.state = state or StreamState()
        self._order = self._epoch_order(self.state.epoch)

    def _epoch_order(self, epoch: int) -> list[int]:
        return epoch_order(len(self.examples), self.seed, epoch, self.shuffle)

    def restore(self, state: StreamState) -> None:
        """Continue from a saved position (same seed, same order)."""
        self.state = state
        self._order = self._epoch_order(state.epoch)

    @property
    def epoch_float(self) -> float:
        """Epochs done, fractional."""
        return self.state.examples_seen / len(self.examples)

    def next_examples(self) -> list[TokenizedExample]:
        """The examples of the next micro-batch, starting a new epoch when this one is used up."""
        if self.state.cursor >= len(self._order):
            self.state.epoch += 1
            self.state.cursor = 0
            self._order = self._epoch_order(self.state.epoch)
        picked = self._order[self.state.cursor : self.state.cursor + self.micro_batch]
        self.state.cursor += len(picked)
        self.state.examples_seen += len(picked)
        return [self.examples[i] for i in picked]

    def next_batch(self) -> dict[str, torch.Tensor]:
        """The next micro-batch, padded."""
        return collate(self.next_examples(), self.pad_id)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.next_batch()
