"""`python -m engine eval` and `python -m engine generate`, run for real on tiny models."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.commands import evaluate, generate
from engine.protocol import EVENTS_FILE, SUMMARY_FILE, read_events
from tests.evals.eval_helpers import engine_env


@dataclass
class Ex:
    prompt: str
    response: str
    label: str | None = None
    input_ids: tuple[int, ...] = ()


@pytest.mark.parametrize(("text", "expected"), [
    ("Category: billing\nReply: sorry", "category: billing"),
    ("\n\n  Category:   billing.  \n", "category: billing"),
    ("", ""),
    ("one line", "one line"),
])
def test_answer_line_normalises_the_first_line(text: str, expected: str) -> None:
    assert evaluate.answer_line(text) == expected


def test_classification_like_needs_labels_or_repeated_answers() -> None:
    labelled = [Ex("p", f"free text {i}", label="a") for i in range(5)]
    repeated = [Ex("p", f"Category: {'ab'[i % 2]}\nReply: {i}") for i in range(8)]
    unique = [Ex("p", f"an essay number {i}") for i in range(8)]
    assert evaluate.classification_like(labelled)
    assert evaluate.classification_like(repeated)
    assert not evaluate.classification_like(unique)
    assert not evaluate.classification_like([])


def test_the_subset_ignores_token_ids_so_every_model_sees_the_same_rows() -> None:
    rows = [Ex(f"prompt {i} " + "x" * (i % 7), f"answer {i}", label="ab"[i % 2]) for i in range(60)]
    retokenised = [Ex(r.prompt, r.response, r.label, input_ids=(1,) * (i * 3)) for i, r in enumerate(rows)]
    chosen = evaluate.select_subset(rows, 12, seed=0)
    assert chosen == evaluate.select_subset(retokenised, 12, seed=0)
    assert 1 <= len(chosen) <= 12
    assert {rows[i].label for i in chosen} == {"a", "b"}  # stratified by label
    assert evaluate.select_subset(rows, 0, seed=0) == list(range(60))


def _engine(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], env=engine_env(home), capture_output=True,
                          text=True, timeout=300)


def test_eval_reports_through_events_and_prints_one_json(home: Path, ticket_model: Path, tickets: Path) -> None:
    proc = _engine(home, "eval", "--model", str(ticket_model), "--data", str(tickets), "--subset", "12",
                   "--val-fraction", "0.2", "--threads", "1", "--id", "e1", "--metrics", "accuracy,perplexity,coherence")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["id"] == "e1" and result["kind"] == "model"
    assert result["examples"] == len(result["lines"]) and 1 <= result["examples"] <= 12
    assert result["loss"] > 0 and result["perplexity"] > 1 and result["bits_per_char"] > 0
    assert result["accuracy"] is not None and 0 <= result["accuracy"] <= 1  # labelled by `category`
    assert result["tokens_per_s"] > 0 and result["mem_peak_gib"] > 0
    assert list(result["not_computed"]) == ["coherence"]  # rated by people: named, not faked
    folder = home / "evals" / "e1"
    types = [e["type"] for e in read_events(folder / EVENTS_FILE)]
    assert types[-1] == "finished" and {"started", "progress", "eval"} <= set(types)
    assert json.loads((folder / SUMMARY_FILE).read_text())["loss"] == result["loss"]


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "/no/such/model", "--data", "x.jsonl"], "is not a folder"),
    (["--model", "{model}"], "--data is missing"),
    (["--model", "{model}", "--data", "/no/such/file.jsonl"], "file.jsonl"),
])
def test_user_errors_are_one_sentence(home: Path, ticket_model: Path, args: list[str], message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main([a.format(model=ticket_model) for a in args]) == 1
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err
    summaries = list((home / "evals").glob(f"*/{SUMMARY_FILE}"))
    assert summaries and json.loads(summaries[0].read_text())["status"] == "failed"


def test_generate_streams_tokens_then_done(trained_run: Path) -> None:
    import torch

    out = io.StringIO()
    before = torch.get_num_threads()
    try:
        args = generate.build_parser().parse_args(["--model", str(trained_run), "--prompt",
                                                   "Triage this support ticket: give its category and a short "
                                                   "reply to the customer.\n\nI was charged twice.",
                                                   "--max-new-tokens", "12", "--label", "ft", "--threads", "1"])
        assert generate.run(args, out) == 0
    finally:
        torch.set_num_threads(before)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["ready"] and lines[-1]["done"]
    tokens = [line["token"] for line in lines[1:-1]]
    assert tokens and all(line["model"] == "ft" for line in lines[1:-1])
    assert "".join(tokens) == lines[-1]["text"]
    assert 0 < lines[-1]["tokens"] <= 12 and lines[-1]["tokens_per_s"] > 0
