"""Checklist answers for tests: `seed` saves a checklist answered as in SEED into a HOME's store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slmtui import checklist as ck
from slmtui.store import Store

SEED: dict[str, Any] = {
    "drivers.domain_knowledge": True,
    "drivers.cost_latency": True,
    "drivers_note": "support answers must cite our policies",
    "alternatives.prompt_engineering.tried": True,
    "alternatives.prompt_engineering.score": 0.71,
    "alternatives.prompt_engineering.note": "few-shot, 8 examples",
    "alternatives.rag.tried": True,
    "alternatives.rag.score": 0.78,
    "metrics.accuracy.target": 0.85,
    "metrics.perplexity.target": 6.0,
    "data.route": "own",
    "data.source": "tickets.jsonl",
    "data.steps.preprocessing": True,
    "data.steps.splits": True,
}


def seed(home: Path, answers: dict[str, Any] | None = None) -> None:
    """Save a checklist answered as in SEED (or `answers`) into HOME's store."""
    cl = ck.Checklist()
    for path, value in (SEED if answers is None else answers).items():
        cl.set(path, value)
    Store(home).save_checklist(ck.to_dict(cl))
