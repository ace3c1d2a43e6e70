"""The run both sides of tests/test_data_parallel.py train: the same spec and examples, in one process or two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec import RunSpec
from tests.test_train_loop import make_spec
from tests.train_helpers import Ex, build_examples, instruction_rows

STEPS = 3


def case_spec(model_dir: Path, kind: str, packing: str, micro_batch: int) -> RunSpec:
    return make_spec(model_dir, kind, micro_batch=micro_batch, grad_accum=2, lr=5e-3, schedule="constant",
                     packing=packing)


def case_examples(tokenizer: Any) -> tuple[list[Ex], list[Ex]]:
    examples = build_examples(tokenizer, instruction_rows(40))
    return examples[:32], examples[32:]
