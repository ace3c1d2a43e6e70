"""`slmtui eval`, `slmtui eval --run` and `slmtui evals`, as a user runs them (real engine processes)."""

from __future__ import annotations

import shutil
from pathlib import Path

from slmtui import checklist
from slmtui.evals import results_for_run
from slmtui.store import Store


def _copy_run(trained_run: Path, home: Path) -> Path:
    """The session's trained run, placed in this test's runs folder (spec, split and adapter)."""
    target = home / "runs" / trained_run.name
    shutil.copytree(trained_run, target, ignore=shutil.ignore_patterns("checkpoints"))
    return target


def _seed_checklist(store: Store) -> None:
    """A checklist whose success metric is perplexity, with prompt engineering scored at 400."""
    cl = checklist.load(store)
    cl.metrics["perplexity"].target = 50.0
    cl.metrics["perplexity"].direction = "lower"
    cl.baseline_metric = "perplexity"
    cl.alternatives["prompt_engineering"].tried = True
    cl.alternatives["prompt_engineering"].score = 400.0
    checklist.save(store, cl)


def test_a_runs_adapter_is_ranked_above_its_base(cli, home: Path, trained_run: Path) -> None:
    run_dir = _copy_run(trained_run, home)
    store = Store(home)
    _seed_checklist(store)
    out = cli.json("eval", "--run", "last", "--subset", "0", "--threads", "1", "--json")
    tuned, base = out["results"]
    assert (tuned["role"], base["role"]) == ("fine-tuned", "base")
    assert tuned["split"] == base["split"] == "test"
    assert tuned["details"]["lines"] == base["details"]["lines"]  # the same rows for both
    assert tuned["details"]["kind"] == "adapter" and base["details"]["kind"] == "model"
    assert tuned["metrics"]["loss"] < base["metrics"]["loss"]
    gain = out["gain"]
    assert gain["metric"] == "perplexity" and gain["delta"] > 0
    assert gain["over_baseline"] == 400.0 - tuned["metrics"]["perplexity"]
    assert gain["deltas"]["loss"] == base["metrics"]["loss"] - tuned["metrics"]["loss"]

    stored = results_for_run(run_dir.name, store)
    assert stored is not None and stored.fine_tuned.details["gain"] == gain
    export = home / "journal.md"
    cli("journal", "export", "--md", str(export), check=True)
    text = export.read_text()
    assert "## Base against fine-tuned" in text and f"`{run_dir.name}`" in text
    assert "+" in text.split("## Base against fine-tuned")[1]


def test_a_local_model_in_a_table_then_listed(cli, home: Path, ticket_model: Path, tickets: Path) -> None:
    proc = cli("eval", "--model", str(ticket_model), "--data", str(tickets), "--subset", "8", "--threads", "1",
               check=True, COLUMNS="200")
    assert "Quick evaluation" in proc.stdout and ticket_model.name in proc.stdout
    [listed] = cli.json("evals", "--json")["results"]
    assert listed["model"] == str(ticket_model) and listed["examples"] == 8
    assert listed["metrics"]["loss"] > 0 and listed["metrics"]["tokens_per_s"] > 0


def test_eval_needs_a_model_or_a_run(cli) -> None:
    proc = cli("eval", "--data", "x.jsonl")
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("slmtui: Name at least one --model")
    proc = cli("eval", "--run", "nope")
    assert proc.returncode == 1 and "No run matches 'nope'" in proc.stderr


def test_a_failing_model_is_reported_and_the_others_still_run(cli, home: Path) -> None:
    proc = cli("eval", "--model", "/no/such/model", "--data", "x.jsonl", "--json")
    assert proc.returncode == 1
    assert "/no/such/model: --model '/no/such/model' is not a folder" in proc.stderr
    assert '"results": []' in proc.stdout
