"""Shared, session-scoped pieces of the evaluation tests: the demo's tickets, a tiny model that knows their
words, and a short LoRA run trained on them (once per session, through `python -m engine run`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.evals.eval_helpers import REPO, engine_env

TICKETS = REPO / "engine" / "demo_data" / "tickets.jsonl"
ROWS = 300


@pytest.fixture(scope="session")
def tickets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first rows of the demo's support tickets (labelled by `category`)."""
    path = tmp_path_factory.mktemp("tickets") / "tickets.jsonl"
    lines = TICKETS.read_text(encoding="utf-8").splitlines()[:ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ticket_model(tickets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama whose tokenizer was trained on the tickets' scrubbed text."""
    from engine.pii import scrub_row
    from engine.tiny import build_tiny_model

    texts = []
    for line in tickets.read_text(encoding="utf-8").splitlines():
        row, _ = scrub_row({k: v for k, v in json.loads(line).items() if isinstance(v, str)})
        texts.append("\n".join(row.values()))
    return build_tiny_model(tmp_path_factory.mktemp("ticket-model"), texts, vocab_size=512)


SPEC = """name = "tickets"
[model]
name = "{model}"
[data]
path = "{data}"
val_fraction = 0.2
test_fraction = 0.1
max_length = 256
[method]
kind = "lora"
[train]
micro_batch = 8
lr = 0.005
max_steps = 100
schedule = "constant"
eval_every = 0
save_every = 0
eval_samples = 0
"""


@pytest.fixture(scope="session")
def trained_run(ticket_model: Path, tickets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA run of 100 steps on the tickets (about 15 s on one CPU thread); its folder holds `adapter/`."""
    home = tmp_path_factory.mktemp("run-home")
    run_dir = home / "runs" / "20260101-000000-tickets"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text(SPEC.format(model=ticket_model, data=tickets), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "engine", "run", str(run_dir)], env=engine_env(home),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    return run_dir


# The console's pilot-test machinery (async tests on a fresh loop, still cursors) for the screen tests here.
from tests.console.conftest import no_cursor_blink, pytest_pyfunc_call  # noqa: E402, F401
