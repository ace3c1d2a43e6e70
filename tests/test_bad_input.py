"""Bad input, class by class, through the real CLI: each ends in one sentence saying what to change.

Specs go through `slmtui train` (refused before any run folder exists); datasets through `slmtui data check`.
Invalid rows, bad encodings, over-length rows and unmapped columns are in tests/test_data_check.py; the fuzzers
are tests/test_spec.py, tests/test_protocol.py and tests/test_data_fuzz.py.
"""

from __future__ import annotations

from pathlib import Path

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
