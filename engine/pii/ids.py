"""National identifiers, each checked by its own rules (`python-stdnum`; the UK's by HMRC's prefix rules).

US SSN, UK National Insurance number, NL BSN, FR NIR, DE tax id (Steuer-IdNr), ES DNI and NIE, IT codice
fiscale, BR CPF. A check that a random number passes too often (the BSN's 11-test passes one in eleven, the
DNI's letter one in 23, the SSN has no check at all) is not enough on its own: such a number needs a word that
names it nearby ("BSN", "Steuer-ID", "DNI", ...), unless it is written in the shape only that identifier has
(an SSN as 123-45-6789, a CPF as 123.456.789-09, a NIR in its spaced groups). Identifiers with letters in set
places (NINO, NIE, codice fiscale) carry their own evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from stdnum.br import cpf
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn

from engine.pii.context import not_personal, word_near, words_pattern

_GENERIC = r"national id|national identity|identity number|id number|id no\.?|tax id|tax number|tin|personal number"


@dataclass(frozen=True)
class IdKind:
    """One identifier: where it may be, how it is checked, and when it needs a word that names it."""

    name: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool]
    words: re.Pattern[str]
    #: Written this way, the identifier needs no word nearby (None: it always needs one, or never does).
    distinctive: re.Pattern[str] | None = None
    needs_word: bool = True


_NINO_BAD_PREFIXES = frozenset(("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"))


def nino_ok(value: str) -> bool:
    """A UK National Insurance number by HMRC's rules: two allowed prefix letters, six digits, A-D."""
    v = value.replace(" ", "").upper()
    return (len(v) == 9 and v[0] not in "DFIQUV" and v[1] not in "DFIOQUV" and v[:2] not in _NINO_BAD_PREFIXES
            and v[2:8].isdigit() and v[8] in "ABCD")


def _digits_or_spaced(groups: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.,/-]){groups}(?![\w/]|[.,-]\d)")


ID_KINDS: tuple[IdKind, ...] = (
    IdKind("US SSN", _digits_or_spaced(r"\d{3}([- ]?)\d{2}\1\d{4}"), ssn.is_valid,
           words_pattern(rf"ssn|social security|social security number|ss#|ss no\.?|{_GENERIC}"),
           distinctive=re.compile(r"\d{3}-\d{2}-\d{4}")),
    IdKind("UK NINO", re.compile(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), nino_ok,
           words_pattern(r"nino|national insurance"), needs_word=False),
    IdKind("NL BSN", _digits_or_spaced(r"\d{4}\.?\d{2}\.?\d{3}|\d{3} \d{3} \d{3}"), bsn.is_valid,
           words_pattern(rf"bsn|burgerservicenummer|sofinummer|sofi-nummer|citizen service number|{_GENERIC}")),
    IdKind("FR NIR", _digits_or_spaced(r"[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}"),
           nir.is_valid,
           words_pattern(rf"nir|insee|sécurité sociale|securite sociale|sécu|secu|numéro de sécu|{_GENERIC}"),
           distinctive=re.compile(r"\d \d{2} \d{2} \w{2} \d{3} \d{3} \d{2}")),
    IdKind("DE IdNr", _digits_or_spaced(r"\d{2} ?\d{3} ?\d{3} ?\d{3}"), idnr.is_valid,
           words_pattern(r"steuer-id|steuerid|steuer-idnr|idnr|steuer-identifikationsnummer|"
                         rf"steueridentifikationsnummer|steuerliche identifikationsnummer|identifikationsnummer|{_GENERIC}")),
    IdKind("ES DNI", re.compile(r"(?<![\w-])\d{8}-?[A-Z](?![\w-])"), dni.is_valid,
           words_pattern(rf"dni|nif|d\.n\.i\.|documento nacional de identidad|{_GENERIC}")),
    IdKind("ES NIE", re.compile(r"(?<![\w-])[XYZ]-?\d{7}-?[A-Z](?![\w-])"), nie.is_valid,
           words_pattern(r"nie|número de identidad de extranjero"), needs_word=False),
    IdKind("IT codice fiscale",
           re.compile(r"\b[A-Z]{6}[0-9LMNP-V]{2}[A-EHLMPR-T][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z]\b"),
           codicefiscale.is_valid, words_pattern(r"codice fiscale|cf"), needs_word=False),
    IdKind("BR CPF", _digits_or_spaced(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}"), cpf.is_valid,
           words_pattern(rf"cpf|cadastro de pessoas físicas|{_GENERIC}"),
           distinctive=re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}")),
)


def _accepted(kind: IdKind, text: str, start: int, end: int, value: str) -> bool:
    if not kind.valid(value):
        return False
    if value[0].isdigit() and not_personal(text, start, end):
        return False
    if not kind.needs_word or (kind.distinctive is not None and kind.distinctive.fullmatch(value)):
        return True
    return word_near(text, start, end, kind.words)


def find_ids(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, value, identifier name) of every national identifier."""
    out = []
    for kind in ID_KINDS:
        for m in kind.pattern.finditer(text):
            if _accepted(kind, text, m.start(), m.end(), m.group(0)):
                out.append((m.start(), m.end(), m.group(0), kind.name))
    return out
