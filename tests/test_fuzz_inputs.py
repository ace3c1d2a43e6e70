"""Property tests for untrusted input the other fuzzers leave out: spec text as a file, spec tables with the
right keys but any values, an event file read at arbitrary split points, and a garbled control file.

The spec parser on arbitrary tables, the event decoder and the data loader are fuzzed in tests/test_spec.py,
tests/test_protocol.py and tests/test_data_fuzz.py.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.protocol import EventFollower, encode, make_event
from engine.spec import DataSpec, MethodSpec, ModelSpec, RunSpec, SpecError, TrainSpec, load_spec, parse_spec
from engine.train.loop import ControlInbox

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
    | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def table(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from([f.name for f in fields(cls)]), VALUES, max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={"name": VALUES, "model": table(ModelSpec), "data": table(DataSpec),
                                           "method": table(MethodSpec), "train": table(TrainSpec)}))
def test_known_keys_with_any_values_give_a_spec_or_sentences(raw: dict[str, Any]) -> None:
    try:
        spec = parse_spec(raw, check_files=False)
    except SpecError as exc:
        assert exc.messages and all(isinstance(p, str) and p and "\n" not in p for p in exc.messages)
        return
    assert isinstance(spec, RunSpec)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_a_spec_file_of_any_content_gives_a_spec_or_sentences(content: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.toml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        try:
            load_spec(path)
        except SpecError as exc:
            assert exc.messages and all(isinstance(p, str) and p for p in exc.messages)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(min_value=1, max_value=12), cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
       text=st.text(max_size=30))
def test_a_follower_sees_every_event_once_whatever_the_write_boundaries(n: int, cuts: list[int], text: str) -> None:
    events = [make_event("log", run="r", seq=i, t=1.0, level="info", text=f"{text} {i}") for i in range(n)]
    data = "".join(encode(e) for e in events).encode("utf-8")
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        follower = EventFollower(path)
        seen: list[dict[str, Any]] = []
        for start, end in itertools.pairwise(bounds):
            with open(path, "ab") as fh:
                fh.write(data[start:end])
            seen.extend(follower.poll())
        seen.extend(follower.poll())
    assert [(e["seq"], e["text"]) for e in seen] == [(e["seq"], e["text"]) for e in events]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=6))
def test_a_garbled_control_file_never_stops_the_engine(chunks: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "control.jsonl"
        inbox = ControlInbox(path)
        for chunk in chunks:
            with open(path, "ab") as fh:
                fh.write(chunk)
            for command in inbox.poll():
                assert isinstance(command, dict) and isinstance(command["command"], str)
