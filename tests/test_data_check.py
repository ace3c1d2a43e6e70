"""`slmtui data check` and `python -m engine data-check` / `make-demo`, as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.demo import SHIPPED_DATASET
from tests.conftest import Cli, cli_env


def test_demo_check_finds_and_scrubs_personal_data_with_the_demo_tokenizer(cli: Cli, home: Path) -> None:
    report = cli.json("data", "check", str(SHIPPED_DATASET), "--json")
    assert report["tokenizer"]["default_demo"] is True and "demo tokenizer" in report["tokenizer"]["note"]
    assert "--tokenizer" not in report["tokenizer"]["note"]  # the console shows it too, where there is no flag
    assert (home / "demo" / "model" / "tokenizer.json").is_file()
    assert report["rows"] == 3000 and report["duplicates"] > 0 and report["invalid_rows"] == []
    assert report["shape"] == "instruction" and report["label_column"] == "category"
    assert len(report["label_balance"]) == 8
    assert all(report["pii"][t] > 0 for t in ("EMAIL", "PHONE", "ADDRESS", "CARD", "IBAN", "IP", "NAME"))
    assert 0 < report["token_lengths"]["p50"] <= report["token_lengths"]["p90"] <= report["token_lengths"]["max"]
    text = json.dumps(report)
    assert "dgilles@example.org" not in text and "Joshua Diaz" not in text  # raw values from the source
    segments = [s for item in report["preview"] for s in item["segments"]]
    assert any("<EMAIL_1>" in s["text"] for s in segments)
    assert any(s["trained"] and s["text"].startswith("Category: ") for s in segments)
    assert sum(b["count"] for b in report["length_histogram"]) == 3000
    # data check built the demo on the way; make-demo finds it and builds nothing.
    made = subprocess.run([sys.executable, "-m", "engine", "make-demo", "--json"], env=cli_env(home),
                          capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(made.stdout)["built"] is False
    config = json.loads((home / "demo" / "model" / "config.json").read_text())
    assert config["hidden_size"] == 128 and config["num_hidden_layers"] == 2 and config["vocab_size"] <= 2048
    assert (home / "demo" / "data" / "tickets.jsonl").read_bytes() == SHIPPED_DATASET.read_bytes()


def test_bad_rows_are_listed_and_the_command_still_exits_0(cli: Cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"prompt": "a", "completion": "b"}\n{oops\n\xff\n{"prompt": "' + b"long " * 300
                    + b'", "completion": "c"}\n')
    proc = cli("data", "check", str(src), "--tokenizer", str(tiny_model_dir), "--max-length", "64",
               "--policy", "drop")
    assert proc.returncode == 0, proc.stderr
    assert "Invalid rows" in proc.stdout and "Personal data by type" in proc.stdout
    report = cli.json("data", "check", str(src), "--tokenizer", str(tiny_model_dir), "--max-length", "64",
                      "--policy", "drop", "--json")
    assert [r["line"] for r in report["invalid_rows"]] == [2, 3]
    assert report["over_max_length"] == 1 and "dropped" in report["overlength_action"]
    assert report["tokenizer"]["default_demo"] is False


def test_user_errors_are_one_sentence(cli: Cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "qa.csv"
    src.write_text("id,question,answer\n1,q,a\n")
    proc = cli("data", "check", str(src), "--tokenizer", str(tiny_model_dir))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "--map prompt=question,response=answer" in proc.stderr
    ok = cli.json("data", "check", str(src), "--tokenizer", str(tiny_model_dir), "--map",
                  "prompt=question,response=answer", "--json")
    assert ok["shape"] == "prompt_completion" and ok["rows"] == 1


def _numeric_qa(path: Path, rows: int = 600) -> None:
    import random

    r = random.Random(3)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            a, b = r.randint(10**6, 10**10), r.uniform(-1e4, 1e4)
            question, answer = r.choice([
                (f"What is {a} + {b:.6f}?", f"{a + b:.6f}"), (f"Round {b:.8f} to 4 dps.", f"{b:.4f}"),
                (f"What is {a} * {i + 3}?", str(a * (i + 3))), (f"Subtract {a} from {-a - i}.", str(-2 * a - i)),
                (f"How many seconds are in {a} ms?", f"{a / 1000:.3f} s"), (f"Expand (x + {i})^2.", f"x^2 + {2 * i}x + {i * i}"),
            ])
            fh.write(json.dumps({"question": question, "answer": answer}) + "\n")


def test_numeric_data_is_left_alone(cli: Cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "maths.jsonl"
    _numeric_qa(src)
    report = cli.json("data", "check", str(src), "--tokenizer", str(tiny_model_dir), "--map",
                      "prompt=question,response=answer", "--json")
    assert report["pii_rows"] == 0 and sum(report["pii"].values()) == 0
    assert report["scrub_changes"]["rows_changed"] == 0 and report["scrub_changes"]["warning"] == ""


def test_a_scrub_that_changes_many_responses_says_so_and_names_the_setting(cli: Cli, tmp_path: Path,
                                                                         tiny_model_dir: Path) -> None:
    src = tmp_path / "support.jsonl"
    with src.open("w", encoding="utf-8") as fh:
        for i in range(100):
            reply = f"Call our desk on +44 20 7946 {i:04d}." if i % 10 == 0 else "We will look into it."
            fh.write(json.dumps({"prompt": f"Ticket {i}: my parcel is late.", "completion": reply}) + "\n")
    args = ("data", "check", str(src), "--tokenizer", str(tiny_model_dir))
    report = cli.json(*args, "--json")
    changes = report["scrub_changes"]
    assert changes["rows_changed"] == 10 and changes["responses_changed"] == 10
    assert changes["responses_changed_share"] == 0.1 and changes["top_replaced"]["PHONE"][0]["count"] == 1
    assert "+44 20 7946 0010" not in json.dumps(report)  # the replaced strings are masked
    assert "data.scrub_types = [" in changes["warning"] and '"PHONE"' not in changes["warning"].split("[")[1]
    text = cli(*args, check=True).stdout
    assert "Warning: Scrubbing changed the trained responses of 10 of 100 rows (10.0%)" in " ".join(text.split())
    assert "10 rows changed (10.0%), 10 trained responses (10.0%)" in text
    chosen = cli.json(*args, "--scrub-types", "EMAIL,NAME", "--json")
    assert chosen["pii_rows"] == 0 and chosen["scrub_changes"]["warning"] == ""
    assert set(chosen["pii"]) == {"EMAIL", "NAME"}
    bad = cli(*args, "--scrub-types", "PHONES")
    assert bad.returncode == 1 and "did you mean 'PHONE'" in bad.stderr and bad.stderr.count("\n") == 1
