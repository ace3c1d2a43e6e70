"""The event protocol: round trips, the follower, and a decoder that never raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import protocol
from engine.protocol import EVENT_FIELDS, EventFollower, EventWriter, decode, encode, make_event

SAMPLE_FIELDS: dict[str, dict[str, Any]] = {
    "started": {"spec": {"model": {"name": "m"}}, "params_total": 10, "params_trainable": 2, "precision": "fp32",
                "device": "cpu", "env": {"torch": "2"}, "estimate": {"total_gib": 1.5}, "data": {"fingerprint": "ab"}},
    "metrics": {"step": 3, "epoch": 0.1, "loss": 2.5, "lr": 1e-4, "grad_norm": 0.9, "tokens_per_s": 100.0,
                "samples_per_s": 2.0, "mem_allocated_gib": 0.1, "mem_reserved_gib": 0.2, "mem_peak_gib": 0.3},
    "eval": {"step": 10, "val_loss": 2.0, "perplexity": 7.39, "samples": [{"prompt": "p", "output": "o"}]},
    "checkpoint": {"step": 10, "path": "checkpoints/step-10", "bytes": 1234},
    "oom": {"step": 5, "batch_shape": [8, 1024], "longest_seq": 1024, "mem_at_failure_gib": 70.1,
            "message": "CUDA out of memory", "action": "shrink", "post_mortem": [{"change": "x", "saves_gib": 1}]},
    "rehearsal": {"estimate_gib": 20.0, "measured_gib": 21.0, "ratio": 1.05, "micro_batch": 8, "grad_accum": 1},
    "log": {"level": "info", "text": "hello ünïcode"},
    "finished": {"status": "completed", "summary": {"best_val_loss": 1.0}},
    "eta": {"pilot": 0.05, "eta_s": 60.0, "eta_low_s": 50.0, "eta_high_s": 75.0, "total_steps": 340,
            "total_tokens": 50_000, "detail": {"train_seconds": 55.0}},
}


@pytest.mark.parametrize("event_type", sorted(EVENT_FIELDS))
def test_every_type_round_trips(event_type: str) -> None:
    fields = SAMPLE_FIELDS[event_type]
    assert set(fields) >= set(EVENT_FIELDS[event_type])
    event = make_event(event_type, run="20261126-101500-demo", seq=4, t=1.5, **fields)
    line = encode(event)
    assert line.endswith("\n") and line.count("\n") == 1
    assert decode(line) == event
    assert list(event)[:5] == ["v", "type", "seq", "t", "run"]


def test_non_finite_numbers_become_null() -> None:
    line = encode(make_event("metrics", run="r", seq=0, loss=float("nan"), grad_norm=float("inf")))
    assert json.loads(line)["loss"] is None and json.loads(line)["grad_norm"] is None


@pytest.mark.parametrize("line", ["", "not json", "[1,2]", '{"no": "type"}', '{"type": 5}', "{", '"str"', "null"])
def test_bad_lines_become_log_events(line: str) -> None:
    event = decode(line)
    assert event["type"] == "log" and event["level"] == "warning"


def test_header_fields_are_normalised() -> None:
    event = decode('{"type": "metrics", "seq": "x", "t": true, "run": 3}')
    assert (event["seq"], event["t"], event["run"]) == (-1, 0.0, "")


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_decoder_never_raises_on_bytes(data: bytes) -> None:
    assert isinstance(decode(data)["type"], str)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_decoder_never_raises_on_json(value: object) -> None:
    event = decode(json.dumps(value))
    assert isinstance(event, dict) and isinstance(event["seq"], int)


def test_follower_waits_for_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path)
    assert follower.poll() == []  # no file yet
    first = encode(make_event("log", run="r", seq=0, level="info", text="one"))
    second = encode(make_event("log", run="r", seq=1, level="info", text="two"))
    path.write_text(first + second[:10])
    assert [e["seq"] for e in follower.poll()] == [0]
    assert follower.poll() == []  # still torn
    with open(path, "a") as fh:
        fh.write(second[10:])
    assert [e["text"] for e in follower.poll()] == ["two"]


def test_writer_continues_numbering(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventWriter(path, run="r") as writer:
        writer.emit("log", level="info", text="a")
        writer.emit("log", level="info", text="b")
    with EventWriter(path, run="r") as writer:
        assert writer.emit("log", level="info", text="c")["seq"] == 2
    assert [e["seq"] for e in protocol.read_events(path)] == [0, 1, 2]


def test_control_rejects_unknown_commands(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown control command"):
        protocol.append_control(tmp_path, "explode")
    protocol.append_control(tmp_path, "stop")
    assert json.loads((tmp_path / "control.jsonl").read_text())["command"] == "stop"
