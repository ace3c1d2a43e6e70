"""The Data screen's service and the one data-check request: the request from the fields, the engine's arguments,
the one error and timeout, saved settings, recent datasets, and the report's parts as bars."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmtui.data_report import (
    RECENT_LIMIT,
    SETTINGS_KEY,
    count_bars,
    default_dataset,
    length_bars,
    load_options,
    recent_paths,
    remember_path,
    request_from_fields,
    save_options,
    summary_lines,
)
from slmtui.data_service import (
    DATA_CHECK_TIMEOUT_S,
    DataCheckFailed,
    DataRequest,
    parse_map_text,
    run_data_check,
)
from slmtui.store import Store

ENGINE_DEFAULTS = ["--shape", "auto", "--format", "auto", "--split", "train", "--scrub", "auto", "--template", "auto"]


def test_options_from_the_fields_and_the_engine_arguments() -> None:
    opts = request_from_fields(" d.jsonl ", "tok", "256", "drop", "prompt=question, response=answer")
    assert opts == DataRequest("d.jsonl", "tok", 256, "drop", (("prompt", "question"), ("response", "answer")))
    assert opts.argv() == ["d.jsonl", "--max-length", "256", "--policy", "drop", *ENGINE_DEFAULTS, "--tokenizer", "tok",
                           "--map", "prompt=question,response=answer"]
    assert DataRequest("d").argv() == ["d", "--max-length", "1024", "--policy", "truncate", *ENGINE_DEFAULTS]


def test_one_error_for_a_failed_or_stuck_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from slmtui import data_service
    from slmtui.engine_proc import EngineError

    timeouts: list[float] = []

    def stuck(*args: str, timeout: float, **_: object) -> None:
        timeouts.append(timeout)
        raise subprocess.TimeoutExpired(list(args), timeout)

    monkeypatch.setattr(data_service, "run_engine_json", stuck)
    with pytest.raises(DataCheckFailed, match="took over 600 s"):
        run_data_check(DataRequest("d"))
    assert timeouts == [DATA_CHECK_TIMEOUT_S]

    def unreadable(*args: str, **_: object) -> None:
        raise EngineError("data.path 'd' does not exist.")

    monkeypatch.setattr(data_service, "run_engine_json", unreadable)
    with pytest.raises(DataCheckFailed, match="does not exist"):
        run_data_check(DataRequest("d"))


@pytest.mark.parametrize(("fields", "says"), [
    (("", "", "10", "truncate", ""), "path of a dataset"),
    (("d", "", "ten", "truncate", ""), "whole number"),
    (("d", "", "0", "truncate", ""), "at least 1"),
    (("d", "", "10", "squash", ""), "truncate, drop, error"),
    (("d", "", "10", "truncate", "prompt"), "FIELD=COLUMN"),
    (("d", "", "10", "truncate", "question=q"), "not a field to map"),
])
def test_bad_fields_are_one_sentence(fields: tuple[str, str, str, str, str], says: str) -> None:
    with pytest.raises(DataCheckFailed, match=says):
        request_from_fields(*fields)
    assert parse_map_text(" , ") == ()


def test_settings_round_trip_and_defaults(home: Path) -> None:
    store = Store(home)
    first = load_options(store)
    assert first.path == default_dataset(home) and first.path.endswith("tickets.jsonl") and Path(first.path).is_file()
    opts = DataRequest("mine.jsonl", "tok", 512, "error", (("prompt", "q"),))
    save_options(store, opts)
    assert load_options(store) == opts
    assert store.setting(SETTINGS_KEY) == {"path": "mine.jsonl", "map": {"prompt": "q"}, "max_length": 512,
                                           "overlength": "error", "tokenizer": "tok"}
    store.set_setting(SETTINGS_KEY, {"path": 3, "max_length": -1, "overlength": "x", "map": "nope"})
    assert load_options(store) == DataRequest("3", "", 1024, "truncate", ())


def test_recent_paths_newest_first_without_repeats(home: Path) -> None:
    store = Store(home)
    assert recent_paths(store) == []
    for i in range(RECENT_LIMIT + 2):
        remember_path(store, f"d{i}.jsonl")
    assert remember_path(store, "d3.jsonl")[:2] == ["d3.jsonl", f"d{RECENT_LIMIT + 1}.jsonl"]
    assert len(recent_paths(store)) == RECENT_LIMIT and recent_paths(store).count("d3.jsonl") == 1


def test_report_parts_as_bars_and_lines() -> None:
    report = {"max_length": 20, "length_histogram": [
        {"from": 0, "to": 10, "count": 0}, {"from": 10, "to": 20, "count": 5}, {"from": 20, "to": 30, "count": 0},
        {"from": 30, "to": 40, "count": 2}, {"from": 40, "to": 50, "count": 0}],
        "pii": {"PHONE": 2, "EMAIL": 7, "IP": 0}, "rows": 9, "token_lengths": {"p50": 12}}
    assert [(b.label, b.count, b.over) for b in length_bars(report)] == [
        ("10–20", 5, False), ("20–30", 0, True), ("30–40", 2, True)]
    assert [(b.label, b.count) for b in count_bars(report["pii"])] == [("EMAIL", 7), ("PHONE", 2)]
    assert length_bars({}) == [] and count_bars(None) == []
    lines = dict(summary_lines(report))
    assert lines["rows"].startswith("9") and lines["token lengths"] == "p50 12"
