"""A run's model as one GGUF file for llama.cpp and Ollama, from the console or the CLI: `python -m engine
export RUN_DIR OUT --format gguf` in a subprocess (the console never imports the ML stack), and its result in
sentences."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Longest a GGUF export may take from the console (merge, write, parity check) before it is given up.
EXPORT_TIMEOUT_S = 3600.0


def default_gguf_dir(home: Path, run_id: str, quant: str = "f16") -> Path:
    """Where the console offers to write a run's GGUF: `HOME/exports/<run>-gguf-<quant>`."""
    return home / "exports" / f"{run_id}-gguf-{quant}"


def export_gguf(run_dir: Path, out: Path, quant: str = "f16", home: Path | None = None,
                cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run the engine's GGUF export; returns its JSON result, or raises `EngineError` (one sentence)."""
    from slmtui.engine_proc import run_engine_json

    result: dict[str, Any] = run_engine_json("export", str(run_dir), str(out), "--format", "gguf", "--quant", quant,
                                             home=home, timeout=EXPORT_TIMEOUT_S, cancelled=cancelled)
    return result


def gguf_lines(result: dict[str, Any]) -> list[str]:
    """What a GGUF export wrote and how its parity check went, in sentences (to print through `visible`)."""
    lines = [f"Wrote {result['gguf']} ({result['quant']}, {result['bytes'] / 1e6:.1f} MB) and "
             f"{result['modelfile']}.", f"Ollama: cd {result['out']} && ollama create NAME -f Modelfile"]
    if not result.get("recorded"):
        lines.append("The run's engine holds its folder, so the run's summary and journal do not show this export.")
    parity = result["parity"]
    if not parity.get("checked"):
        return [*lines, f"Parity check skipped: {parity.get('reason', '')}"]
    if "top1_agreement" in parity:
        lines.append(f"Parity with transformers on {parity['examples']} test examples: top-1 next token "
                     f"{parity['top1_agreement']:.1%} ({parity['top1_agreement_decisive']:.1%} beyond "
                     f"{parity['near_ties']} near ties), greedy generations identical {parity['greedy_identical']}/"
                     f"{parity['examples']}, perplexity {parity['perplexity']['llama.cpp']:.3f} against "
                     f"{parity['perplexity']['transformers']:.3f} ({parity['perplexity_gap']:+.2%}), chat template "
                     + ("identical." if parity["chat_template"].get("identical") else "DIFFERENT."))
    return lines + [f"Parity check failed: {p}" for p in parity["problems"]]
