"""`python -m engine make-demo [--home H] [--json]`: build the demo dataset and tiny model once."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.demo import demo_paths, ensure_demo, is_built


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine make-demo",
                                     description="Build HOME/demo (dataset and tiny model) unless it exists.")
    parser.add_argument("--home", type=Path, default=None, help="HOME to build in (default: $SLMTUI_HOME)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    existed = is_built(args.home)
    root = ensure_demo(args.home, log=None if args.json else (lambda m: print(m, file=sys.stderr)))
    data, model = demo_paths(args.home)
    result = {"demo": str(root), "dataset": str(data), "model": str(model), "built": not existed}
    print(json.dumps(result) if args.json else f"demo {'built' if not existed else 'already present'}: {root}")
    return 0
