"""The New run editor's headless logic, the data-check service and a cancellable engine subcommand."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine.spec import SpecProblem, parse_spec
from slmtui.data_service import DataRequest, DataSummary
from slmtui.engine_proc import EngineCancelled, run_engine_json
from slmtui.fit import FitError, estimate_spec, resolve_shape
from slmtui.new_run import (
    FIELDS,
    FIELDS_BY_PATH,
    apply_form,
    default_raw,
    estimable,
    merge,
    validate,
    value_text,
)


@pytest.mark.parametrize(("raw", "field", "says"), [
    ({"train": {"micro_batch": "abc"}}, "train.micro_batch", "train.micro_batch must be a whole number"),
    ({"method": {"rnk": 4}}, "method.rnk", "Unknown key 'rnk' in [method] (did you mean 'rank'?)."),
    ({"name": "!!"}, "name", "name must contain at least one letter or digit"),
    ({"data": {"val_fraction": 0.5, "test_fraction": 0.5}}, "data.val_fraction", "leave under 10% to train on"),
    ({"data": {"scrub_types": ["NOPE"]}}, "data.scrub_types", "data.scrub_types entry 'NOPE' is not a type"),
])
def test_each_problem_names_its_field(raw: dict[str, object], field: str, says: str) -> None:
    base: dict[str, object] = {"name": "ok", "model": {"name": "m"}, "data": {"path": "d"}}
    spec, problems = validate(merge(base, raw), check_files=False)
    assert spec is None and any(p.field == field and says in p.message for p in problems), problems
    _, whole = validate([], check_files=False)  # type: ignore[arg-type]
    assert whole == [SpecProblem("", "The spec must be a table of settings, not list.")]


def test_form_text_round_trips_and_bad_numbers_stay_text(home: Path) -> None:
    raw = default_raw(home)
    values = {f.path: value_text(raw, f) for f in FIELDS}
    assert apply_form(raw, values) == raw  # what the form shows is what it gives back
    changed = apply_form(raw, {"train.lr": "3e-4", "train.micro_batch": "x1", "method.target_modules": "q_proj, v_proj",
                               "train.gradient_checkpointing": True})
    assert changed["train"]["lr"] == 3e-4 and changed["train"]["micro_batch"] == "x1"
    assert changed["method"]["target_modules"] == ["q_proj", "v_proj"] and changed["train"]["gradient_checkpointing"]
    assert apply_form(raw, {"method.target_modules": "all-linear"})["method"]["target_modules"] == "all-linear"
    spec, problems = validate(changed)
    assert spec is None and SpecProblem("train.micro_batch", "train.micro_batch must be a whole number, not str 'x1'.") \
        in problems
    assert {f.kind for f in FIELDS} == {"text", "int", "float", "choice", "bool", "modules", "list"}
    assert apply_form(raw, {"data.scrub_types": "EMAIL, NAME"})["data"]["scrub_types"] == ["EMAIL", "NAME"]
    assert apply_form(raw, {"data.scrub_types": " "})["data"]["scrub_types"] == []
    assert FIELDS_BY_PATH["method.kind"].choices == ("lora", "full", "qlora", "dora", "qdora")


def test_spec_estimate_and_its_errors(tmp_path: Path) -> None:
    spec = parse_spec({"model": {"name": "qwen2.5-0.5b"}, "data": {"path": "x", "max_length": 512},
                       "train": {"micro_batch": 4, "packing": "off"}}, check_files=False)
    small = estimate_spec(spec, "T4", 15.0)
    setup = small.estimate.setup
    assert (setup.method, setup.batch, setup.seq, setup.loss) == ("lora", 4, 512, "fused")  # loss auto on a GPU
    assert small.verdict == "fits" and small.max_micro_batch >= 4 and "on T4: fits" in small.sentence()
    assert estimate_spec(spec, "tiny", 0.5).verdict == "exceeds"
    (tmp_path / "bare").mkdir()
    with pytest.raises(FitError, match=r"has no config\.json"):
        resolve_shape(str(tmp_path / "bare"))
    with pytest.raises(FitError, match="not in the local Hugging Face cache"):
        resolve_shape("nobody/nothing-here")


def test_the_estimate_counts_the_gpus_while_other_fields_still_have_problems() -> None:
    train: dict[str, Any] = {"micro_batch": 1, "packing": "off", "devices": 4}
    raw = {"model": {"name": "qwen2.5-7b"}, "method": {"kind": "full"}, "data": {"path": "", "max_length": 1024},
           "train": train}
    assert validate(raw, check_files=False)[0] is None  # data.path is missing: the spec is not valid yet
    spec = estimable(raw)
    assert spec is not None and spec.train.devices == 4
    four = estimate_spec(spec, "A100-80GB", 80.0)
    assert four.estimate.setup.shards == 4 and "on each of 4 A100-80GB (FSDP)" in four.sentence()
    train["strategy"] = "ddp"  # each GPU holds the whole model: what one GPU needs
    assert estimate_spec(estimable(raw), "A100-80GB", 80.0).estimate.setup.shards == 1  # type: ignore[arg-type]


def test_data_summary_picks_the_key_numbers() -> None:
    report = {"rows": 12, "valid_rows": 11, "kept_rows": 10, "invalid_rows_total": 1, "duplicates": 2,
              "token_lengths": {"p50": 40, "p90": 70, "p99": 90, "max": 130}, "max_length": 128,
              "over_max_length": 1, "overlength_action": "1 rows over max_length 128 will be truncated.",
              "pii": {"EMAIL": 2, "PHONE": 0}, "pii_rows": 2, "scrub": "on", "shape": "instruction",
              "tokenizer": {"note": "demo tokenizer"}}
    summary = DataSummary.from_report(report)
    assert (summary.rows, summary.p50, summary.p99, summary.over_max_length, summary.pii_rows) == (12, 40, 90, 1, 2)
    lines = summary.lines()
    assert "tokens p50 40, p99 90, longest 130" in lines[1] and "EMAIL 2" in lines[3] and "PHONE" not in lines[3]
    assert DataSummary.from_report({}).rows == 0
    argv = DataRequest("d.jsonl", tokenizer="m", max_length=64, map=(("prompt", "q"),), preview=0).argv()
    assert argv[:3] == ["d.jsonl", "--max-length", "64"] and "--tokenizer" in argv and "prompt=q" in argv
    assert argv[argv.index("--preview") + 1] == "0" and "--preview" not in DataRequest("d.jsonl").argv()


def test_a_cancelled_engine_command_is_killed_at_once(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "hello"}\n')
    started = time.monotonic()
    with pytest.raises(EngineCancelled):
        run_engine_json("data-check", str(rows), cancelled=lambda: time.monotonic() - started > 0.3)
    assert time.monotonic() - started < 3


def test_a_runs_spec_with_a_suggested_fix(home: Path) -> None:
    from slmtui.new_run import last_run_raw, run_spec_raw
    from slmtui.runs import create_run

    spec = parse_spec({"name": "oom", "model": {"name": "qwen2.5-0.5b"}, "data": {"path": "x", "map": {"prompt": "q"}},
                       "train": {"micro_batch": 16}}, check_files=False)
    run_dir = create_run(spec, home / "runs")
    fixed = run_spec_raw(run_dir, {"train": {"micro_batch": 4, "grad_accum": 4}})
    assert fixed["train"]["micro_batch"] == 4 and fixed["train"]["grad_accum"] == 4
    assert fixed["data"]["map"] == {"prompt": "q"} and fixed["model"]["name"] == "qwen2.5-0.5b"
    assert last_run_raw(home / "runs") == (run_dir.name, run_spec_raw(run_dir))


def test_launch_checks_and_pilot_arguments(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import slmtui.launch as launch
    from slmtui.gpu import Nvml
    from tests.gpu_fakes import FakeNvml

    spec = parse_spec({"model": {"name": "qwen2.5-14b"}, "data": {"path": "x"}, "method": {"kind": "full"},
                       "train": {"micro_batch": 64}}, check_files=False)
    one_gpu = Nvml(FakeNvml(count=1).module).snapshot
    refused = launch.check_launch(spec, home / "runs", one_gpu, pilot=True).refusal
    assert refused is not None and refused.forceable and "GPU 0 has 78.0 GiB free" in refused.reason
    assert "--force" not in refused.sentence("launch anyway")
    forced = launch.check_launch(spec, home / "runs", one_gpu, force=True, pilot=True)
    assert forced.refusal is None and forced.overridden == (refused,)
    spec.train.device = "cpu"
    assert launch.check_launch(spec, home / "runs", lambda: pytest.fail("no GPU read for a CPU run"),
                               pilot=True).refusal is None
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(launch, "launch", lambda *a, **kw: calls.append((a, kw)))
    launch.launch_run(spec, home / "runs", home, pilot=0.05)
    launch.launch_run(spec, home / "runs", home)
    assert calls[0][1] == {"home": home, "engine_args": ["--pilot", "0.05"]} and calls[1][1]["engine_args"] == ()


def test_new_run_starts_from_the_saved_data_settings(home: Path) -> None:
    from slmtui.data_report import save_options, saved_spec_data
    from slmtui.data_service import DataRequest
    from slmtui.store import Store

    store = Store(home)
    assert saved_spec_data(store) == {}  # nothing saved: the defaults stand
    assert default_raw(home, {})["data"] == default_raw(home)["data"]
    save_options(store, DataRequest("mine.jsonl", "tok", 512, "drop", (("prompt", "q"),)))
    saved = saved_spec_data(store)
    assert saved == {"path": "mine.jsonl", "map": {"prompt": "q"}, "max_length": 512, "overlength": "drop"}
    data = default_raw(home, saved)["data"]
    assert {k: data[k] for k in saved} == saved and data["shape"] == "auto"  # the rest stays the default
    _, problems = validate(default_raw(home, saved), check_files=False)
    assert [p.field for p in problems] == ["model.name"]  # no demo built here: only the model is missing
