"""`slmtui checklist`: the decision checklist's answers, verdict and baseline."""

from __future__ import annotations

import argparse
from typing import Any

from slmtui.cli._common import UserError, print_json, say


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "checklist", help="should you fine-tune? the answers, verdict and baseline",
        description="Print the decision checklist's answers, the verdict (go or not yet, and why) and the "
        "baseline every run is compared with. Answer it in the console's Checklist screen.",
    )
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: the answers plus `verdict` and `baseline`")
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from slmtui import checklist as ck
    from slmtui.store import Store, StoreError

    try:
        cl = ck.load(Store())
    except (StoreError, ck.ChecklistError) as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print_json(ck.to_dict(cl))
    else:
        say("\n".join(ck.describe(cl)))
    return 0
