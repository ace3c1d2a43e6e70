"""`find_pii`: every piece of personal data in a text, of the types the settings ask for, without overlaps."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from engine.pii.addresses import find_addresses
from engine.pii.ids import find_ids
from engine.pii.names import find_names
from engine.pii.numbers import find_cards, find_ibans, find_ips
from engine.pii.phones import DEFAULT_PHONE_REGIONS, find_phones

PII_TYPES = ("EMAIL", "PHONE", "ADDRESS", "CARD", "IBAN", "NATIONAL_ID", "IP", "NAME")
#: Where two findings overlap, the one whose type comes first here wins.
_PRIORITY = {"EMAIL": 0, "IBAN": 1, "CARD": 2, "NATIONAL_ID": 3, "IP": 4, "PHONE": 5, "ADDRESS": 6, "NAME": 7}
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: its type, character span in the text, and the value itself."""

    kind: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class PiiSettings:
    """Which types to find (`data.scrub_types`) and which regions' phone formats (`data.phone_regions`)."""

    types: frozenset[str] = field(default_factory=lambda: frozenset(PII_TYPES))
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS

    @classmethod
    def of(cls, types: list[str] | tuple[str, ...] | None = None,
           phone_regions: list[str] | tuple[str, ...] | None = None) -> PiiSettings:
        """Settings from a spec's lists; an empty or missing list means the default."""
        return cls(frozenset(t.upper() for t in types) if types else frozenset(PII_TYPES),
                   tuple(r.upper() for r in phone_regions) if phone_regions else DEFAULT_PHONE_REGIONS)


DEFAULT_SETTINGS = PiiSettings()


def _candidates(text: str, settings: PiiSettings) -> list[Finding]:
    want = settings.types
    out: list[Finding] = []
    if "EMAIL" in want and "@" in text:
        out += [Finding("EMAIL", m.start(), m.end(), m.group(0)) for m in _EMAIL.finditer(text)]
    has_digit = any(ch.isdigit() for ch in text)
    if has_digit:
        for kind, finder in (("IBAN", find_ibans), ("CARD", find_cards), ("IP", find_ips)):
            if kind in want:
                out += [Finding(kind, s, e, v) for s, e, v in finder(text)]
        if "NATIONAL_ID" in want:  # every identifier has digits
            out += [Finding("NATIONAL_ID", s, e, v) for s, e, v, _ in find_ids(text)]
        if "PHONE" in want:
            out += [Finding("PHONE", s, e, v) for s, e, v in find_phones(text, settings.phone_regions)]
    elif "IP" in want and text.count(":") >= 2:
        out += [Finding("IP", s, e, v) for s, e, v in find_ips(text)]
    if "ADDRESS" in want:
        out += [Finding("ADDRESS", s, e, v) for s, e, v in find_addresses(text, has_digit)]
    if "NAME" in want:
        out += [Finding("NAME", s, e, v) for s, e, v in find_names(text)]
    return out


def find_pii(text: str, settings: PiiSettings = DEFAULT_SETTINGS) -> list[Finding]:
    """Every piece of personal data in `text`, non-overlapping, in order of position."""
    return list(_find_cached(text, settings)) if len(text) < 4096 else list(_find(text, settings))


@lru_cache(maxsize=16384)
def _find_cached(text: str, settings: PiiSettings) -> tuple[Finding, ...]:
    # Datasets repeat their instructions and templated replies: a small cache saves most of the work.
    return _find(text, settings)


def _find(text: str, settings: PiiSettings) -> tuple[Finding, ...]:
    accepted: list[Finding] = []
    for f in sorted(_candidates(text, settings), key=lambda f: (_PRIORITY[f.kind], f.start, -(f.end - f.start))):
        if f.end > f.start and all(f.end <= a.start or a.end <= f.start for a in accepted):
            accepted.append(f)
    return tuple(sorted(accepted, key=lambda f: f.start))
