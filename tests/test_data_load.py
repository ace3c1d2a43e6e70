"""Loading sources, bad input with 1-based line numbers, shape detection and --map."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from engine.data import DataError
from engine.data import load as load_mod
from engine.data.load import load_source
from engine.data.shape import columns_of, detect_shape, to_rows

ROWS = [{"instruction": f"q{i}", "input": "", "output": f"a{i}", "category": "x" if i % 2 else "y"} for i in range(6)]


def test_every_file_format_reads_the_same_rows(tmp_path: Path) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "d.json").write_text(json.dumps(ROWS, indent=2))
    header = "instruction,input,output,category\n"
    (tmp_path / "d.csv").write_text(header + "".join(f"{r['instruction']},,{r['output']},{r['category']}\n"
                                                     for r in ROWS))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "disk"))
    for name in ("d.jsonl", "d.json", "d.csv", "d.parquet", "disk"):
        loaded = load_source(str(tmp_path / name))
        assert [row for _, row in loaded.rows] == ROWS, name
        assert not loaded.invalid and loaded.content_hash
    assert load_source(str(tmp_path / "d.json")).rows[2][0] == 14  # "[" then 6 lines per object: the third starts on line 14


def test_bad_jsonl_lines_are_reported_with_their_line_numbers(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_mod, "MAX_ROW_BYTES", 200)
    good = json.dumps(ROWS[0]).encode()
    lines = [good, b'{"instruction": "a", ', b"\xff\xfe not utf8", b"", b"[1, 2]", b'{"text": "' + b"x" * 300 + b'"}',
             good]
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    loaded = load_source(str(src))
    reasons = {i.line: i.reason for i in loaded.invalid}
    assert [line for line, _ in loaded.rows] == [1, 7]
    assert reasons[2].startswith("malformed JSON")
    assert reasons[3].startswith("not UTF-8 text (byte 0xff at column 1)")
    assert "not an object" in reasons[5]
    assert "over the" in reasons[6]
    assert loaded.empty == 1
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before  # the source is never modified


def test_ragged_csv_rows_and_multiline_fields_keep_line_numbers(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    src.write_bytes(b'prompt,completion\n"two\nlines",ok\nonly-one-field\na,b,c\n\xff,x\nfine,done\n')
    loaded = load_source(str(src))
    assert [(line, row["prompt"]) for line, row in loaded.rows] == [(2, "two\nlines"), (7, "fine")]
    assert {i.line: i.reason for i in loaded.invalid} == {
        4: "has 1 fields, the header has 2", 5: "has 3 fields, the header has 2", 6: "not UTF-8 text"}


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.jsonl", b"", "is empty"),
    ("broken.json", b'[{"a": 1},\n{"a": }]', "malformed at line 2"),
    ("obj.json", b'{"a": 1, "b": 2}', "not a list of rows"),
    ("data.txt", b"hello", "cannot tell the format"),
    ("nohead.csv", b"\n", "is empty"),
])
def test_unreadable_sources_are_one_sentence(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_source(str(tmp_path / name))


def test_missing_path_and_unknown_hub_id(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no file or folder"):
        load_source(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="cannot load 'nobody/no-such-dataset' from the hub"):
        load_source("nobody/no-such-dataset")


def test_ambiguous_columns_name_the_columns_and_the_map_to_give() -> None:
    with pytest.raises(DataError) as err:
        detect_shape(["id", "question", "answer"], "auto", {})
    assert "(id, question, answer)" in str(err.value)
    assert "--map prompt=question,response=answer" in str(err.value)
    shape, canon = detect_shape(["id", "question", "answer"], "auto", {"prompt": "question", "response": "answer"})
    assert shape == "prompt_completion" and canon == {"prompt": "question", "completion": "answer"}
    with pytest.raises(DataError, match="column 'answr', which the data does not have; the columns are id, q"):
        detect_shape(["id", "question", "answer"], "auto", {"response": "answr"})


def test_shapes_are_detected_and_rows_missing_fields_are_invalid() -> None:
    rows: list[tuple[int, dict[str, Any]]] = [(1, {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}),
            (2, {"conversations": [{"from": "human", "value": "no answer"}]}),
            (3, {"conversations": "not a list"})]
    shape, canon = detect_shape(columns_of(rows), "auto", {})
    assert shape == "chat"
    good, bad = to_rows(rows, shape, canon, None)
    assert good[0].fields["messages"][1] == {"role": "assistant", "content": "yo"}
    assert [(b.line, b.reason) for b in bad] == [(2, "the conversation has no assistant message to learn from"),
                                                 (3, "messages is not a non-empty list")]
    rows2: list[tuple[int, dict[str, Any]]] = [(1, {"instruction": "a", "output": "b"}), (2, {"instruction": "a", "output": ""}),
             (3, {"instruction": "a", "extra": 1})]
    shape, canon = detect_shape(columns_of(rows2), "auto", {})
    good, bad = to_rows(rows2, shape, canon, None)
    assert shape == "instruction" and len(good) == 1
    assert bad[1].line == 3 and "field 'output' is missing or empty (row has: instruction, extra)" in bad[1].reason
    assert detect_shape(["text", "meta"], "auto", {})[0] == "text"
