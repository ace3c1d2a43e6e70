"""`prepare()`: source -> checked, scrubbed, formatted, tokenised, split examples, cached by fingerprint.

The fingerprint covers the source's content, the mapping and shape, the template, the tokenizer, the length
policy, the scrub setting, the split fractions and seed, and the subset: the same inputs are a cache hit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.data.analyse import Analysis, analyse
from engine.data.load import source_hash
from engine.data.options import DataError, coerce
from engine.data.split import SPLITS, representative_subset, split_indices

PIPELINE_VERSION = 1
SPLIT_FILE = "data_split.json"


@dataclass
class Example:
    """One training example: token ids, labels (-100 where the loss is masked), and its scrubbed text."""

    input_ids: list[int]
    labels: list[int]
    prompt: str
    response: str
    label: str | None = None


@dataclass
class Prepared:
    """The prepared splits, their fingerprint, the data-check report and what was done, in sentences."""

    train: list[Example]
    validation: list[Example]
    test: list[Example]
    fingerprint: str
    report: dict[str, Any]
    description: list[str]
    split_lines: dict[str, list[int]] = field(default_factory=dict)

    def save_split(self, run_dir: Path) -> None:
        """Freeze the split (source line numbers per split) and the fingerprint into `run_dir`."""
        doc = {"fingerprint": self.fingerprint, "description": self.description, "splits": self.split_lines,
               "counts": {name: len(getattr(self, name)) for name in SPLITS}}
        _write_atomic(Path(run_dir) / SPLIT_FILE, json.dumps(doc, ensure_ascii=False))


def tokenizer_id(tokenizer: Any) -> str:
    """A digest of the tokenizer's vocabulary, merges, special tokens and chat template."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    for attr in ("bos_token", "eos_token", "pad_token", "chat_template"):
        digest.update(repr(getattr(tokenizer, attr, None)).encode())
    return digest.hexdigest()[:24]


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of the code and word lists that shape prepared data, so a changed pattern is a cache miss."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    pii_files = sorted(str(p.relative_to(root)) for p in (root / "pii").glob("*.py"))
    for rel in (*pii_files, "data_files/names.txt", "data/load.py", "data/shape.py", "data/format.py",
                "data/analyse.py", "data/split.py"):
        digest.update((root / rel).read_bytes())
    for package in ("phonenumbers", "python-stdnum"):  # their metadata and rules decide what is scrubbed
        digest.update(importlib.metadata.version(package).encode())
    return digest.hexdigest()[:24]


def fingerprint(opts: Any, content_hash: str, tok_id: str, subset: float | None) -> str:
    """The hex fingerprint of everything that decides the prepared data."""
    settings = {k: v for k, v in asdict(opts).items() if k != "path"}
    doc = {"v": PIPELINE_VERSION, "code": code_digest(), "content": content_hash, "settings": settings,
           "tokenizer": tok_id, "subset": subset}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def prepare(data: Any, tokenizer: Any, *, cache_dir: Path, subset: float | None = None,
            log: Callable[[str], None] | None = None) -> Prepared:
    """Prepare the dataset described by `data` (a DataSpec) for `tokenizer`; see the module docstring.

    Raises `DataError` (one sentence) for anything the user can fix.
    """
    say = log or (lambda _msg: None)
    opts = coerce(data)
    if subset is not None and not 0 < subset <= 1:
        raise DataError(f"subset is {subset}; use a fraction in (0, 1].")
    tok_id = tokenizer_id(tokenizer)
    content = source_hash(opts.path, opts.format, opts.split_name)
    if content is not None:
        fp = fingerprint(opts, content, tok_id, subset)
        cached = _read_cache(Path(cache_dir) / "data" / f"{fp}.json")
        if cached is not None:
            say(f"Prepared data found in the cache ({fp[:12]}).")
            return cached
    result = analyse(opts, tokenizer, strict=True, log=say)
    fp = fingerprint(opts, result.content_hash, tok_id, subset)
    cache_file = Path(cache_dir) / "data" / f"{fp}.json"
    prepared = _assemble(result, opts, fp, subset)
    _write_atomic(cache_file, json.dumps(_to_cache(prepared), ensure_ascii=False, separators=(",", ":")))
    say(f"Prepared data cached as {fp[:12]}.")
    return prepared


def _assemble(result: Analysis, opts: Any, fp: str, subset: float | None) -> Prepared:
    kept = result.kept
    splits = split_indices([r.key for r in kept], [r.label for r in kept], opts.val_fraction,
                           opts.test_fraction, opts.split_seed)
    if subset is not None and subset < 1:
        for name in SPLITS:
            idx = splits[name]
            chosen = representative_subset([len(kept[i].input_ids) for i in idx], [kept[i].label for i in idx],
                                           subset, seed=opts.split_seed)
            splits[name] = [idx[j] for j in chosen]
    examples = {name: [Example(kept[i].input_ids, kept[i].labels, kept[i].prompt, kept[i].response,
                               kept[i].label) for i in idx] for name, idx in splits.items()}
    counts = {name: len(v) for name, v in examples.items()}
    report = dict(result.report, splits=counts, fingerprint=fp)
    description = [*result.description,
                   f"Split {counts['train']} / {counts['validation']} / {counts['test']} rows "
                   f"(train / validation / test) with seed {opts.split_seed}"
                   + (f", stratified by {result.report['label_column']}" if result.report.get("label_column")
                      else "") + "; exact duplicates kept in one split."]
    if subset is not None and subset < 1:
        description.append(f"Took a representative subset of {subset:.0%} (stratified by length and label).")
    return Prepared(examples["train"], examples["validation"], examples["test"], fp, report, description,
                    {name: [kept[i].line for i in idx] for name, idx in splits.items()})


def _to_cache(p: Prepared) -> dict[str, Any]:
    return {"v": PIPELINE_VERSION, "fingerprint": p.fingerprint, "report": p.report,
            "description": p.description, "split_lines": p.split_lines,
            "splits": {name: [[e.input_ids, e.labels, e.prompt, e.response, e.label] for e in getattr(p, name)]
                       for name in SPLITS}}


def _read_cache(path: Path) -> Prepared | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("v") != PIPELINE_VERSION:
            return None
        splits = {name: [Example(*item) for item in doc["splits"][name]] for name in SPLITS}
        return Prepared(splits["train"], splits["validation"], splits["test"], doc["fingerprint"],
                        doc["report"], doc["description"], doc.get("split_lines", {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no cache, or a damaged one: prepare again


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
