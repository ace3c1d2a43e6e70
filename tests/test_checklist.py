"""The decision checklist service: answers by path, verdict rules, baseline, persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slmtui import checklist as ck
from slmtui.checklist import Checklist, ChecklistError
from slmtui.store import Store

READY: dict[str, Any] = {
    "drivers.cost_latency": True,
    "metrics.accuracy.target": 0.9,
    "alternatives.prompt_engineering.tried": True,
    "alternatives.prompt_engineering.score": 0.71,
    "data.route": "own",
    "data.steps.personal_data": True,
}


def make(answers: dict[str, Any], base: dict[str, Any] | None = None) -> Checklist:
    cl = Checklist()
    for path, value in {**(READY if base is None else base), **answers}.items():
        cl.set(path, value)
    return cl


def test_a_fresh_checklist_says_not_yet_for_every_missing_answer() -> None:
    v = ck.verdict(Checklist())
    assert v.decision == "not yet" and v.computed == "not yet" and not v.overridden
    assert [r.split(":")[0] for r in v.reasons] == [
        "nothing says what drives it",
        "no success metric has a target",
        "no alternative tried yet",
        "no data route chosen",
        "personal data not handled",
    ]
    assert ck.baseline(Checklist()) is None


def test_ready_answers_say_go_with_prompt_engineering_as_baseline() -> None:
    v = ck.verdict(make({}))
    assert (v.decision, v.reasons) == ("go", ())
    assert v.headline() == "go"
    assert ck.baseline(make({})) == {"metric": "accuracy", "value": 0.71, "source": "prompt_engineering",
                                     "source_label": "Prompt engineering", "direction": "higher"}


@pytest.mark.parametrize(("answers", "reason"), [
    ({"drivers.cost_latency": False}, "nothing says what drives it: pick at least one reason"),
    ({"metrics.accuracy.target": None}, "no success metric has a target"),
    ({"alternatives.prompt_engineering.tried": False}, "no alternative tried yet: start with prompt engineering"),
    ({"alternatives.prompt_engineering.tried": False, "alternatives.memory.tried": True,
      "alternatives.memory.score": 0.5}, "prompt engineering not tried: the cheapest alternative"),
    ({"drivers.domain_knowledge": True},
     "retrieval-augmented generation not tried, yet domain knowledge drives this"),
    ({"drivers.hallucinations": True},
     "retrieval-augmented generation not tried, yet fewer hallucinations drives this"),
    ({"alternatives.prompt_engineering.score": None},
     "no baseline: score the alternatives you tried on accuracy"),
    ({"alternatives.prompt_engineering.score": 0.9},
     "prompt engineering already meets the accuracy target (0.9 ≥ 0.9)"),
    ({"alternatives.rag.tried": True, "alternatives.rag.score": 0.95},
     "retrieval-augmented generation already meets the accuracy target (0.95 ≥ 0.9)"),
    ({"data.route": ""}, "no data route chosen: own data or an existing dataset"),
    ({"data.steps.personal_data": False},
     "personal data not handled: scrub names, addresses, phones and e-mails"),
])
def test_each_rule_blocks_alone(answers: dict[str, Any], reason: str) -> None:
    v = ck.verdict(make(answers))
    assert v.reasons == (reason,)
    assert v.decision == "not yet"
    assert v.headline() == f"not yet: {reason}"


@pytest.mark.parametrize(("answers", "best"), [
    # higher is better: the largest score wins; ties go to the first alternative in the table
    ({"alternatives.rag.tried": True, "alternatives.rag.score": 0.8}, ("rag", 0.8)),
    ({"alternatives.rag.tried": True, "alternatives.rag.score": 0.71}, ("prompt_engineering", 0.71)),
    # an untried alternative's score does not count
    ({"alternatives.rag.score": 0.99}, ("prompt_engineering", 0.71)),
    # lower is better (perplexity): the smallest wins, and meeting the target means at or below it
    ({"metrics.accuracy.target": None, "metrics.perplexity.target": 8.0,
      "alternatives.prompt_engineering.score": 12.0, "alternatives.reasoning.tried": True,
      "alternatives.reasoning.score": 9.5}, ("reasoning", 9.5)),
    # the baseline metric can be chosen instead of the first with a target
    ({"metrics.benchmark.target": 70.0, "baseline_metric": "benchmark",
      "alternatives.prompt_engineering.score": 55.0}, ("prompt_engineering", 55.0)),
])
def test_baseline_is_the_best_alternative_in_the_metrics_direction(
        answers: dict[str, Any], best: tuple[str, float]) -> None:
    cl = make(answers)
    base = ck.baseline(cl)
    assert base is not None and (base["source"], base["value"]) == best
    assert ck.verdict(cl).decision == "go"


def test_perplexity_target_met_from_below() -> None:
    cl = make({"metrics.accuracy.target": None, "metrics.perplexity.target": 8.0,
               "alternatives.prompt_engineering.score": 7.5})
    assert ck.verdict(cl).reasons == ("prompt engineering already meets the perplexity target (7.5 ≤ 8)",)


@pytest.mark.parametrize(("direction", "value", "expected"), [
    ("higher", 0.8, 0.09), ("higher", 0.6, -0.11), ("lower", 0.6, 0.11), ("lower", 0.8, -0.09)])
def test_improvement_over_the_baseline(direction: str, value: float, expected: float) -> None:
    base = ck.Baseline(metric="m", value=0.71, source="x", source_label="X", direction=direction)
    assert ck.improvement(base, value) == pytest.approx(expected)


@pytest.mark.parametrize(("override", "decision", "overridden", "headline"), [
    ("", "not yet", False, "not yet: personal data not handled: scrub names, addresses, phones and e-mails"),
    ("go", "go", True, "go (your call; computed: not yet)"),
    ("not yet", "not yet", False,
     "not yet: personal data not handled: scrub names, addresses, phones and e-mails"),
])
def test_the_teams_override_wins_and_is_marked(override: str, decision: str, overridden: bool,
                                               headline: str) -> None:
    cl = make({"data.steps.personal_data": False, "decision.override": override,
               "decision.note": "legal cleared the data"})
    v = ck.verdict(cl)
    assert (v.decision, v.computed, v.overridden, v.headline()) == (decision, "not yet", overridden, headline)
    assert v.note == "legal cleared the data"


def test_advice_never_blocks() -> None:
    v = ck.verdict(make({}))
    assert v.decision == "go"
    assert "data steps not done: preprocessing, train/val/test splits, context window fit, " \
           "reproducible pipeline" in v.advice
    assert "name the platform and GPU: start with the smallest GPU that fits" in v.advice
    done = make({"data.steps.preprocessing": True, "data.steps.splits": True, "data.steps.context_window": True,
                 "data.steps.pipeline": True, "data.relevance": "real tickets", "data.quality": "reviewed",
                 "compute.platform": "on-prem", "compute.gpu": "1x L4", "tracking.tool": "slmtui"})
    assert ck.verdict(done).advice == ()


@pytest.mark.parametrize(("path", "value", "message"), [
    ("drivers.nope", True, "There is no answer 'drivers.nope'"),
    ("data.steps", True, "There is no answer 'data.steps'"),
    ("updated", 1.0, "There is no answer 'updated'"),
    ("alternatives.rag.score", "high", "alternatives.rag.score must be a number or empty"),
    ("alternatives.rag.score", True, "alternatives.rag.score must be a number"),
    ("alternatives.rag.tried", 1, "alternatives.rag.tried must be true or false"),
    ("data.route", "scraped", "data.route must be one of '', 'own', 'existing'"),
    ("metrics.accuracy.direction", "up", "metrics.accuracy.direction must be one of 'higher', 'lower'"),
    ("tracking.tool", "excel", "tracking.tool must be one of"),
    ("decision.override", "maybe", "decision.override must be one of"),
])
def test_bad_answers_are_refused_in_one_sentence(path: str, value: Any, message: str) -> None:
    with pytest.raises(ChecklistError, match="^" + message.replace("(", r"\(")):
        Checklist().set(path, value)


@pytest.mark.parametrize(("text", "number"), [
    ("", None), ("  ", None), ("0.82", 0.82), ("82%", 0.82), (" 12 ", 12.0), ("1_000", 1000.0), ("-3", -3.0)])
def test_parse_number(text: str, number: float | None) -> None:
    assert ck.parse_number(text) == number


@pytest.mark.parametrize("text", ["high", "0.8.1", "nan", "inf", "%"])
def test_parse_number_refuses_what_is_not_a_finite_number(text: str) -> None:
    with pytest.raises(ChecklistError):
        ck.parse_number(text)


def test_round_trip_through_the_store(home: Path) -> None:
    store = Store(home)
    cl = make({"drivers_note": "support tickets", "data.source": "tickets.jsonl", "tracking.tool": "wandb"})
    saved = ck.save(store, cl)
    raw = store.checklist()
    assert raw["version"] == ck.CHECKLIST_VERSION and raw == json.loads(json.dumps(saved))
    assert raw["verdict"]["decision"] == "go" and raw["baseline"]["source"] == "prompt_engineering"
    again = ck.load(store)
    assert again == cl and again.updated is not None


def test_a_checklist_from_a_newer_slmtui_is_refused() -> None:
    with pytest.raises(ChecklistError, match="newer slmtui"):
        ck.from_dict({"version": ck.CHECKLIST_VERSION + 1})


def test_stored_junk_falls_back_to_defaults() -> None:
    cl = ck.from_dict({"version": 1, "drivers": ["rag"], "alternatives": {"rag": {"tried": "yes", "score": 3},
                       "bogus": {}}, "data": {"route": "scraped", "steps": {"splits": True}},
                       "metrics": {"perplexity": {"direction": "sideways", "target": 9}}, "updated": "x"})
    assert cl.alternatives["rag"] == ck.AlternativeAnswer(tried=False, score=3.0)
    assert cl.data.route == "" and cl.data.steps["splits"] is True
    assert cl.metrics["perplexity"] == ck.MetricAnswer(target=9.0, direction="lower")
    assert cl.drivers == Checklist().drivers and cl.updated is None


_json = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=12)
_keys = st.sampled_from(["drivers", "alternatives", "metrics", "data", "compute", "tracking", "decision",
                         "baseline_metric", "drivers_note", "version"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=6))
def test_any_stored_value_loads_and_round_trips(data: dict[str, Any]) -> None:
    try:
        cl = ck.from_dict(data)
    except ChecklistError:
        assert isinstance(data.get("version"), int) and data["version"] > ck.CHECKLIST_VERSION
        return
    ck.verdict(cl)
    assert ck.from_dict(json.loads(json.dumps(ck.to_dict(cl)))) == cl
