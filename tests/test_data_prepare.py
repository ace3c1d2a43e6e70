"""prepare(): scrubbing reaches the examples, splits, subsets, fingerprints and the cache."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.data import DataError, DataOptions, prepare
from engine.data.split import representative_subset, split_indices
from engine.tiny import train_tokenizer

TOK = train_tokenizer([f"Ticket {i}: order late, refund please. Category: refund" for i in range(200)],
                      vocab_size=400)


def rows(n: int = 200) -> list[dict[str, Any]]:
    cats = ["billing", "shipping", "refund", "other"]
    out = [{"instruction": "Triage", "input": f"ticket {i} " + "word " * (i % 17), "output": f"Category: {cats[i % 4]}",
            "category": cats[i % 4]} for i in range(n)]
    return [*out, dict(out[3]), dict(out[3]), dict(out[10])]  # exact duplicates


def write(path: Path, data: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    return path


def test_personal_data_never_reaches_examples_or_report(tmp_path: Path) -> None:
    src = write(tmp_path / "d.jsonl", [{"prompt": "I am Joshua Diaz, mail joshua.diaz@example.org, card "
                                                  "4111 1111 1111 1111", "completion": "Thanks Joshua Diaz"}] * 3)
    prepared = prepare(DataOptions(path=str(src), val_fraction=0, test_fraction=0), TOK, cache_dir=tmp_path / "c")
    blob = json.dumps(prepared.report) + json.dumps([e.__dict__ for e in prepared.train]) + \
        json.dumps(prepared.description)
    blob += "".join(TOK.decode(e.input_ids) for e in prepared.train)
    for secret in ("Joshua", "joshua.diaz@example.org", "4111"):
        assert secret not in blob
    assert prepared.train[0].response == "Thanks <NAME_1>"
    assert prepared.report["pii"]["NAME"] == 6 and prepared.report["pii"]["CARD"] == 3
    off = prepare(DataOptions(path=str(src), scrub="off", val_fraction=0, test_fraction=0), TOK,
                  cache_dir=tmp_path / "c")
    assert off.train[0].response == "Thanks Joshua Diaz"
    assert "Joshua" not in json.dumps(off.report["preview"])  # reports show scrubbed examples only


def test_splits_are_stratified_and_duplicates_stay_together(tmp_path: Path) -> None:
    src = write(tmp_path / "d.jsonl", rows())
    opts = DataOptions(path=str(src), val_fraction=0.1, test_fraction=0.1, split_seed=3)
    p = prepare(opts, TOK, cache_dir=tmp_path / "c")
    assert p.report["label_column"] == "category" and p.report["duplicates"] == 3
    assert sum(len(getattr(p, s)) for s in ("train", "validation", "test")) == 203
    for split in (p.validation, p.test):
        counts = Counter(e.label for e in split)
        assert set(counts) == {"billing", "shipping", "refund", "other"}
        assert max(counts.values()) - min(counts.values()) <= 3
    inputs = {s: {tuple(e.input_ids) for e in getattr(p, s)} for s in ("train", "validation", "test")}
    assert not inputs["train"] & inputs["validation"] and not inputs["train"] & inputs["test"]
    assert not inputs["validation"] & inputs["test"]
    again = split_indices(list(range(50)), ["a"] * 50, 0.2, 0.2, seed=3)
    assert again == split_indices(list(range(50)), ["a"] * 50, 0.2, 0.2, seed=3)
    assert again != split_indices(list(range(50)), ["a"] * 50, 0.2, 0.2, seed=4)


def test_subset_is_stratified_by_label_and_length() -> None:
    lengths = [i % 100 for i in range(1000)]
    labels = ["a" if i % 10 else "b" for i in range(1000)]
    chosen = representative_subset(lengths, labels, 0.1, seed=0)
    assert 90 <= len(chosen) <= 110
    assert Counter(labels[i] for i in chosen) == {"a": 90, "b": 10}
    picked = sorted(lengths[i] for i in chosen)
    assert picked[0] < 25 and picked[-1] >= 75


def test_same_inputs_hit_the_cache_and_changes_miss_it(tmp_path: Path) -> None:
    src = write(tmp_path / "d.jsonl", rows(60))
    messages: list[str] = []
    first = prepare(DataOptions(path=str(src)), TOK, cache_dir=tmp_path / "c", log=messages.append)
    second = prepare(DataOptions(path=str(src)), TOK, cache_dir=tmp_path / "c", log=messages.append)
    assert first.fingerprint == second.fingerprint
    assert any("found in the cache" in m for m in messages)
    assert [e.input_ids for e in first.train] == [e.input_ids for e in second.train]
    fps = {first.fingerprint}
    for changed in (DataOptions(path=str(src), split_seed=1), DataOptions(path=str(src), scrub="off"),
                    DataOptions(path=str(src), template="default"), DataOptions(path=str(src), max_length=64),
                    DataOptions(path=str(src), map={"prompt": "input", "completion": "output"})):
        fps.add(prepare(changed, TOK, cache_dir=tmp_path / "c").fingerprint)
    fps.add(prepare(DataOptions(path=str(src)), TOK, cache_dir=tmp_path / "c", subset=0.5).fingerprint)
    other_tok = train_tokenizer(["something else entirely"] * 50, vocab_size=300)
    fps.add(prepare(DataOptions(path=str(src)), other_tok, cache_dir=tmp_path / "c").fingerprint)
    write(src, rows(61))
    fps.add(prepare(DataOptions(path=str(src)), TOK, cache_dir=tmp_path / "c").fingerprint)
    assert len(fps) == 9


@dataclass
class SpecLike:
    """Stands for engine.spec.DataSpec: prepare() reads its fields by name."""

    path: str
    map: dict[str, str] = field(default_factory=dict)
    invalid: str = "error"


def test_accepts_a_dataspec_and_the_invalid_policy_decides(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text(json.dumps(rows(20)[0]) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 of the data is invalid"):
        prepare(SpecLike(str(src)), TOK, cache_dir=tmp_path / "c")
    p = prepare({"path": str(src), "invalid": "skip", "val_fraction": 0, "test_fraction": 0}, TOK,
                cache_dir=tmp_path / "c")
    assert len(p.train) == 1 and p.report["invalid_rows"][0]["line"] == 2
    with pytest.raises(DataError, match="unknown data setting 'pth'"):
        prepare({"pth": "x"}, TOK, cache_dir=tmp_path / "c")


def test_save_split_freezes_the_split(tmp_path: Path) -> None:
    src = write(tmp_path / "d.jsonl", rows(40))
    p = prepare(DataOptions(path=str(src)), TOK, cache_dir=tmp_path / "c")
    p.save_split(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "data_split.json").read_text())
    assert saved["fingerprint"] == p.fingerprint
    assert sorted(saved["splits"]["train"] + saved["splits"]["validation"] + saved["splits"]["test"]) == \
        list(range(1, 44))
    assert saved["counts"]["train"] == len(p.train)


def test_subset_keeps_every_label_in_each_split(tmp_path: Path) -> None:
    src = write(tmp_path / "d.jsonl", rows(400))
    full = prepare(DataOptions(path=str(src)), TOK, cache_dir=tmp_path / "c")
    pilot = prepare(DataOptions(path=str(src)), TOK, cache_dir=tmp_path / "c", subset=0.25)
    assert 0.2 * len(full.train) <= len(pilot.train) <= 0.3 * len(full.train)
    assert {e.label for e in pilot.train} == {e.label for e in full.train}
    assert {tuple(e.input_ids) for e in pilot.train} <= {tuple(e.input_ids) for e in full.train}
    assert any("representative subset" in line for line in pilot.description)
