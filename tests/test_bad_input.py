"""Bad input, class by class, through the real CLI: each ends in one sentence saying what to change.

Specs go through `slmtui train` (refused before any run folder exists); datasets through `slmtui data check`.
Invalid rows, bad encodings, over-length rows and unmapped columns are in tests/test_data_check.py; the fuzzers
are tests/test_spec.py, tests/test_protocol.py and tests/test_data_fuzz.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.train_helpers import instruction_rows, write_jsonl

GOOD_TRAIN = 'device = "cpu"\nmicro_batch = 2\nmax_steps = 2\n'

#: class -> (TOML after the [model] and [data] tables, words the one sentence must contain)
SPEC_CASES = {
    "wrong type": ('[train]\nmicro_batch = "eight"\n', "train.micro_batch must be a whole number, not str"),
    "wrong type of table": ("^train = 3\n", "[train] must be a table, not int"),
    "negative": ("[train]\nlr = -0.1\n", "train.lr must be more than 0"),
    "zero": ("[train]\nmicro_batch = 0\n", "train.micro_batch must be at least 1"),
    "absurd": ("[train]\nmax_steps = 1000000000000\n", "absurdly large"),
    "not finite": ("[train]\nlr = nan\n", "train.lr must be a finite number"),
    "unknown key": ("[train]\nmicro_bach = 2\n", "did you mean 'micro_batch'?"),
    "unknown table": ("[trian]\nlr = 0.1\n", "did you mean 'train'?"),
    "unknown choice": ('[train]\nschedule = "cosin"\n', "did you mean 'cosine'?"),
    "fractions leave nothing": ("[data]\nval_fraction = 0.5\ntest_fraction = 0.45\n", "lower them"),
    "bad device": ('[train]\ndevice = "gpu0"\n', "train.device must be auto, cpu, cuda or cuda:N"),
}


def write_spec_text(folder: Path, model: str, data: str, tail: str) -> Path:
    """A spec with `tail` after the [data] table (a `[data]` tail continues it; a `^` tail goes on top)."""
    spec = folder / "spec.toml"
    top = tail[1:] if tail.startswith("^") else ""
    tail = "" if top else tail.removeprefix("[data]\n")
    spec.write_text(f'name = "bad"\n{top}[model]\nname = "{model}"\n[data]\npath = "{data}"\n{tail}')
    return spec


def assert_one_sentence(proc: object, *words: str) -> None:
    stderr = proc.stderr  # type: ignore[attr-defined]
    assert proc.returncode == 1, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("slmtui: ")
    for word in words:
        assert word in stderr, stderr


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_a_bad_spec_is_refused_in_one_sentence_before_any_run_exists(case: str, cli: Cli, home: Path,
                                                                     tmp_path: Path, tiny_model_dir: Path) -> None:
    tail, words = SPEC_CASES[case]
    data = write_jsonl(tmp_path / "rows.jsonl", instruction_rows(8))
    proc = cli("train", str(write_spec_text(tmp_path, str(tiny_model_dir), str(data), tail)), "--detach")
    assert_one_sentence(proc, words)
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


@pytest.mark.parametrize("case", ["missing spec file", "not TOML", "empty spec", "missing data file",
                                  "missing model folder"])
def test_missing_files_and_empty_specs_are_one_sentence(case: str, cli: Cli, tmp_path: Path,
                                                        tiny_model_dir: Path) -> None:
    data = str(write_jsonl(tmp_path / "rows.jsonl", instruction_rows(8)))
    spec = tmp_path / "spec.toml"
    expected = {
        "missing spec file": "does not exist",
        "not TOML": "is not valid TOML",
        "empty spec": "model.name is missing",
        "missing data file": "data.path 'gone.jsonl' does not exist",
        "missing model folder": "is not a folder",
    }[case]
    if case == "not TOML":
        spec.write_text("name = \n[model\n")
    elif case == "empty spec":
        spec.write_text("")
    elif case == "missing data file":
        write_spec_text(tmp_path, str(tiny_model_dir), "gone.jsonl", "")
    elif case == "missing model folder":
        write_spec_text(tmp_path, str(tmp_path / "no-model"), data, "")
    assert_one_sentence(cli("train", str(spec)), expected)


DATA_CASES = {
    "empty file": (b"", "empty"),
    "binary garbage": (bytes(range(256)) * 4, "no readable rows"),
    "a folder that is not a dataset": ("folder", "not one written by save_to_disk"),
    "garbage parquet": (b"PAR1 not really", "as Parquet"),
    "all rows invalid": (b"{oops\n[1, 2]\n\"text\"\n", "no readable rows"),
    "unknown map column": (b'{"q": "a", "a": "b"}\n', "question"),
    "no tokenizer there": (b'{"prompt": "a", "completion": "b"}\n', "tokenizer"),
}


def test_a_dataset_path_that_does_not_exist_is_one_sentence_through_the_cli(cli: Cli, tmp_path: Path,
                                                                          tiny_model_dir: Path) -> None:
    proc = cli("data", "check", str(tmp_path / "gone.jsonl"), "--tokenizer", str(tiny_model_dir))
    assert_one_sentence(proc, "no file or folder at", "check the path")


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_a_dataset_that_cannot_be_used_is_one_sentence(
        case: str, tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In process through `python -m engine data-check`'s main (what `slmtui data check` runs): the CLI only
    forwards its last stderr line, and one interpreter for all cases keeps the suite fast."""
    from engine.commands.data_check import main

    content, words = DATA_CASES[case]
    path = tmp_path / ("data.parquet" if "parquet" in case else "data.jsonl")
    if content == "folder":
        path = tmp_path / "folder"
        path.mkdir()
        (path / "notes.txt").write_text("not a dataset")
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    argv = [str(path), "--tokenizer", str(tmp_path / "none") if "tokenizer" in case else str(tiny_model_dir)]
    if case == "unknown map column":
        argv += ["--map", "prompt=question,response=answer"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert words in err, err


# ---------------------------------------------------------------- issue 14: bad input that got a traceback or a
# wrong sentence, and data that was silently changed


def _special_path(kind: str, folder: Path) -> Path:
    """A data path that exists but is no dataset file: a symbolic link loop, a named pipe, a device."""
    if kind == "a symbolic link loop":
        path = folder / "loop.jsonl"
        path.symlink_to(path.name)
    elif kind == "a named pipe":
        path = folder / "pipe.jsonl"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    return path


SPECIAL_PATHS = {"a symbolic link loop": "is a symbolic link that loops back on itself",
                 "a named pipe": "is a named pipe (FIFO)", "/dev/zero": "is a character device"}


@pytest.mark.parametrize("kind", list(SPECIAL_PATHS))
def test_a_data_path_that_is_no_file_says_what_it_is(kind: str, tmp_path: Path, tiny_model_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Was: "no file or folder at …" (it exists), and `RuntimeError: Symlink loop` for a relative loop in a spec."""
    from engine.commands.data_check import main
    from engine.spec import SpecError, load_spec

    path = _special_path(kind, tmp_path)
    code = main([str(path), "--tokenizer", str(tiny_model_dir)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and SPECIAL_PATHS[kind] in err, err
    relative = f"./{path.name}" if path.parent == tmp_path else str(path)
    spec = write_spec_text(tmp_path, str(tiny_model_dir), relative, "")
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert SPECIAL_PATHS[kind] in str(info.value) and "not a dataset" in str(info.value)


def test_a_data_path_that_is_no_file_is_refused_before_a_run_exists(cli: Cli, home: Path, tmp_path: Path,
                                                                     tiny_model_dir: Path) -> None:
    """Was: a run started on /dev/zero or a FIFO and failed later."""
    spec = write_spec_text(tmp_path, str(tiny_model_dir), str(_special_path("a named pipe", tmp_path)), "")
    assert_one_sentence(cli("train", str(spec), "--detach"), "is a named pipe (FIFO), not a dataset")
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_a_spec_with_a_byte_order_mark_is_read(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Was: "Invalid statement at line 1, column 1" for a spec saved by an editor that writes a UTF-8 BOM."""
    from engine.spec import load_spec

    data = write_jsonl(tmp_path / "rows.jsonl", instruction_rows(8))
    spec = write_spec_text(tmp_path, str(tiny_model_dir), str(data), "[train]\n" + GOOD_TRAIN)
    spec.write_bytes(b"\xef\xbb\xbf" + spec.read_bytes())
    assert load_spec(spec).name == "bad"


def _oversized_row() -> str:
    from engine.data.load import MAX_ROW_BYTES

    return "x" * (MAX_ROW_BYTES + 1024)


#: file name -> (content, words the report or the one sentence must hold)
OVERSIZED = {
    "only.jsonl": (lambda: json.dumps({"prompt": _oversized_row(), "completion": "b"}) + "\n",
                   "line 1: row is 4.0 MiB, over the 4 MiB limit per row"),
    "no-newline.jsonl": (_oversized_row, "over the 4 MiB limit per row"),
    "rows.json": (lambda: json.dumps([{"prompt": "a", "completion": "b"},
                                      {"prompt": _oversized_row(), "completion": "b"}]),
                  "over the 4 MiB limit per row"),
    "rows.csv": (lambda: f"prompt,completion\na,b\n{_oversized_row()},b\n", "over the 4 MiB limit per row"),
}


@pytest.mark.parametrize("name", list(OVERSIZED))
def test_a_row_over_the_size_limit_names_the_limit(name: str, tmp_path: Path, tiny_model_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Was: "no readable rows … check the file's format", "field larger than field limit (4194304)", and a JSON
    array's huge row went to the tokenizer (minutes for 50 MB)."""
    from engine.commands.data_check import main

    make, words = OVERSIZED[name]
    path = tmp_path / name
    path.write_text(make())
    code = main([str(path), "--tokenizer", str(tiny_model_dir)])
    out, err = capsys.readouterr()
    if code == 1:
        assert len(err.strip().splitlines()) == 1 and words in err, err
    else:
        reasons = [r["reason"] for r in json.loads(out)["invalid_rows"]]
        assert len(reasons) == 1 and words in reasons[0], reasons


def _copy_model(src: Path, dst: Path, change: str) -> Path:
    shutil.copytree(src, dst)
    if change == "corrupt safetensors":
        (dst / "model.safetensors").write_bytes(b"not really safetensors" * 4)
    else:
        config = json.loads((dst / "config.json").read_text())
        config.update(model_type="llamazing", architectures=["LlamazingForCausalLM"])
        (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize("change, words", [
    ("corrupt safetensors", "has a damaged weights file model.safetensors (Error while deserializing header"),
    ("unknown architecture", "is a 'llamazing' model, which transformers"),
])
def test_a_model_folder_that_cannot_load_is_one_whole_sentence(change: str, words: str, tmp_path: Path,
                                                               tiny_model_dir: Path) -> None:
    """Was: "failed unexpectedly (SafetensorError …)" without the file, and a sentence cut off mid-word."""
    import torch

    from engine.modeling import ModelError, Precision, load_base_model
    from engine.spec import load_spec

    model = _copy_model(tiny_model_dir, tmp_path / "model", change)
    data = write_jsonl(tmp_path / "rows.jsonl", instruction_rows(8))
    spec = load_spec(write_spec_text(tmp_path, str(model), str(data), "[train]\n" + GOOD_TRAIN))
    with pytest.raises(ModelError) as info:
        load_base_model(spec, Precision("fp32", None, torch.float32, False, "test"))
    message = str(info.value)
    assert words in message and message.endswith(".") and message.count("(") == message.count(")"), message
    assert "\n" not in message


def test_an_export_onto_a_file_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: `NotADirectoryError`."""
    from engine.commands.export import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.toml").write_text('name = "x"\n')
    target = tmp_path / "model.bin"
    target.write_text("already here")
    assert main([str(run), str(target)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "is a file, and the export writes a folder; choose a new folder." in err


def _parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


GOOD_ROW = {"instruction": "Classify the ticket", "input": "my order is late", "output": "shipping"}
#: case -> (file name, the second row, words of its reason)
NOT_TEXT: dict[str, tuple[str, dict[str, Any] | None, str]] = {
    "a list in input (JSONL)": ("d.jsonl", {**GOOD_ROW, "input": ["list"]}, "field 'input' is a list, not text"),
    "an object in output (JSONL)": ("d.jsonl", {**GOOD_ROW, "output": {"label": "x"}},
                                    "field 'output' is an object, not text"),
    "a list column (Parquet)": ("d.parquet", None, "field 'input' is a list, not text"),
    "a list in a required field": ("d.jsonl", {**GOOD_ROW, "instruction": ["a", "b"]},
                                   "field 'instruction' is a list, not text"),
}


@pytest.mark.parametrize("case", list(NOT_TEXT))
def test_a_value_that_is_not_text_makes_its_row_invalid(case: str, tmp_path: Path, tiny_model_dir: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Was: `"input": ["list"]` and a Parquet list column counted as valid and trained with an empty input; a
    dict in `output` was reported as "missing or empty"."""
    from engine.commands.data_check import main

    name, bad, words = NOT_TEXT[case]
    path = tmp_path / name
    if name.endswith(".parquet"):
        _parquet(path, [{**GOOD_ROW, "input": []}, {**GOOD_ROW, "input": ["a list"]}])
    else:
        write_jsonl(path, [GOOD_ROW, bad or {}])
    assert main([str(path), "--tokenizer", str(tiny_model_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    invalid = report["invalid_rows"]
    assert [r["line"] for r in invalid] == ([1, 2] if name.endswith(".parquet") else [2]), invalid
    assert words in invalid[-1]["reason"], invalid
