"""The run spec: parsing, validation sentences, round trips, and a fuzz of the parser."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.spec import (
    DataSpec,
    RunSpec,
    SpecError,
    dump_spec,
    load_spec,
    parse_spec,
    slug,
    total_steps,
)


def minimal(tmp_path: Path) -> dict[str, Any]:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    return {"name": "demo", "model": {"name": str(model)}, "data": {"path": str(data)}}


def test_minimal_spec_gets_the_contract_defaults(tmp_path: Path) -> None:
    spec = parse_spec(minimal(tmp_path))
    assert spec.method.kind == "lora" and spec.method.target_modules == "all-linear"
    assert spec.train.precision == "auto" and spec.train.micro_batch == 8 and spec.train.schedule == "cosine"
    assert spec.data.max_length == 1024 and spec.data.overlength == "truncate"
    assert isinstance(spec.data, DataSpec)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"train": {"micro_batch": 0}}, "train.micro_batch must be at least 1, not 0."),
        ({"train": {"lr": -1e-4}}, "train.lr must be more than 0"),
        ({"train": {"lr": 5.0}}, "train.lr = 5 is absurdly large"),
        ({"train": {"micro_batch": "8"}}, "train.micro_batch must be a whole number, not str"),
        ({"train": {"micro_batch": 2.5}}, "train.micro_batch must be a whole number, not float"),
        ({"train": {"gradient_checkpointing": 1}}, "train.gradient_checkpointing must be true or false"),
        ({"train": {"lr": float("nan")}}, "train.lr must be a finite number"),
        ({"train": {"learning_rate": 1e-4}}, "Unknown key 'learning_rate' in [train]"),
        ({"train": {"micro_bach": 4}}, "did you mean 'micro_batch'?"),
        ({"trian": {}}, "Unknown top-level key 'trian' (did you mean 'train'?)."),
        ({"method": {"kind": "lorra"}}, "method.kind must be one of lora, full, qlora, dora, qdora, not 'lorra' (did you mean 'lora'?)."),
        ({"method": {"target_modules": 3}}, "method.target_modules must be a string or a list of strings"),
        ({"train": {"schedule": "cos"}}, "train.schedule must be one of cosine, linear, constant"),
        ({"train": {"report_to": ["tensorbored"]}}, "train.report_to entry 'tensorbored'"),
        ({"train": {"device": "gpu"}}, "train.device must be auto, cpu, cuda or cuda:N"),
        ({"data": {"max_length": -5}}, "data.max_length must be at least 1, not -5."),
        ({"data": {"val_fraction": 0.5, "test_fraction": 0.45}}, "leave under 10% to train on"),
        ({"data": {"map": {"promt": "q"}}}, "data.map key 'promt' is not a field (did you mean 'prompt'?)."),
        ({"data": {"path": "/no/such/file.jsonl"}}, "data.path '/no/such/file.jsonl' does not exist"),
        ({"model": {"name": "/no/such/model"}}, "model.name '/no/such/model' is not a folder"),
        ({"model": {"name": ""}}, "model.name is missing"),
        ({"model": "x"}, "[model] must be a table, not str."),
        ({"name": "!!!"}, "name must contain at least one letter or digit"),
        ({"train": {"packing": "on"}}, "train.packing must be one of auto, off, not 'on'"),
        ({"train": {"micro_batch_tokens": -1}}, "train.micro_batch_tokens must be at least 0, not -1."),
        ({"train": {"micro_batch_tokens": 100}, "data": {"max_length": 512}},
         "train.micro_batch_tokens = 100 cannot hold one example of data.max_length = 512"),
        ({"train": {"master_weights": "bf16"}}, "train.master_weights applies to full fine-tuning only"),
        ({"train": {"master_weights": "bf16", "precision": "fp16"}, "method": {"kind": "full"}},
         'train.master_weights = "bf16" needs bf16 compute, not train.precision = "fp16"'),
        ({"train": {"master_weights": "fp16"}}, "train.master_weights must be one of fp32, bf16"),
    ],
)
def test_each_problem_is_one_sentence(tmp_path: Path, patch: dict[str, Any], expected: str) -> None:
    raw = minimal(tmp_path)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    assert any(expected in p for p in info.value.messages), info.value.messages
    assert all(p.rstrip().endswith((".", "?)", ")")) for p in info.value.messages)


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    raw = minimal(tmp_path)
    raw["train"] = {"micro_batch": 0, "lr": 0, "foo": 1}
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    assert len(info.value.problems) == 3


def test_hub_ids_are_not_checked_as_files(tmp_path: Path) -> None:
    raw = minimal(tmp_path)
    raw["model"] = {"name": "Qwen/Qwen2.5-0.5B"}
    raw["data"] = {"path": "tatsu-lab/alpaca"}
    spec = parse_spec(raw)
    assert spec.model.name == "Qwen/Qwen2.5-0.5B"


def test_dump_and_parse_round_trip(tmp_path: Path) -> None:
    raw = minimal(tmp_path)
    raw["method"] = {"kind": "full", "target_modules": ["q_proj", "v_proj"]}
    raw["train"] = {"report_to": ["tensorboard"], "max_steps": 7}
    raw["data"]["map"] = {"prompt": "question", "response": "answer"}
    spec = parse_spec(raw)
    again = parse_spec(tomllib.loads(dump_spec(spec)))
    assert again == spec


def test_load_spec_resolves_relative_paths_and_reports_bad_toml(tmp_path: Path) -> None:
    minimal(tmp_path)
    (tmp_path / "spec.toml").write_text('name = "x"\n[model]\nname = "./model"\n[data]\npath = "rows.jsonl"\n')
    spec = load_spec(tmp_path / "spec.toml")
    assert spec.model.name == str((tmp_path / "model").resolve())
    assert spec.data.path == str((tmp_path / "rows.jsonl").resolve())
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")


@pytest.mark.parametrize(("name", "expected"), [("Demo Run!", "demo-run"), ("a__b", "a-b"), ("ñ", "")])
def test_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_total_steps_from_epochs_or_max_steps() -> None:
    spec = RunSpec().train
    spec.micro_batch, spec.grad_accum, spec.epochs = 4, 2, 2.0
    assert total_steps(spec, 20) == 5
    spec.max_steps = 3
    assert total_steps(spec, 20) == 3


toml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
known_keys = st.sampled_from(["name", "model", "data", "method", "train", "kind", "lr", "micro_batch", "path", "map"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(known_keys | st.text(max_size=8), toml_values | st.dictionaries(known_keys, toml_values), max_size=6))
def test_parser_never_crashes(raw: dict[str, Any]) -> None:
    try:
        parse_spec(raw)
    except SpecError as exc:
        assert exc.messages and all(isinstance(p, str) and p for p in exc.messages)
        assert all(isinstance(p.field, str) for p in exc.problems)
