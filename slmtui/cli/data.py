"""`slmtui data check DATASET`: the data report, computed by `python -m engine data-check`."""

from __future__ import annotations

import argparse
from typing import Any

from engine.safe_text import visible_tree
from slmtui.cli._common import UserError, plain_console, print_json
from slmtui.scrub_report import change_summary, replaced_by_type, scrub_warning


def register(sub: Any) -> None:
    parser = sub.add_parser("data", help="inspect and check datasets", description="Inspect and check datasets.")
    dsub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = dsub.add_parser(
        "check", help="report rows, invalid rows, duplicates, token lengths and personal data",
        description="Read a dataset and report what a run would see: rows, invalid rows (with line numbers), "
        "exact duplicates, token lengths, rows over the limit, label balance and personal data (scrubbed "
        "examples only). Without --tokenizer the demo tokenizer counts the tokens.")
    check.add_argument("dataset", help="a JSONL/JSON/CSV/Parquet file, a save_to_disk folder, or a hub id")
    check.add_argument("--tokenizer", help="tokenizer folder or hub id (default: the demo's)")
    check.add_argument("--max-length", type=int, help="token limit per row (default 1024)")
    check.add_argument("--map", help="FIELD=COLUMN pairs, e.g. prompt=question,response=answer")
    check.add_argument("--policy", choices=("truncate", "drop", "error"),
                       help="what a run does with rows over the limit (default truncate)")
    check.add_argument("--shape", choices=("auto", "instruction", "chat", "prompt_completion", "text"))
    check.add_argument("--format", choices=("auto", "jsonl", "json", "csv", "parquet", "disk", "hub"))
    check.add_argument("--split", help="split of a hub or save_to_disk dataset (default train)")
    check.add_argument("--label-column", help="label column (default: label/category when present)")
    check.add_argument("--template", choices=("auto", "default"), help="chat template to format with")
    check.add_argument("--scrub", choices=("auto", "on", "off"))
    check.add_argument("--scrub-types", help="personal-data types to scrub, e.g. EMAIL,NAME,ADDRESS (default all)")
    check.add_argument("--phone-regions", help="regions whose national phone formats count, e.g. US,GB,IN "
                       "(default: a list of 22; numbers with + count everywhere)")
    check.add_argument("--json", action="store_true", help="print the report as one JSON object")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from slmtui.data_service import DataCheckFailed, DataRequest, parse_map_text, run_data_check

    def items(text: str | None) -> tuple[str, ...]:
        return tuple(t.strip() for t in (text or "").split(",") if t.strip())

    given = {"tokenizer": args.tokenizer, "max_length": args.max_length, "overlength": args.policy,
             "shape": args.shape, "format": args.format, "split": args.split, "scrub": args.scrub,
             "label_column": args.label_column, "template": args.template}
    try:
        request = DataRequest(args.dataset, map=parse_map_text(args.map or ""), scrub_types=items(args.scrub_types),
                              phone_regions=items(args.phone_regions))
        # no time limit from the command line: a large dataset takes what it takes, and ctrl+c stops it
        report = run_data_check(replace(request, **{k: v for k, v in given.items() if v is not None}), timeout=None)
    except DataCheckFailed as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print_json(report)
    else:
        _print_report(report)
    return 0


def _print_report(report: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    r = visible_tree(report)  # rows, labels, column names and paths come from the dataset: shown, never obeyed
    console = plain_console()
    tok = r.get("tokenizer", {})
    console.print(Text(f"Data check: {r['source']['path']}", style="bold"))
    summary = Table(show_header=False)
    for key, value in (
        ("rows", r["rows"]), ("shape", f"{r['shape']}" + (" (detected)" if r["shape_detected"] else "")),
        ("columns", ", ".join(r["columns"])), ("template", r["template"]),
        ("tokenizer", tok.get("name", "")), ("invalid rows", r["invalid_rows_total"]),
        ("empty rows", r["empty_rows"]), ("exact duplicates", r["duplicates"]),
        ("token lengths", "  ".join(f"{k} {v}" for k, v in r["token_lengths"].items())),
        ("over max length", f"{r['over_max_length']}: {r['overlength_action']}"),
        ("personal data", f"{r['pii_rows']} rows, scrubbing {r['scrub']}"),
        ("scrubbing changed", change_summary(r) or "nothing"),
    ):
        summary.add_row(key, str(value))
    console.print(summary)
    if tok.get("note"):
        console.print(Text(f"Note: {tok['note']}.", style="italic"))
    console.print(Text("Personal data by type", style="bold"))
    pii = Table()
    pii.add_column("type")
    pii.add_column("found", justify="right")
    pii.add_column("replaced most (masked)")
    replaced = replaced_by_type(r)
    for kind, count in r["pii"].items():
        pii.add_row(kind, str(count), replaced.get(kind, ""))
    console.print(pii)
    if scrub_warning(r):
        console.print(Text(f"Warning: {scrub_warning(r)}", style="bold yellow"))
    if r.get("label_balance"):
        console.print(Text(f"Label balance ({r['label_column']})", style="bold"))
        labels = Table()
        labels.add_column("label")
        labels.add_column("rows", justify="right")
        for label, count in r["label_balance"].items():
            labels.add_row(str(label), str(count))
        console.print(labels)
    if r["invalid_rows"]:
        console.print(Text(f"Invalid rows (first 10 of {r['invalid_rows_total']})", style="bold"))
        bad = Table()
        bad.add_column("line", justify="right")
        bad.add_column("reason")
        for item in r["invalid_rows"][:10]:
            bad.add_row(str(item["line"]), item["reason"])
        console.print(bad)
    for item in r.get("preview", [])[:2]:
        text, room = Text(), 800
        for seg in item["segments"]:
            piece = seg["text"] if len(seg["text"]) <= room else seg["text"][: max(0, room - 1)] + "…"
            room -= len(piece)
            text.append(piece, style="bold" if seg["trained"] else "dim")
        console.print(Text(f"Row at line {item['line']} (bold is trained, dim is masked):", style="underline"))
        console.print(text)
