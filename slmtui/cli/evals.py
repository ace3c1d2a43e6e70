"""`slmtui eval` and `slmtui evals`: quick evaluations side by side, and a run's base against its fine-tuned model."""

from __future__ import annotations

import argparse
from typing import Any

from slmtui.cli._common import UserError, plain_console, print_json, say

#: Data options passed through to `python -m engine eval` (flag, dest).
DATA_OPTIONS = ("format", "split-name", "shape", "map", "template", "system-prompt", "max-length", "label-column",
                "scrub", "val-fraction", "test-fraction", "split-seed")
COLUMNS = (("loss", "loss", ".4f"), ("perplexity", "ppl", ".2f"), ("bits_per_char", "bits/char", ".3f"),
           ("accuracy", "accuracy", ".3f"), ("tokens_per_s", "tok/s", ",.0f"), ("mem_peak_gib", "peak GiB", ".2f"))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `eval` and `evals`."""
    ev = sub.add_parser("eval", help="evaluate models on a representative slice of your data, side by side",
                        description="Evaluate each --model (hub id, model folder, adapter or run folder) on a "
                        "representative subset of the validation split: loss and perplexity on the responses, "
                        "the checklist's computable success metrics (exact-match accuracy for classification-like "
                        "tasks), tokens/s and peak memory. One engine process per model; results are stored. "
                        "--run evaluates a run's fine-tuned model against its base on the run's test split.")
    ev.add_argument("--model", action="append", default=[], help="a model to evaluate (repeat for more)")
    ev.add_argument("--run", help="compare a run's fine-tuned model with its base (id, unique prefix or last)")
    ev.add_argument("--data", default="", help="dataset file, folder or hub id (default with --run: the run's)")
    ev.add_argument("--subset", type=int, default=64, help="examples per model, chosen representatively (0: all) [64]")
    ev.add_argument("--split", choices=("validation", "test"), default="validation")
    ev.add_argument("--metrics", default="", help="metric keys (default: the checklist's metrics with a target)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--threads", type=int, default=0, help="torch CPU threads per engine (0: torch's default)")
    ev.add_argument("--max-new-tokens", type=int, default=0, help="generation limit (0: from the answers)")
    for flag in DATA_OPTIONS:
        ev.add_argument(f"--{flag}", default=None, help=argparse.SUPPRESS)
    ev.add_argument("--json", action="store_true", help='print {"results": [...]} (with --run: and "gain")')
    ev.set_defaults(handler=cmd_eval)

    ls = sub.add_parser("evals", help="list stored evaluation results", description="List stored evaluation results.")
    ls.add_argument("--model", default=None, help="only this model's")
    ls.add_argument("--run", default=None, help="only this run's comparison")
    ls.add_argument("--json", action="store_true", help='print {"results": [...]}')
    ls.set_defaults(handler=cmd_evals)


def _progress(quiet: bool) -> Any:
    """An on_event callback printing one line per phase change on stderr (nothing with --json)."""
    seen: set[tuple[str, str]] = set()

    def on_event(model: str, event: dict[str, Any]) -> None:
        if quiet:
            return
        kind = event.get("type")
        if kind == "progress" and (model, event.get("phase", "")) not in seen:
            seen.add((model, str(event.get("phase", ""))))
            say(f"{model}: {event.get('phase')} {event.get('total')} examples", err=True)
        elif kind == "started":
            say(f"{model}: loaded on {event.get('device')} ({event.get('precision')})", err=True)
    return on_event


def cmd_eval(args: argparse.Namespace) -> int:
    from slmtui.evals import EvalFailed, EvalRequest, checklist_metrics, evaluate_models, rank
    from slmtui.store import Store

    store = Store()
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip()) or checklist_metrics(store)
    if args.run:
        if args.model:
            raise UserError("Give either --run or --model, not both.")
        return _eval_run(args, store)
    if not args.model:
        raise UserError("Name at least one --model (a hub id, a model folder, an adapter or a run folder), or --run.")
    options = tuple((flag, str(getattr(args, flag.replace("-", "_")))) for flag in DATA_OPTIONS
                    if getattr(args, flag.replace("-", "_")) is not None)
    requests = [EvalRequest(model=m, data=args.data, subset=args.subset, split=args.split, metrics=metrics,
                            options=options, device=args.device, threads=args.threads,
                            max_new_tokens=args.max_new_tokens) for m in args.model]
    try:
        outcome = evaluate_models(requests, store, on_event=_progress(args.json))
    except EvalFailed as exc:
        raise UserError(str(exc)) from None
    ranked = rank(outcome.results)
    if args.json:
        print_json({"results": [r.to_json() for r in ranked], "failures": outcome.failures})
    elif ranked:
        _print_table(ranked, "Quick evaluation, best first")
    for model, why in outcome.failures.items():
        say(f"slmtui: {model}: {why}", err=True)
    return 1 if outcome.failures else 0


def _eval_run(args: argparse.Namespace, store: Any) -> int:
    from engine.paths import runs_dir
    from slmtui.evals import EvalFailed, describe_gain, evaluate_run
    from slmtui.runs import RunNotFound, resolve_run

    try:
        run_dir = resolve_run(args.run, runs_dir())
    except RunNotFound as exc:
        raise UserError(str(exc)) from None
    try:
        found = evaluate_run(run_dir, store, subset=args.subset, on_event=_progress(args.json), threads=args.threads)
    except EvalFailed as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print_json({"run": found.run, "results": [found.fine_tuned.to_json(), found.base.to_json()],
                    "gain": found.gain})
        return 0
    _print_table([found.fine_tuned, found.base], f"Run {found.run}: fine-tuned against base")
    say(f"Gain: {describe_gain(found.gain)}")
    return 0


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _print_table(results: list[Any], title: str) -> None:
    from rich.table import Table

    table = Table("#", "model", "role", "n", *(label for _, label, _ in COLUMNS), title=title)
    table.columns[1].overflow = "fold"
    for i, r in enumerate(results, 1):
        table.add_row(str(i), _short(r.model), r.role or r.details.get("kind", ""), f"{r.examples} {r.split[:3]}",
                      *(_fmt(r.metric(key), spec) for key, _, spec in COLUMNS))
    plain_console().print(table)


def _short(model: str, width: int = 48) -> str:
    return model if len(model) <= width else "…" + model[-(width - 1):]


def cmd_evals(args: argparse.Namespace) -> int:
    from slmtui.store import Store

    found = Store().eval_results(model=args.model, run=args.run)
    if args.json:
        print_json({"results": [r.to_json() for r in found]})
    elif not found:
        print("No evaluations yet; run one with: slmtui eval --model M --data D")
    else:
        _print_table(list(reversed(found)), "Stored evaluations, newest first")
    return 0
