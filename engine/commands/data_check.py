"""`python -m engine data-check DATASET [options]`: read a dataset and print its report as one JSON object.

Exits 0 whenever the source could be read, whatever the report says; a problem the user can fix (no such
file, a shape it cannot tell, a tokenizer it cannot load) is one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.data.options import OVERLENGTH, SCRUB, SHAPES, DataError, DataOptions, parse_list, parse_map
from engine.safe_text import safe_json_dumps, visible


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments (the `slmtui data check` wrapper passes them through)."""
    p = argparse.ArgumentParser(prog="python -m engine data-check", description=__doc__)
    p.add_argument("dataset", help="a JSONL/JSON/CSV/Parquet file, a save_to_disk folder, or a hub id")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder or hub id (default: the demo's)")
    p.add_argument("--max-length", type=int, default=1024, help="token limit per row (default 1024)")
    p.add_argument("--map", default="", help="FIELD=COLUMN pairs, e.g. prompt=question,response=answer")
    p.add_argument("--policy", choices=OVERLENGTH, default="truncate", help="what to do with rows over the limit")
    p.add_argument("--shape", choices=SHAPES, default="auto")
    p.add_argument("--format", default="auto", help="auto, jsonl, json, csv, parquet, disk or hub")
    p.add_argument("--split", default="train", help="split of a hub or save_to_disk dataset")
    p.add_argument("--label-column", default="", help="label column (default: label/category when present)")
    p.add_argument("--template", choices=("auto", "default"), default="auto")
    p.add_argument("--system-prompt", default="")
    p.add_argument("--scrub", choices=SCRUB, default="auto")
    p.add_argument("--scrub-types", default="", help="comma-separated personal-data types to scrub (default all)")
    p.add_argument("--phone-regions", default="", help="comma-separated regions for national phone formats")
    p.add_argument("--preview", type=int, default=5, help="rows to show formatted (default 5)")
    return p


def load_tokenizer(name: str | None) -> tuple[Any, dict[str, Any]]:
    """The tokenizer to measure with, and how the report should describe it."""
    from transformers import AutoTokenizer

    info: dict[str, Any] = {"name": name, "default_demo": name is None}
    if name is None:
        from engine.demo import demo_paths, ensure_demo

        ensure_demo(log=lambda m: print(m, file=sys.stderr))
        path = demo_paths()[1]
        name = str(path)
        info.update(name=name, note="no tokenizer was given, so the token counts use the demo tokenizer, "
                                    "which differs from your model's: give your model's tokenizer")
    try:
        return AutoTokenizer.from_pretrained(name), info
    except Exception as exc:  # missing folder, unknown id, offline: one message to the user
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DataError(f"cannot load the tokenizer {name!r} ({first}); give a model folder or hub id.") from None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The report for the parsed arguments; raises `DataError` on a user error."""
    from engine.data.analyse import analyse
    from engine.data.options import coerce

    opts: DataOptions = coerce(DataOptions(
        path=args.dataset, format=args.format, split_name=args.split, shape=args.shape, map=parse_map(args.map),
        template=args.template, system_prompt=args.system_prompt, max_length=args.max_length,
        overlength=args.policy, scrub=args.scrub, scrub_types=parse_list(args.scrub_types),
        phone_regions=parse_list(args.phone_regions), label_column=args.label_column, invalid="skip",
    ))
    tokenizer, info = load_tokenizer(args.tokenizer)
    result = analyse(opts, tokenizer, strict=False, preview=args.preview)
    report = dict(result.report, tokenizer=info, description=result.description)
    return report


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except DataError as exc:
        print(visible(str(exc)), file=sys.stderr)
        return 1
    sys.stdout.write(safe_json_dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
