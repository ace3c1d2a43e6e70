"""The monitor's headless side: downsampled series, folding events, ETA, smoothing, the feed, the chart's rows."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

import psutil
import pytest

from engine.protocol import EventWriter
from screens.widgets.braille import AXIS_WIDTH
from screens.widgets.loss_chart import chart_rows
from slmtui.monitor_data import RunHistory, smooth
from slmtui.monitor_feed import MonitorFeed
from slmtui.runs import CRASHED_MESSAGE
from slmtui.series import Point, Series


def test_series_stays_bounded_and_keeps_extremes_and_mean() -> None:
    series = Series(capacity=64)
    values = [float((i * 7919) % 1000) for i in range(100_000)]
    for step, value in enumerate(values, 1):
        series.add(step, value)
    points = series.points()
    assert 32 <= len(points) <= 64 and series.count == 100_000
    assert points[0].step == 1 and points[-1].last_step == 100_000
    assert min(p.low for p in points) == min(values) and max(p.high for p in points) == max(values)
    weighted = sum(p.mean * (p.last_step - p.step + 1) for p in points) / 100_000
    assert weighted == pytest.approx(sum(values) / len(values))
    assert all(a.last_step < b.step for a, b in itertools.pairwise(points))  # no overlap, in order
    assert points[-1].last == values[-1]


def test_series_skips_non_finite_values_and_small_series_are_exact() -> None:
    series = Series(capacity=8)
    for step, value in enumerate([1.0, float("nan"), 3.0, float("inf")], 1):
        series.add(step, value)
    assert [(p.step, p.mean) for p in series.points()] == [(1, 1.0), (3, 3.0)]
    assert series.tail(1) == [3.0]


def _metrics(step: int, loss: float, t: float) -> dict[str, object]:
    return {"type": "metrics", "seq": step, "t": t, "run": "r", "step": step, "loss": loss, "lr": 1e-3,
            "grad_norm": 0.5, "tokens_per_s": 1000.0}


def test_history_folds_events_and_estimates_eta_from_steps_per_second(tmp_path: Path) -> None:
    history = RunHistory("r", tmp_path)
    history.fold([{"type": "started", "seq": 0, "t": 100.0, "total_steps": 100, "precision": "fp32",
                   "device": "cpu", "env": {"big": "x"}}])
    history.fold([_metrics(step, 5.0 - step / 100, 100.0 + step * 0.5) for step in range(1, 41)])
    history.fold([{"type": "eval", "seq": 50, "t": 121.0, "step": 40, "val_loss": 4.7, "samples": []}])
    view = history.view()
    assert (view.step, view.total_steps, len(view.loss), view.val_loss[0].mean) == (40, 100, 40, 4.7)
    assert view.started is not None and "env" not in view.started
    assert view.eta is not None and view.eta.source == "monitor"
    assert view.eta.seconds == pytest.approx(60 * 0.5) and view.eta.low <= view.eta.seconds <= view.eta.high
    history.fold([{**_metrics(41, 4.5, 121.0), "eta_s": 12.0, "eta_low_s": 10.0, "eta_high_s": 15.0}])
    eta = history.view().eta
    assert eta is not None and (eta.seconds, eta.low, eta.high, eta.source) == (12.0, 10.0, 15.0, "engine")
    history.fold([{"type": "finished", "seq": 99, "t": 130.0, "status": "completed",
                   "summary": {"message": "Completed."}}])
    assert history.view().status == "completed" and history.view().message == "Completed."


def test_summary_is_read_first_and_never_overrides_events(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"status": "running", "step": 7, "total_steps": 10,
                                                       "latest": {"loss": 2.0}, "eta_s": 3.0}))
    history = RunHistory("r", tmp_path)
    history.read_summary()
    view = history.view()
    assert (view.step, view.total_steps, view.latest["loss"]) == (7, 10, 2.0)
    assert view.eta is not None and view.eta.seconds == 3.0
    history.fold([_metrics(8, 1.5, 1.0)])
    history.read_summary()
    assert history.view().step == 8


def test_smoothing_is_a_debiased_moving_average() -> None:
    assert smooth([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    assert smooth([4.0, 4.0, 4.0], 0.9) == pytest.approx([4.0, 4.0, 4.0])  # debiased: no ramp from zero
    out = smooth([0.0, 10.0], 0.5)
    assert out[0] == 0.0 and 0 < out[1] < 10


def _run_folder(root: Path, name: str, pid: int, create_time: float) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text('name = "t"\n')
    (run_dir / "engine.pid").write_text(json.dumps({"pid": pid, "create_time": create_time}))
    return run_dir


def test_feed_reads_history_then_follows_then_sees_a_crash(tmp_path: Path) -> None:
    me = psutil.Process(os.getpid())
    run_dir = _run_folder(tmp_path, "20261126-000000-feed", me.pid, me.create_time())
    updates: list[str] = []
    with EventWriter(run_dir / "events.jsonl", run_dir.name) as writer:
        for step in range(1, 201):
            writer.emit("metrics", step=step, loss=3.0 - step / 200)
        feed = MonitorFeed(on_update=updates.append, liveness_s=0.0)
        history = feed.watch(run_dir)
        assert feed.watch(run_dir) is history and feed.watched() == [run_dir.name]
        while feed.poll():
            pass
        feed.poll()
        view = history.view()
        assert view.loaded and view.step == 200 and len(view.loss) == 200 and view.status == "running"
        writer.emit("metrics", step=201, loss=1.0)
        with open(run_dir / "events.jsonl", "a") as fh:  # a torn line (a writer dying mid-line): held back
            fh.write('{"v":1,"type":"metrics","seq":999,"step":202')
        feed.poll()
        assert history.view().step == 201
    assert updates and set(updates) == {run_dir.name}
    (run_dir / "engine.pid").write_text(json.dumps({"pid": 2**22 + 12345, "create_time": time.time()}))
    feed.poll()
    assert history.view().status == "crashed" and history.view().message == CRASHED_MESSAGE


def test_chart_rows_draw_train_val_and_markers_and_switch_to_log() -> None:
    train = tuple(Point(s, s, 10.0 / s, 10.0 / s, 10.0 / s, 10.0 / s) for s in range(1, 101))
    val = (Point(50, 50, 0.3, 0.3, 0.3, 0.3),)
    rows = chart_rows(train, val, [75], 60, 12, smoothing=0.0, x_max=100)
    assert len(rows) == 12 and all(sum(len(text) for text, _ in row) == 60 for row in rows)
    roles = {role for row in rows for _, role in row}
    assert {"axis", "train", "val", "marker"} <= roles and "raw" not in roles
    assert "100" in "".join(text for text, _ in rows[-1])
    marker_col = AXIS_WIDTH + round(75 / 100 * (2 * 52 - 1)) // 2
    assert any(row[1 + marker_col - AXIS_WIDTH] == ("┊", "marker") for row in rows)
    top_linear = rows[0][0][0]
    log_rows = chart_rows(train, val, [], 60, 12, log_scale=True, smoothing=0.6)
    assert "raw" in {role for row in log_rows for _, role in row}
    assert log_rows[0][0][0] != top_linear  # the labels are powers of ten now
    empty = chart_rows((), (), [], 40, 5)
    assert "waiting for the first step" in "".join(text for text, _ in empty[0]) and len(empty) == 5


def test_memory_text_shows_torch_figures_and_nvml_headroom(tmp_path: Path) -> None:
    from screens.widgets.run_panels import memory_text

    history = RunHistory("r", tmp_path)
    history.fold([{"type": "started", "seq": 0, "t": 1.0, "device": "cuda:1"},
                   {**_metrics(1, 2.0, 2.0), "mem_allocated_gib": 30.25, "mem_reserved_gib": 34.5,
                    "mem_peak_gib": 36.0}])
    text = str(memory_text(history.view(), {"index": 1, "used_gib": 60.0, "total_gib": 80.0}))
    assert "30.25 alloc · 34.50 reserved · 36.00 peak GiB" in text
    assert "GPU 1" in text and "60.0/80 GiB · headroom 20.0 GiB" in text
    empty = str(memory_text(RunHistory("c", tmp_path).view(), {"error": "No NVIDIA GPU found."}))
    assert "not reported yet" in empty and "no GPU: No NVIDIA GPU found." in empty
    cpu_run = RunHistory("cpu", tmp_path)
    cpu_run.fold([{"type": "started", "seq": 0, "t": 1.0, "device": "cpu"},
                  {**_metrics(1, 2.0, 2.0), "mem_allocated_gib": None, "rss_gib": 1.234, "rss_peak_gib": 1.5}])
    cpu = str(memory_text(cpu_run.view(), {"error": "No NVIDIA GPU found."}))
    assert "engine RAM 1.23 GiB · peak 1.50 GiB" in cpu and "torch" not in cpu


def test_the_figures_say_what_was_trained_in_words(tmp_path: Path) -> None:
    from screens.widgets.run_panels import memory_text, stats_text

    history = RunHistory("r", tmp_path)
    history.fold([{"type": "started", "seq": 0, "t": 1.0, "device": "cpu", "precision": "fp32",
                   "params_trainable": 65536, "params_total": 623232}])
    assert "fp32 on the CPU; trains 10.5% of 623,232 weights" in str(stats_text(history.view()))
    assert "pad" not in str(stats_text(history.view()))  # a run that says nothing of its batches
    assert "×" not in str(stats_text(history.view()))  # one process: nothing more to say
    for strategy in ("fsdp", "ddp"):
        several = RunHistory(strategy, tmp_path)
        several.fold([{"type": "started", "seq": 0, "t": 1.0, "device": "cpu", "precision": "fp32", "devices": 2,
                       "strategy": strategy, "params_trainable": 65536, "params_total": 623232},
                      {**_metrics(1, 2.0, 2.0), "rss_gib": 1.0, "rss_peak_gib": 1.5}])
        assert f"fp32 on 2×CPU {strategy.upper()}; trains 10.5% of 623,232 weights" in str(stats_text(several.view()))
        assert "rank 0 RAM 1.00 GiB · peak 1.50 GiB" in str(memory_text(several.view(), None))


def test_the_figures_say_how_batches_are_made(tmp_path: Path) -> None:
    from screens.widgets.run_panels import packing_words, stats_text

    packed = {"on": True, "micro_batch_tokens": 2048, "tokens": 862, "padded_tokens": 1000, "ratio": 0.862}
    assert packing_words(packed) == "packed"
    assert packing_words({**packed, "on": False, "micro_batch_tokens": None}) == "14% padding"
    assert packing_words({**packed, "on": False, "ratio": 1.0}) == ""  # nothing wasted: nothing to say
    assert packing_words(None) == packing_words({}) == ""
    history = RunHistory("r", tmp_path)
    history.fold([{"type": "started", "seq": 0, "t": 1.0, "device": "cpu", "packing": packed}, _metrics(1, 2.0, 2.0)])
    assert " tok/s (packed)  " in str(stats_text(history.view()))
