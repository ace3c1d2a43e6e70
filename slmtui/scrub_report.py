"""What personal-data scrubbing changed in a dataset, in words: the same lines in `slmtui data check`, on the
Data screen and in New run. Reads the `scrub_changes` part of a data-check report; light (no textual).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _changes(report: Mapping[str, Any]) -> Mapping[str, Any]:
    changes = report.get("scrub_changes")
    return changes if isinstance(changes, Mapping) else {}


def scrub_warning(report: Mapping[str, Any]) -> str:
    """The report's one-sentence warning (more than 1% of trained responses changed), or ""."""
    return str(_changes(report).get("warning") or "")


def change_summary(report: Mapping[str, Any]) -> str:
    """`"12 rows changed (0.4%), 3 trained responses (0.1%)"`, or why there is nothing to say."""
    if report.get("scrub") == "off":
        return "scrubbing is off: nothing changed"
    changes = _changes(report)
    if not changes:
        return ""
    rows, responses = int(changes.get("rows_changed", 0)), int(changes.get("responses_changed", 0))
    return (f"{rows:,} rows changed ({float(changes.get('rows_changed_share', 0)):.1%}), "
            f"{responses:,} trained responses ({float(changes.get('responses_changed_share', 0)):.1%})")


def replaced_by_type(report: Mapping[str, Any], per_type: int = 3) -> dict[str, str]:
    """Per type, the strings replaced most often, partly masked, with their counts (`+44 •• … ×3, ...`)."""
    top = _changes(report).get("top_replaced")
    if not isinstance(top, Mapping):
        return {}
    out = {}
    for kind, items in top.items():
        shown = [f"{item.get('value', '')} ×{item.get('count', 0)}" for item in list(items)[:per_type]
                 if isinstance(item, Mapping)]
        if shown:
            out[str(kind)] = ", ".join(shown)
    return out


def replaced_lines(report: Mapping[str, Any], per_type: int = 3) -> list[str]:
    """`replaced_by_type` as one line per type: `PHONE: +44 •• … ×3, ...`."""
    return [f"{kind}: {shown}" for kind, shown in replaced_by_type(report, per_type).items()]
