"""Shared helpers for the engine's training tests: synthetic instruction rows and hand-built examples."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATEGORIES = ("shipping", "billing", "account")


def instruction_rows(n: int = 48) -> list[dict[str, str]]:
    """Synthetic support-ticket triage rows in the instruction shape."""
    rows = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        rows.append({
            "instruction": f"Classify ticket {i}: my order {1000 + i} " + {
                "shipping": "has not arrived and I need it by Friday.",
                "billing": "was charged twice on the invoice.",
                "account": "login fails after the password reset.",
            }[category],
            "input": "",
            "output": f"Category: {category}.",
        })
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@dataclass
class Ex:
    """The fields of `engine.data.Example` the engine uses."""

    input_ids: list[int]
    labels: list[int]
    prompt: str
    response: str
    label: str | None = None


def build_examples(tokenizer: Any, rows: list[dict[str, str]]) -> list[Ex]:
    """Chat-template each row; mask the prompt's labels; the response ends with the end-of-turn token."""
    out = []
    for row in rows:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": row["instruction"]}],
                                               tokenize=False, add_generation_prompt=True)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(row["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append(Ex(p_ids + r_ids, [-100] * len(p_ids) + r_ids, prompt, row["output"]))
    return out


def write_small_run(tmp_path: Path, model_dir: Path, name: str) -> Path:
    """A run folder with the spec of a 6-step CPU LoRA run on 40 rows, a checkpoint every 2 steps, no evals."""
    from engine.spec import RunSpec, dump_spec

    spec = RunSpec(name=name)
    spec.model.name = str(model_dir)
    spec.data.path = str(write_jsonl(tmp_path / "rows.jsonl", instruction_rows(40)))
    spec.train.device, spec.train.micro_batch, spec.train.max_steps = "cpu", 4, 6
    spec.train.save_every, spec.train.eval_every = 2, 0
    run_dir = tmp_path / f"20260101-000000-{name}"
    run_dir.mkdir()
    (run_dir / "spec.toml").write_text(dump_spec(spec))
    return run_dir


def execute_on_one_thread(run_dir: Path) -> str:
    """`engine.train.run.execute` on `run_dir` with one torch thread (the thread count put back after)."""
    import torch

    from engine.train.loop import StopFlag
    from engine.train.run import execute

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return execute(run_dir, StopFlag())
    finally:
        torch.set_num_threads(threads)
