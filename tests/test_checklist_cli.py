"""`slmtui checklist`: the answers, verdict and baseline from the shell."""

from __future__ import annotations

from pathlib import Path

from snapshot_apps.checklist_app import seed

from tests.conftest import Cli


def test_an_unanswered_checklist_says_not_yet_and_why(cli: Cli) -> None:
    proc = cli("checklist", check=True)
    assert proc.stdout.splitlines()[:2] == ["Verdict: not yet",
                                            "  - nothing says what drives it: pick at least one reason"]
    assert "Baseline: none yet" in proc.stdout


def test_json_has_the_answers_verdict_and_baseline(cli: Cli, home: Path) -> None:
    seed(home)
    out = cli.json("checklist", "--json")
    assert out["version"] == 1 and out["drivers"]["domain_knowledge"] is True
    assert out["verdict"]["decision"] == "not yet"
    assert out["verdict"]["reasons"] == ["personal data not handled: scrub names, addresses, phones and e-mails"]
    assert out["baseline"] == {"metric": "accuracy", "value": 0.78, "source": "rag",
                               "source_label": "Retrieval-augmented generation", "direction": "higher"}
    text = cli("checklist", check=True).stdout
    assert "Baseline: accuracy 0.78 from retrieval-augmented generation" in text
    assert "  Retrieval-augmented generation: tried, 0.78" in text


def test_a_checklist_from_a_newer_slmtui_is_one_sentence(cli: Cli, home: Path) -> None:
    from slmtui.store import Store

    Store(home).save_checklist({"version": 99})
    proc = cli("checklist", "--json")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == ("slmtui: The checklist was saved by a newer slmtui (version 99); "
                                   "upgrade slmtui to read it.")
    helped = cli("checklist", "--help")
    assert helped.returncode == 0 and "--json" in helped.stdout
