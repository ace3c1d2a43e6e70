"""The built-in demo: the shipped support-ticket dataset and a tiny Llama trained-tokenizer model, under HOME/demo.

Built once (`python -m engine make-demo`, or on first need by `data-check`); later calls find it and return.
The tokenizer is trained on the dataset's scrubbed text, so placeholders such as `<NAME_1>` are cheap to
encode; the model has random weights and is small enough to fine-tune on two CPU cores in a minute or two.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.paths import demo_dir

SHIPPED_DATASET = Path(__file__).resolve().parent / "demo_data" / "tickets.jsonl"
#: The demo model's shape: a ~1M-parameter Llama (hidden 128, 2 layers) with a 2048-token vocabulary.
DEMO_MODEL = {"vocab_size": 2048, "hidden": 128, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 256,
              "context": 512}


def demo_paths(home: Path | None = None) -> tuple[Path, Path]:
    """(dataset file, model folder) of the demo under HOME."""
    root = demo_dir(home)
    return root / "data" / "tickets.jsonl", root / "model"


def is_built(home: Path | None = None) -> bool:
    """True when the demo's dataset and model are both in place."""
    data, model = demo_paths(home)
    return data.is_file() and (model / "config.json").is_file() and (model / "tokenizer.json").is_file()


def _training_texts(dataset: Path) -> list[str]:
    from engine.pii import scrub_row

    texts = []
    for line in dataset.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row, _ = scrub_row({k: v for k, v in json.loads(line).items() if isinstance(v, str)})
            texts.append("\n".join(row.values()))
    return texts


def ensure_demo(home: Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Build HOME/demo/{data/tickets.jsonl, model/} unless already there; returns the demo folder."""
    say = log or (lambda _msg: None)
    root = demo_dir(home)
    data, model = demo_paths(home)
    if is_built(home):
        return root
    data.parent.mkdir(parents=True, exist_ok=True)
    if not data.is_file():
        shutil.copyfile(SHIPPED_DATASET, data)
    say("Building the demo model (tokenizer trained on the tickets, random weights)...")
    from engine.tiny import build_tiny_model

    spec = dict(DEMO_MODEL)
    vocab = spec.pop("vocab_size")
    # Built beside its final place and renamed, so a half-built model is never taken for a finished one.
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=root))
    try:
        build_tiny_model(tmp, _training_texts(data), vocab_size=vocab, **spec)
        if not (model / "config.json").is_file():
            shutil.rmtree(model, ignore_errors=True)
            tmp.rename(model)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"Demo ready in {root}.")
    return root
