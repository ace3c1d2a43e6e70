"""The loader and the pipeline report bad input; they never crash on it (hypothesis)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data import DataError, DataOptions
from engine.data.analyse import analyse
from engine.data.load import load_source
from engine.tiny import train_tokenizer

TOK = train_tokenizer(["prompt completion text instruction output"] * 50, vocab_size=300)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=4), max_leaves=12)
FIELDS = st.sampled_from(["prompt", "completion", "text", "instruction", "output", "input", "messages", "label"])
ROW = st.dictionaries(FIELDS, JSON | st.text(max_size=40), max_size=4)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".jsonl", ".json", ".csv"]))
def test_random_bytes_are_reported_never_raised(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        try:
            loaded = load_source(str(path))
        except DataError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert all(i.line >= 1 and i.reason for i in loaded.invalid)
        assert path.read_bytes() == data


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW | JSON, min_size=1, max_size=6))
def test_random_json_rows_give_a_report_or_one_sentence(rows: list[object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        try:
            result = analyse(DataOptions(path=str(path), max_length=64), TOK, strict=True)
        except DataError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        report = result.report
        json.dumps(report)
        assert report["rows"] == len(rows)
        assert report["valid_rows"] + report["invalid_rows_total"] == len(rows)
