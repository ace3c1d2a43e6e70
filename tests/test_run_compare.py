"""The run table's headless side: rows, comparability, spec diffs, downsampled curves, delete, export."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.protocol import EventWriter
from slmtui.journal_export import journal_markdown
from slmtui.run_compare import (
    RunActionError,
    build_rows,
    curve,
    delete_run,
    env_differences,
    flatten,
    human_size,
    load_curves,
    load_rows,
    parse_tags,
    runs_token,
    spec_diff,
)
from slmtui.series import Series
from slmtui.store import RunRecord, Store
from tests.run_fixtures import ENV, make_run


def test_rows_carry_settings_metrics_time_and_comparability(home: Path) -> None:
    runs = home / "runs"
    make_run(runs, "20261126-070000-base", rank=8, lr=1e-4, seconds=3725)
    make_run(runs, "20261126-080000-newer", rank=32, env={**ENV, "torch": "2.14.0"}, losses=[3.0, 2.0, 1.5])
    rows = load_rows(Store(home), runs)
    assert [r.id for r in rows] == ["20261126-080000-newer", "20261126-070000-base"]  # newest first
    newer, base = rows
    assert (base.method, base.rank, base.lr, base.batch, base.max_length) == ("lora", 8, 1e-4, "4×2", 1024)
    assert base.final_loss == pytest.approx(1.6) and base.best_val_loss == pytest.approx(1.65)
    assert base.seconds == pytest.approx(3725) and base.data_fingerprint == "f00dfacecafe0123"
    assert newer.comparable and not base.comparable  # the newest run's environment is the reference
    assert base.record is not None and newer.record is not None
    assert env_differences(base.record.fingerprint, newer.record.fingerprint) == ["torch 2.13.0 ≠ 2.14.0"]
    assert Store(home).entries()[0].kind == "data"  # reconciled: the derived data entries exist


def test_a_run_without_an_environment_yet_is_not_flagged() -> None:
    records = [RunRecord(id="b", dir="/x/b", status="running", started=time.time() - 10),
               RunRecord(id="a", dir="/x/a", status="completed", fingerprint={"env": ENV})]
    rows = build_rows(records, {"a": {"method": {"kind": "full", "rank": 16}}})
    assert [r.comparable for r in rows] == [True, True]
    assert rows[0].seconds is not None and rows[0].seconds >= 10  # a live run's time so far
    assert rows[1].rank is None  # full fine-tuning has no rank


def test_spec_diff_lists_only_what_differs() -> None:
    a = {"method": {"kind": "lora", "rank": 8}, "train": {"lr": 1e-4, "seed": 0}, "name": "a"}
    b = {"method": {"kind": "lora", "rank": 32}, "train": {"lr": 1e-4}, "name": "b"}
    assert [(c.key, c.a, c.b) for c in spec_diff(a, b)] == [
        ("method.rank", 8, 32), ("name", "a", "b"), ("train.seed", 0, "—")]
    assert spec_diff(a, a) == []
    assert flatten({"x": {"y": {"z": [1]}}}) == {"x.y.z": [1]}


def test_spec_diff_of_two_run_folders(home: Path) -> None:
    runs = home / "runs"
    make_run(runs, "20261126-070000-a", rank=8)
    make_run(runs, "20261126-070100-b", rank=64, lr=5e-4)
    b, a = load_rows(Store(home), runs)
    keys = {c.key: (c.a, c.b) for c in spec_diff(a.spec, b.spec)}
    assert keys["method.rank"] == (8, 64) and keys["train.lr"] == (2e-4, 5e-4) and keys["name"] == ("a", "b")
    assert "train.micro_batch" not in keys


@pytest.mark.parametrize("n", [0, 1, 7, 800, 100_003])
def test_downsampling_is_bounded_and_keeps_the_shape(n: int) -> None:
    sampler = Series(capacity=200)
    for i in range(n):
        sampler.add(i, float(i) * 2)
    series = curve(sampler)
    assert len(series) <= 200 and (len(series) == n if n <= 200 else len(series) >= 100)
    if n:
        assert series[0][0] >= 0 and series[-1][0] <= n - 1
        assert all(y == pytest.approx(2 * x) for x, y in series)  # means of a line stay on it
        assert [x for x, _ in series] == sorted(x for x, _ in series)


def test_curves_come_from_the_event_file(home: Path) -> None:
    run = make_run(home / "runs", "20261126-070000-a", losses=[3.0, None, 2.0], val=[(2, 2.5)])  # type: ignore[list-item]
    curves = load_curves(run)
    assert curves.train == [(1.0, 3.0), (3.0, 2.0)]  # a null (diverged) loss is skipped
    assert curves.val == [(2.0, 2.5)]
    assert load_curves(home / "nowhere").train == []


def test_system_series_come_from_the_metrics(home: Path) -> None:
    cpu = load_curves(make_run(home / "runs", "20261126-070000-cpu", losses=[3.0] * 10, tokens_per_s=500.0))
    assert cpu.system["tokens_per_s"][:2] == [(1.0, 100.0), (2.0, 200.0)] and cpu.system["tokens_per_s"][-1] == (10.0, 500.0)
    assert cpu.system["memory"][0] == (1.0, pytest.approx(1.51)) and cpu.memory_kind == "process RAM"
    bare = load_curves(make_run(home / "runs", "20261126-071000-bare"))
    assert bare.system == {"tokens_per_s": [], "memory": []} and bare.memory_kind == ""
    gpu = home / "runs" / "20261126-072000-gpu"
    gpu.mkdir()
    with EventWriter(gpu / "events.jsonl", run=gpu.name) as events:
        events.emit("metrics", step=1, loss=2.0, tokens_per_s=9000.0, mem_allocated_gib=7.5, rss_gib=3.0)
    assert load_curves(gpu).system["memory"] == [(1.0, 7.5)] and load_curves(gpu).memory_kind == "GPU allocated"


def test_delete_removes_the_folder_and_the_index_but_keeps_entries(home: Path) -> None:
    runs = home / "runs"
    run = make_run(runs, "20261126-070000-a", payload_bytes=50_000)
    store = Store(home)
    load_rows(store, runs)
    store.add_entry("lr too high", kind="challenge", run=run.name)
    before = len(store.entries())
    token = runs_token(runs)
    assert delete_run(store, run) > 50_000
    assert not run.exists() and store.runs() == [] and len(store.entries()) == before
    assert "lr too high" in [e.text for e in store.entries() if e.run == run.name]
    assert runs_token(runs) != token
    assert load_rows(store, runs) == []


def test_a_running_run_is_not_deleted(home: Path) -> None:
    import json
    import os

    import psutil

    run = make_run(home / "runs", "20261126-070000-live", status="running")
    (run / "engine.pid").write_text(json.dumps({"pid": os.getpid(), "create_time": psutil.Process().create_time()}))
    with pytest.raises(RunActionError, match="still training"):
        delete_run(Store(home), run)
    assert run.exists()


def test_tags_and_sizes_read_well() -> None:
    assert parse_tags("best, lora  r16 best") == ["best", "lora", "r16"]
    assert [human_size(n) for n in (512, 1536, 5 * 2**30)] == ["512 bytes", "1.5 KiB", "5.0 GiB"]


def test_export_names_runs_settings_metrics_and_notes(home: Path) -> None:
    runs = home / "runs"
    make_run(runs, "20261126-070000-a", rank=8)
    make_run(runs, "20261126-070100-b", env={**ENV, "peft": "0.20.0"})
    store = Store(home)
    load_rows(store, runs)
    store.set_run_meta("20261126-070000-a", tags=["baseline"])
    store.add_entry("warmup fixed the spike", kind="aha", run="20261126-070000-a", step=20)
    text = journal_markdown(store)
    section = text.split("### `20261126-070000-a`", 1)[1].split("###", 1)[0]
    assert "'method.rank' = 8" not in section and "method.rank = 8" in section and "train.lr = 0.0002" in section
    assert "final loss 1.6000" in section and "best val loss 1.6500 at step 10" in section
    assert "tags: baseline" in section and "aha at step 20: warmup fixed the spike" in section
    assert "**not comparable**" in section and "torch 2.13.0" in section
    assert "| `20261126-070100-b` | completed |" in text
