"""`python -m engine eval --model M --data D [--subset N]`: a quick evaluation on a slice of your data.

On a representative subset of the validation (or test) split: loss and perplexity on the responses, bits
per character (comparable across tokenizers), exact-match accuracy by greedy generation when the task is
classification-like (the first line of the answer, e.g. "Category: billing"), generation tokens/s and peak
memory. Progress goes to `HOME/evals/<id>/events.jsonl`; the result is printed as one JSON object and kept in
`HOME/evals/<id>/summary.json`. A problem the user can fix is one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.data.options import SCRUB, SHAPES, TEMPLATES
from engine.paths import evals_dir, new_eval_id
from engine.protocol import EVENTS_FILE, SPEC_FILE, SUMMARY_FILE, EventWriter, encode, write_json_atomic
from engine.safe_text import visible
from engine.spec import DataSpec, SpecError, load_spec

#: Checklist metrics this command can compute, and why it leaves the others to people.
NOT_COMPUTABLE = {
    "benchmark": "a task benchmark needs its own test set and scorer",
    "coherence": "coherence is rated by people or a judge model",
    "relevance": "relevance is rated by people or a judge model",
}
DEFAULT_METRICS = ("perplexity", "accuracy")
#: Accuracy is computed when every example has a label, or the answers' first lines take few values.
MAX_DISTINCT_ANSWER_SHARE = 0.5


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments (`slmtui eval` passes them through)."""
    p = argparse.ArgumentParser(prog="python -m engine eval", description=__doc__)
    p.add_argument("--model", required=True, help="hub id, model folder, adapter folder or run folder")
    p.add_argument("--base", action="store_true", help="evaluate the base model of --model (a run or adapter)")
    p.add_argument("--data", default="", help="dataset (file, save_to_disk folder or hub id) or a run folder "
                   "(its data settings); default: the run's data when --model is a run")
    p.add_argument("--split", choices=("validation", "test"), default="validation")
    p.add_argument("--subset", type=int, default=64, help="examples to evaluate, chosen representatively (0: all)")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help="checklist metric keys, comma-separated (accuracy, perplexity, benchmark, ...)")
    p.add_argument("--max-new-tokens", type=int, default=0, help="generation limit (0: from the answers' length)")
    p.add_argument("--batch", type=int, default=8, help="examples per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--id", default="", help="the evaluation's id (its folder under HOME/evals)")
    data = p.add_argument_group("data options (as the [data] table of a run spec)")
    data.add_argument("--format", default="auto")
    data.add_argument("--split-name", default="train", help="split of a hub or save_to_disk dataset")
    data.add_argument("--shape", choices=SHAPES, default="auto")
    data.add_argument("--map", default="", help="FIELD=COLUMN pairs, e.g. prompt=question,response=answer")
    data.add_argument("--template", choices=TEMPLATES, default="auto")
    data.add_argument("--system-prompt", default="")
    data.add_argument("--max-length", type=int, default=1024)
    data.add_argument("--label-column", default="")
    data.add_argument("--scrub", choices=SCRUB, default="auto")
    data.add_argument("--val-fraction", type=float, default=0.05)
    data.add_argument("--test-fraction", type=float, default=0.05)
    data.add_argument("--split-seed", type=int, default=0)
    return p


def data_spec(args: argparse.Namespace, run_data: DataSpec | None) -> DataSpec:
    """The data settings: a run folder's, the model's run's, or built from the options."""
    from engine.data.options import DataError, parse_map

    if args.data and (Path(args.data).expanduser() / SPEC_FILE).is_file():
        try:
            return load_spec(Path(args.data).expanduser() / SPEC_FILE, check_files=False).data
        except SpecError as exc:
            raise DataError(f"the run {args.data} has a broken spec ({exc.messages[0]})") from None
    if not args.data:
        if run_data is None:
            raise DataError("--data is missing; give a dataset file or folder, or evaluate a run folder.")
        return run_data
    return DataSpec(path=args.data, format=args.format, split_name=args.split_name, shape=args.shape,
                    map=parse_map(args.map), template=args.template, system_prompt=args.system_prompt,
                    max_length=args.max_length, scrub=args.scrub, val_fraction=args.val_fraction,
                    test_fraction=args.test_fraction, split_seed=args.split_seed, label_column=args.label_column)


def select_subset(examples: list[Any], n: int, seed: int) -> list[int]:
    """About `n` representative indices, stratified by label and by length in characters (not tokens, so
    every model, whatever its tokenizer, is scored on the same rows)."""
    from engine.data.split import representative_subset

    if n <= 0 or n >= len(examples):
        return list(range(len(examples)))
    lengths = [len(e.prompt) + len(e.response) for e in examples]
    chosen = representative_subset(lengths, [e.label for e in examples], n / len(examples), seed=seed)
    return chosen[:n] if len(chosen) > n else chosen


def answer_line(text: str) -> str:
    """The first non-empty line, normalised: what exact-match accuracy compares."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return " ".join(line.split()).casefold().rstrip(".")


def classification_like(examples: list[Any]) -> bool:
    """Labelled examples, or answers whose first lines repeat (a class per line)."""
    if not examples:
        return False
    if all(e.label for e in examples):
        return True
    distinct = {answer_line(e.response) for e in examples}
    return len(examples) >= 4 and len(distinct) <= MAX_DISTINCT_ANSWER_SHARE * len(examples)


def score(im: Any, examples: list[Any], batch: int, progress: Any) -> dict[str, float]:
    """Loss per response token, perplexity, bits per response character, and scoring throughput."""
    import torch

    from engine.train.batching import collate
    from engine.train.evaluation import autocast_context, perplexity, token_loss_sum

    total = 0.0
    count = tokens = 0
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(examples), batch):
            chunk = examples[start : start + batch]
            cpu = collate(chunk, im.tokenizer.pad_token_id)
            tokens += int(cpu["attention_mask"].sum())
            with autocast_context(im.device, im.precision.autocast):
                loss_sum, n = token_loss_sum(im.model, {k: v.to(im.device) for k, v in cpu.items()})
            total += float(loss_sum)
            count += n
            progress("scoring", min(start + batch, len(examples)), len(examples))
    seconds = max(time.perf_counter() - started, 1e-9)
    loss = total / count if count else float("nan")
    chars = sum(len(e.response) + 1 for e in examples)  # +1: the end-of-turn the model must also predict
    return {"loss": loss, "perplexity": perplexity(loss), "bits_per_char": total / math.log(2) / chars if chars
            else float("nan"), "score_tokens_per_s": tokens / seconds, "target_tokens": count}


def generate(im: Any, examples: list[Any], max_new_tokens: int, batch: int, progress: Any) -> tuple[list[str], float]:
    """Greedy answers for each example's prompt (left-padded batches); returns them and tokens/s."""
    import torch

    from engine.train.evaluation import autocast_context, prompt_ids

    tok, outputs = im.tokenizer, []
    stop = {tok.eos_token_id, tok.pad_token_id}
    new_tokens, seconds = 0, 0.0
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        ids = [prompt_ids(e, tok) for e in chunk]
        width = max(len(i) for i in ids)
        input_ids = torch.full((len(ids), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        began = time.perf_counter()
        with torch.no_grad(), autocast_context(im.device, im.precision.autocast):
            out = im.model.generate(input_ids=input_ids.to(im.device), attention_mask=mask.to(im.device),
                                    max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        seconds += time.perf_counter() - began
        for row in out[:, width:].tolist():
            kept = []
            for t in row:
                if t in stop:
                    break
                kept.append(t)
            new_tokens += len(kept) + (len(kept) < len(row))  # the stop token was generated too
            outputs.append(tok.decode(kept, skip_special_tokens=True))
        progress("generating", min(start + batch, len(examples)), len(examples))
    return outputs, new_tokens / max(seconds, 1e-9)


def answer_budget(im: Any, examples: list[Any]) -> int:
    """Enough new tokens for the longest reference answer line, plus a little."""
    longest = max((len(im.tokenizer(answer_line(e.response) or e.response[:80], add_special_tokens=False)["input_ids"])
                   for e in examples), default=16)
    return min(64, longest + 4)


def evaluate(args: argparse.Namespace, writer: EventWriter, eval_dir: Path) -> dict[str, Any]:
    """The whole evaluation; raises the engine's user errors (ModelError, DataError)."""
    from engine.data import prepare
    from engine.inference import (
        base_of,
        load_for_inference,
        peak_memory,
        reset_peak_memory,
        resolve_model_ref,
        set_threads,
    )
    from engine.paths import cache_dir

    set_threads(args.threads)
    started = time.perf_counter()
    requested = [m.strip() for m in args.metrics.split(",") if m.strip()]
    ref = resolve_model_ref(args.model)
    if args.base:
        ref = base_of(ref)
    spec = replace(data_spec(args, ref.data), train_on_prompt=False)  # the loss is on the responses only
    writer.emit("log", level="info", text=f"Loading {args.model}.")
    im = load_for_inference(ref, args.device, args.precision)
    reset_peak_memory(im.device)
    def log(text: str) -> None:
        writer.emit("log", level="info", text=text)

    prepared = prepare(spec, im.tokenizer, cache_dir=cache_dir(), log=log)
    split = getattr(prepared, args.split)
    if not split:
        from engine.data.options import DataError

        raise DataError(f"the {args.split} split is empty; raise data.{args.split[:3]}_fraction or add rows.")
    chosen = select_subset(split, args.subset, spec.split_seed)
    examples = [split[i] for i in chosen]
    lines = prepared.split_lines.get(args.split, [])
    writer.emit("started", model=ref.to_json(), data={"path": spec.path, "fingerprint": prepared.fingerprint,
                "split": args.split, "examples": len(examples)}, device=str(im.device),
                precision=im.precision.name, params_total=im.params_total, metrics=requested)

    def progress(phase: str, done: int, total: int) -> None:
        writer.emit("progress", phase=phase, done=done, total=total)

    result: dict[str, Any] = {"id": writer.run, "dir": str(eval_dir), **ref.to_json(), "data": spec.path,
                              "data_fingerprint": prepared.fingerprint, "split": args.split,
                              "examples": len(examples), "subset": args.subset,
                              "lines": [lines[i] for i in chosen] if len(lines) == len(split) else [],
                              "metrics_requested": requested, "device": str(im.device),
                              "precision": im.precision.name, "params_total": im.params_total}
    result.update(score(im, examples, args.batch, progress))
    not_computed = {m: NOT_COMPUTABLE.get(m, f"{m!r} is not a metric this command knows") for m in requested
                    if m not in ("accuracy", "perplexity")}
    result["accuracy"] = None
    want_accuracy = "accuracy" in requested
    if want_accuracy and not classification_like(examples):
        not_computed["accuracy"] = "the answers are not classification-like (no labels, few repeated first lines)"
        want_accuracy = False
    gen_examples = examples if want_accuracy else examples[: min(4, len(examples))]
    budget = args.max_new_tokens or (answer_budget(im, examples) if want_accuracy else 32)
    outputs, tokens_per_s = generate(im, gen_examples, budget, args.batch, progress)
    correct = [answer_line(o) == answer_line(e.response) for o, e in zip(outputs, gen_examples, strict=True)]
    if want_accuracy:
        result["accuracy"] = sum(correct) / len(correct)
        result["accuracy_method"] = "exact match of the answer's first line, greedy generation"
    result["not_computed"] = not_computed
    result["tokens_per_s"] = tokens_per_s
    result["max_new_tokens"] = budget
    result["mem_peak_gib"], result["mem_kind"] = peak_memory(im.device)
    result["samples"] = [{"prompt": e.prompt[-400:], "reference": e.response, "output": o, "correct": c}
                         for e, o, c in list(zip(gen_examples, outputs, correct, strict=True))[:3]]
    result["load_seconds"] = round(im.load_seconds, 2)
    result["seconds"] = round(time.perf_counter() - started, 2)
    writer.emit("eval", step=0, val_loss=result["loss"], perplexity=result["perplexity"],
                accuracy=result["accuracy"], bits_per_char=result["bits_per_char"], tokens_per_s=tokens_per_s,
                mem_peak_gib=result["mem_peak_gib"], samples=result["samples"], examples=len(examples))
    return result


def main(argv: list[str]) -> int:
    from engine.data.options import DataError
    from engine.modeling import ModelError

    args = build_parser().parse_args(argv)
    root = evals_dir()
    if args.id and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.id):
        print(f"--id {args.id!r} must be letters, digits, dots, dashes and underscores.", file=sys.stderr)
        return 2
    eval_id = args.id or new_eval_id(args.model, root)
    eval_dir = root / eval_id
    eval_dir.mkdir(parents=True, exist_ok=True)
    with EventWriter(eval_dir / EVENTS_FILE, eval_id) as writer:
        status, message = "failed", ""
        result: dict[str, Any] = {}
        try:
            result = evaluate(args, writer, eval_dir)
            status = "completed"
        except (ModelError, DataError) as exc:
            message = str(exc)
        except Exception as exc:  # a program error: the traceback stays on stderr (engine.log for humans)
            traceback.print_exc()
            message = f"The evaluation failed unexpectedly ({type(exc).__name__}: {exc})."
        if status != "completed":
            result = {"id": eval_id, "dir": str(eval_dir), "model": args.model, "data": args.data, "error": message}
        result.update(status=status, t=time.time())
        write_json_atomic(eval_dir / SUMMARY_FILE, result)
        writer.emit("finished", status=status, summary=result)
    if status != "completed":
        print(visible(message), file=sys.stderr)
        return 1
    sys.stdout.write(encode(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
