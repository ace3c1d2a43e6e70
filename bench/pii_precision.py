"""Precision of `engine.pii` on text with no personal data: the share of lines of each kind left untouched.

The corpus is `bench/pii_corpus.py`'s (fixed seed, at least 20,000 lines over 18 kinds). Goal: at least 99.9%
of the lines of every kind untouched. Recall is measured on the Faker corpus by `bench/pii.py`.

    python bench/pii_precision.py [--per-kind 1200] [--seed 0] [--show 5] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pii_corpus import build  # noqa: E402

GOAL = 0.999


def measure(corpus: list[tuple[str, str]]) -> dict[str, dict[str, object]]:
    """Per kind: lines, lines untouched, the share, the types found, and a few damaged lines."""
    from engine.pii import find_pii

    table: dict[str, dict[str, object]] = {}
    for kind, text in corpus:
        row = table.setdefault(kind, {"lines": 0, "untouched": 0, "types": Counter(), "damaged": []})
        found = find_pii(text)
        row["lines"] += 1  # type: ignore[operator]
        if not found:
            row["untouched"] += 1  # type: ignore[operator]
            continue
        row["types"].update(f.kind for f in found)  # type: ignore[union-attr]
        row["damaged"].append((text, [(f.kind, f.value) for f in found]))  # type: ignore[union-attr]
    for row in table.values():
        row["share"] = int(row["untouched"]) / int(row["lines"])  # type: ignore[call-overload]
    return table


def format_table(table: dict[str, dict[str, object]]) -> str:
    """A Markdown table of the figures, one row per kind."""
    lines = ["| kind | lines | untouched | share | found as | goal met |", "| --- | --- | --- | --- | --- | --- |"]
    for kind, row in table.items():
        found = ", ".join(f"{k} {n}" for k, n in row["types"].most_common()) or "–"  # type: ignore[attr-defined]
        share = float(row["share"])  # type: ignore[arg-type]
        lines.append(f"| {kind} | {row['lines']} | {row['untouched']} | {share:.2%} | {found} | "
                     f"{'yes' if share >= GOAL else '**no**'} |")
    total = sum(int(r["lines"]) for r in table.values())  # type: ignore[call-overload]
    kept = sum(int(r["untouched"]) for r in table.values())  # type: ignore[call-overload]
    lines.append(f"| all | {total} | {kept} | {kept / total:.3%} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-kind", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=0, help="print this many damaged lines of each kind")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args()
    corpus = build(args.per_kind, args.seed)
    t0 = time.perf_counter()
    table = measure(corpus)
    elapsed = time.perf_counter() - t0
    text = format_table(table)
    print(text)
    print(f"\n{len(corpus)} lines, detection took {elapsed:.2f} s")
    for kind, row in table.items():
        for line, found in row["damaged"][: args.show]:  # type: ignore[index]
            print(f"{kind}: {line!r} -> {found}")
    if args.record:
        with open(ROOT / "docs" / "benchmarks.md", "a", encoding="utf-8") as fh:
            fh.write(f"\n### bench/pii_precision.py: {dt.date.today().isoformat()}\n\nMachine: {platform.machine()}, "
                     f"Python {platform.python_version()}. Command: `python bench/pii_precision.py --per-kind "
                     f"{args.per_kind} --seed {args.seed} --record`; {len(corpus)} lines, detection took "
                     f"{elapsed:.1f} s.\n\n{text}\n")


if __name__ == "__main__":
    main()
