"""Replacing personal data with typed placeholders, and the account of what that changed in a dataset."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.pii.detect import DEFAULT_SETTINGS, PII_TYPES, PiiSettings, find_pii

#: Above this share of trained responses changed, the report warns that scrubbing may be damaging the data.
WARN_RESPONSE_SHARE = 0.01


@dataclass
class Scrubber:
    """Replaces personal data with typed placeholders, the same value getting the same one.

    Use one per row so that `<NAME_1>` in the prompt and in the response mean the same person.
    """

    settings: PiiSettings = DEFAULT_SETTINGS
    placeholders: dict[tuple[str, str], str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    #: (type, original text) of every replacement, in order.
    replaced: list[tuple[str, str]] = field(default_factory=list)

    def scrub(self, text: str) -> str:
        """`text` with every finding replaced; `counts` gains one per finding."""
        findings = find_pii(text, self.settings)
        if not findings:
            return text
        parts: list[str] = []
        pos = 0
        for f in findings:
            key = (f.kind, f.value.casefold())
            if key not in self.placeholders:
                n = sum(1 for kind, _ in self.placeholders if kind == f.kind) + 1
                self.placeholders[key] = f"<{f.kind}_{n}>"
            parts += [text[pos:f.start], self.placeholders[key]]
            pos = f.end
            self.counts[f.kind] += 1
            self.replaced.append((f.kind, f.value))
        parts.append(text[pos:])
        return "".join(parts)


def scrub_text(text: str, settings: PiiSettings = DEFAULT_SETTINGS) -> tuple[str, dict[str, int]]:
    """Scrub one text on its own; returns the scrubbed text and the count of findings per type."""
    scrubber = Scrubber(settings)
    return scrubber.scrub(text), dict(scrubber.counts)


def scrub_row(fields: dict[str, str], settings: PiiSettings = DEFAULT_SETTINGS) -> tuple[dict[str, str], dict[str, int]]:
    """Scrub every string field of a row with one set of placeholders; returns the row and counts per type."""
    scrubber = Scrubber(settings)
    return {k: scrubber.scrub(v) for k, v in fields.items()}, dict(scrubber.counts)


def mask(value: str) -> str:
    """`value` with most of its letters and digits hidden: enough to recognise a false alarm, not to read it."""
    alnum = [i for i, ch in enumerate(value) if ch.isalnum()]
    keep = 2 if len(alnum) >= 8 else 1
    shown = set(alnum[:keep] + (alnum[-keep:] if len(alnum) >= 4 else []))
    return "".join(ch if i in shown or not ch.isalnum() else "•" for i, ch in enumerate(value))


@dataclass
class ScrubChanges:
    """What scrubbing changed across a dataset: rows, trained responses, and the strings replaced most."""

    rows: int = 0
    rows_changed: int = 0
    responses: int = 0
    responses_changed: int = 0
    replaced: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, changed: bool, has_response: bool, response_changed: bool,
            replaced: list[tuple[str, str]]) -> None:
        """Count one row."""
        self.rows += 1
        self.rows_changed += changed
        self.responses += has_response
        self.responses_changed += response_changed
        for kind, value in replaced:
            self.replaced.setdefault(kind, Counter())[value] += 1

    def response_share(self) -> float:
        return self.responses_changed / self.responses if self.responses else 0.0

    def warning(self, settings: PiiSettings) -> str:
        """One sentence when more than 1% of trained responses changed, else ""."""
        share = self.response_share()
        if share <= WARN_RESPONSE_SHARE:
            return ""
        busiest = max(self.replaced, key=lambda k: sum(self.replaced[k].values()), default="")
        keep = [t for t in PII_TYPES if t in settings.types and t != busiest]
        listed = ", ".join(f'"{t}"' for t in keep)
        return (f"Scrubbing changed the trained responses of {self.responses_changed:,} of {self.responses:,} rows "
                f"({share:.1%}); if the replaced strings are not personal data (most were {busiest}), choose the "
                f"types with data.scrub_types = [{listed}] or set data.scrub = \"off\".")

    def as_dict(self, settings: PiiSettings, top: int = 5) -> dict[str, Any]:
        """The JSON-able account for the data report (replaced strings masked)."""
        return {
            "rows": self.rows,
            "rows_changed": self.rows_changed,
            "rows_changed_share": round(self.rows_changed / self.rows, 4) if self.rows else 0.0,
            "responses": self.responses,
            "responses_changed": self.responses_changed,
            "responses_changed_share": round(self.response_share(), 4),
            "top_replaced": {kind: [{"value": mask(v), "count": n} for v, n in counts.most_common(top)]
                             for kind, counts in sorted(self.replaced.items())},
            "types": [t for t in PII_TYPES if t in settings.types],
            "phone_regions": list(settings.phone_regions),
            "warning": self.warning(settings),
        }
