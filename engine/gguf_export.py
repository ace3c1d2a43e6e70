"""`export --format gguf`: merge, convert to one GGUF file, write an Ollama Modelfile, check parity, record it.

OUT receives `<name>-<quant>.gguf` and `Modelfile`. The merged Hugging Face model is built in a hidden folder
inside OUT (the converter and the parity check read it) and removed at the end. The figures go into the
result, the run's `summary.json` (`export`) and an `exported` event the console turns into a journal entry;
a running run's folder is left alone (its engine owns those files).
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from engine.gguf_convert import GgufError, check_convertible
from engine.protocol import EVENTS_FILE, SUMMARY_FILE, EventWriter, read_json, write_json_atomic

#: Examples of the test split the parity check compares on, and the tokens of each it reads.
PARITY_EXAMPLES = 8
PARITY_MAX_TOKENS = 128


def file_stem(name: str) -> str:
    """A run name as a file name: letters, digits, dots, dashes and underscores ("model" if none is left)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


def base_config(spec: Any, source: Path) -> dict[str, Any]:
    """The model's `config.json` as a dict: a full fine-tune's own, else the base model's (hub or folder)."""
    from transformers import AutoConfig

    where = str(source) if (source / "config.json").is_file() else spec.model.name
    return dict(AutoConfig.from_pretrained(where).to_dict())


def parity_examples(spec: Any, hf_dir: Path) -> list[Any]:
    """A few prepared rows of the run's test split (else validation, else train), truncated for speed."""
    from dataclasses import replace

    from transformers import AutoTokenizer

    from engine.data.prepare import prepare
    from engine.paths import cache_dir

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    prepared = prepare(replace(spec.data, train_on_prompt=False), tokenizer, cache_dir=cache_dir())
    rows = prepared.test or prepared.validation or prepared.train
    chosen = rows[:PARITY_EXAMPLES]
    return [replace(e, input_ids=e.input_ids[:PARITY_MAX_TOKENS], labels=e.labels[:PARITY_MAX_TOKENS])
            for e in chosen]


def parity(spec: Any, hf_dir: Path, gguf_file: Path, quant: str) -> dict[str, Any]:
    """The parity check's figures, or why it was skipped."""
    from engine.gguf_parity import ENABLE_HINT, llama_cpp_available, parity_check

    if not llama_cpp_available():
        return {"checked": False, "reason": f"llama-cpp-python is not installed; {ENABLE_HINT}."}
    examples = parity_examples(spec, hf_dir)
    if not examples:
        return {"checked": False, "reason": "the run's data has no rows to compare on."}
    return parity_check(hf_dir, gguf_file, quant, examples)


def export_gguf(run_dir: Path, spec: Any, source: Path, out: Path, quant: str, dtype_name: str) -> dict[str, Any]:
    """Write OUT's GGUF and Modelfile from the run's weights; returns the result (parity included)."""
    from engine.commands.export import merge
    from engine.gguf_convert import write_gguf
    from engine.modeling import load_tokenizer
    from engine.ollama_modelfile import modelfile_text

    check_convertible(base_config(spec, source), quant)  # before any work
    out.mkdir(parents=True, exist_ok=True)
    hf_dir = out / ".merged"
    try:
        if source.name == "adapter":
            merge(spec, source, hf_dir, dtype_name)
        else:
            shutil.copytree(source, hf_dir)
            if not (hf_dir / "tokenizer_config.json").exists():
                load_tokenizer(spec.model).save_pretrained(hf_dir)
        name = spec.name or run_dir.name
        gguf_file = out / f"{file_stem(name)}-{quant}.gguf"
        facts = write_gguf(hf_dir, gguf_file, quant, name)
        (out / "Modelfile").write_text(modelfile_text(gguf_file.name, facts), encoding="utf-8")
        checked = parity(spec, hf_dir, gguf_file, quant)
    finally:
        shutil.rmtree(hf_dir, ignore_errors=True)
    return {"format": "gguf", "quant": quant, "gguf": str(gguf_file), "modelfile": str(out / "Modelfile"),
            "arch": facts["arch"], "tensors": facts["tensors"], "chat_template": bool(facts["chat_template"]),
            "parity": checked}


def record(run_dir: Path, result: dict[str, Any]) -> bool:
    """Put the export in the run's summary and events (a journal entry), under the run's lock so no engine
    writes them meanwhile; False when an engine holds the run (it owns those files while it trains)."""
    from engine.runlock import RunLock, RunLocked

    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except RunLocked:
        return False
    try:
        _write_record(run_dir, result)
    finally:
        lock.release()
    return True


def _write_record(run_dir: Path, result: dict[str, Any]) -> None:
    parity_figures = {k: v for k, v in result["parity"].items() if k != "chat_template"}
    template = result["parity"].get("chat_template") or {}
    entry = {"at": time.time(), "out": result["out"], "format": result["format"], "quant": result["quant"],
             "bytes": result["bytes"], "parity": {**parity_figures, "chat_template_identical": template.get(
                 "identical")}}
    summary = read_json(run_dir / SUMMARY_FILE)
    summary["export"] = entry
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    with EventWriter(run_dir / EVENTS_FILE, run_dir.name) as writer:
        writer.emit("exported", **entry)


__all__ = ["GgufError", "export_gguf", "record"]
