"""The light services: eval results in the store, ranking and gain, the shortlist, the playground's requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.protocol import GIB
from slmtui import evals, playground, shortlist
from slmtui.gpu import GpuSnapshot, Inventory
from slmtui.store import EvalResult, Store, StoreError
from slmtui.target_gpu import set_target_gpu


def _result(store: Store, model: str, run: str | None = None, role: str | None = None, **metrics: Any) -> EvalResult:
    return store.add_eval_result({"id": f"e-{model}", "model": model, "data": "d.jsonl", "split": "test",
                                  "examples": 10, "samples": [], **metrics}, run=run, role=role)


def test_eval_results_round_trip(home: Path) -> None:
    store = Store(home)
    a = _result(store, "m1", loss=1.5, accuracy=0.5, tokens_per_s=100.0)
    b = _result(store, "m2", run="r1", role="base", loss=2.0)
    assert a.metrics["loss"] == 1.5 and a.metric("accuracy") == 0.5 and a.metric("perplexity") is None
    assert "samples" in a.details and "loss" not in a.details
    assert [r.model for r in store.eval_results()] == ["m1", "m2"]
    assert store.eval_results(run="r1") == [b]
    assert store.eval_results(model="m1") == [a]
    updated = store.update_eval_details(b.id, gain={"delta": 1})
    assert updated.details["gain"] == {"delta": 1} and store.eval_results(run="r1")[0].details["gain"] == {"delta": 1}
    store.delete_eval_result(a.id)
    assert [r.model for r in store.eval_results()] == ["m2"]
    with pytest.raises(StoreError, match="role"):
        _result(store, "m3", role="teacher")
    with pytest.raises(StoreError, match="no evaluation result 99"):
        store.delete_eval_result(99)


def test_rank_prefers_the_checklist_metric_then_accuracy_then_loss(home: Path) -> None:
    store = Store(home)
    good = _result(store, "good", loss=1.0, accuracy=0.2, perplexity=2.7)
    bad = _result(store, "bad", loss=2.0, accuracy=0.9, perplexity=7.4)
    assert evals.rank([good, bad])[0] is bad  # accuracy tells them apart
    assert evals.rank([good, bad], preferred="perplexity")[0] is good
    tied_a = _result(store, "a", loss=3.0, accuracy=0.0)
    tied_b = _result(store, "b", loss=1.0, accuracy=0.0)
    assert evals.primary_metric([tied_a, tied_b]) == "loss"
    assert [r.model for r in evals.rank([tied_a, tied_b])] == ["b", "a"]


def test_gain_over_the_base_and_over_the_baseline(home: Path) -> None:
    store = Store(home)
    tuned = _result(store, "run", run="r", role="fine-tuned", loss=1.0, accuracy=0.9, perplexity=2.7)
    base = _result(store, "base", run="r", role="base", loss=3.0, accuracy=0.3, perplexity=20.1)
    percent = {"metric": "accuracy", "value": 80.0, "source": "rag", "source_label": "Retrieval-augmented generation",
               "direction": "higher"}
    found = evals.gain(tuned, base, percent)
    assert found["metric"] == "accuracy" and found["delta"] == pytest.approx(0.6)
    assert found["deltas"]["loss"] == 2.0 and found["deltas"]["perplexity"] == pytest.approx(17.4)
    assert found["over_baseline"] == pytest.approx(10.0)  # 90 % against 80 %
    judged = dict(percent, metric="coherence")
    assert evals.gain(tuned, base, judged)["over_baseline"] is None
    text = evals.describe_gain(found)
    assert text.startswith("accuracy +0.600 (0.900 vs 0.300)") and "retrieval-augmented generation" in text
    store.update_eval_details(tuned.id, gain=found)
    assert evals.results_for_run("r", store).gain == found  # type: ignore[union-attr]
    assert evals.run_gains(store) == {"r": found}
    table = evals.gains_markdown(store)
    assert "| `r` | accuracy | 0.9 | 0.3 | +0.6 | +10 (Retrieval-augmented generation) |" in table
    assert evals.results_for_run("other", store) is None


def test_checklist_metrics_follow_the_targets(home: Path) -> None:
    from slmtui import checklist

    store = Store(home)
    assert evals.checklist_metrics(store) == ("perplexity", "accuracy")
    cl = checklist.load(store)
    cl.metrics["accuracy"].target = 0.9
    cl.metrics["coherence"].target = 4.0
    checklist.save(store, cl)
    assert evals.checklist_metrics(store) == ("accuracy",)


def test_eval_request_argv() -> None:
    request = evals.EvalRequest("m", data="d", subset=5, options=(("shape", "chat"),), threads=1, base=True)
    argv = request.argv("id1")
    assert argv[:2] == ["--model", "m"] and argv[argv.index("--data"):argv.index("--data") + 2] == ["--data", "d"]
    assert "--base" in argv and argv[-2:] == ["--shape", "chat"] and "id1" in argv


def test_shortlist_add_remove_and_describe(home: Path, tiny_model_dir: Path) -> None:
    store = Store(home)
    assert shortlist.add(store, "qwen2.5-0.5b") == "Qwen/Qwen2.5-0.5B"
    assert shortlist.add(store, "Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"  # no duplicate
    shortlist.add(store, str(tiny_model_dir))
    shortlist.add(store, "someone/unknown-model")
    assert shortlist.models(store) == ["Qwen/Qwen2.5-0.5B", str(tiny_model_dir), "someone/unknown-model"]
    shortlist.remove(store, "someone/unknown-model")
    assert len(shortlist.models(store)) == 2
    for bad in ("", "/no/such/folder", "not a model"):
        with pytest.raises(shortlist.ShortlistError):
            shortlist.add(store, bad)
    catalog = shortlist.describe("Qwen/Qwen2.5-0.5B")
    assert catalog.source == "catalog" and catalog.license == "apache-2.0" and catalog.gated is False
    local = shortlist.describe(str(tiny_model_dir))
    assert local.source == "folder" and local.params and 50_000 < local.params < 500_000
    assert local.context_length == 512
    assert shortlist.describe("someone/unknown-model").shape is None


def test_the_verdict_is_against_this_gpu_or_a_catalog_gpu(home: Path) -> None:
    store = Store(home)
    none = Inventory(time=0.0, error="NVML cannot start: no NVIDIA driver")
    target = shortlist.gpu_target(store, none)
    assert (target.name, target.here) == ("RTX-4090", False) and "driver" in target.reason
    store.set_setting("shortlist.gpu", "A100-40GB")  # the Shortlist's own setting before there was one target
    assert shortlist.gpu_target(store, none).name == "A100-40GB"
    set_target_gpu(store, "H100-80GB")  # chosen on the GPUs screen or in New run: the Shortlist follows
    assert shortlist.gpu_target(store, none).capacity_gib == pytest.approx(79.6)
    here = Inventory(time=0.0, gpus=(GpuSnapshot(index=0, name="NVIDIA L4", memory_free=int(10 * GIB)),))
    target = shortlist.gpu_target(store, here)
    assert target.here and target.capacity_gib == pytest.approx(10.0)
    small, big = shortlist.describe("qwen2.5-0.5b"), shortlist.describe("qwen2.5-14b")
    assert shortlist.fit(small, "lora", target).verdict == "fits"
    assert shortlist.fit(big, "full", target).verdict == "exceeds"
    assert shortlist.fit(shortlist.describe("someone/x"), "lora", target).verdict == "unknown"


def test_rows_show_each_models_latest_result_on_the_chosen_data(home: Path) -> None:
    store = Store(home)
    shortlist.add(store, "qwen2.5-0.5b")
    _result(store, "Qwen/Qwen2.5-0.5B", loss=3.0)
    newer = _result(store, "Qwen/Qwen2.5-0.5B", loss=2.0)
    _result(store, "Qwen/Qwen2.5-0.5B", run="r", role="base", loss=9.0)  # a run comparison: not shown here
    target = shortlist.GpuTarget("T4", 15.0, False)
    (row,) = shortlist.rows(store, target, data="d.jsonl")
    assert row.result == newer and row.fit.verdict == "fits"
    assert shortlist.rows(store, target, data="other.jsonl")[0].result is None


def test_playground_requests() -> None:
    pair = playground.run_pair("/runs/r1", "hello", max_new_tokens=8)
    assert pair.left.base and not pair.right.base
    assert "--base" in pair.left.argv() and "--base" not in pair.right.argv()
    assert pair.left.label == "base of r1" and pair.right.label == "r1 (fine-tuned)"
    assert pair.left.argv()[pair.left.argv().index("--prompt") + 1] == "-"  # the prompt goes over stdin
    with pytest.raises(playground.GenerationFailed, match="empty"):
        playground.stream_generation(playground.GenerationRequest("m", "   "), lambda line: None)
