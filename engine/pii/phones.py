"""Phone numbers, found by Google's libphonenumber (the `phonenumbers` package), not by hand-written patterns.

A cheap look for runs of at least seven digits decides where libphonenumber is asked at all; its matcher then
checks each such place in every region of the setting, at leniency VALID (a number the region's plan really
allocates). A number libphonenumber calls only *possible* (the right length, an unallocated area code) counts
when a phone word ("call", "tel", "Telefon", ...) stands right before it. Either way the number is dropped when
it is arithmetic, part of a longer token, a quantity, a version or a date, and a bare digit run (no `+`, no
separators) needs a phone word nearby.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from engine.pii.context import not_personal, word_near, words_pattern

#: Regions whose national formats are recognised unless the `data.phone_regions` setting says otherwise;
#: numbers written with `+` and a country code are recognised whatever the regions.
DEFAULT_PHONE_REGIONS = ("US", "GB", "IE", "CA", "AU", "IN", "DE", "AT", "CH", "FR", "BE", "NL", "ES", "PT",
                         "IT", "BR", "MX", "PL", "SE", "DK", "NO", "FI")

PHONE_WORDS = words_pattern(
    r"phone|phones|phone number|call|calls|called|calling|tel|tel\.|telephone|mobile|cell|cellphone|fax|"
    r"whatsapp|sms|text me|ring|dial|hotline|"
    r"telefon|telefonnummer|handy|mobil|rufnummer|anrufen|"
    r"téléphone|telephone|portable|appeler|appelez|"
    r"teléfono|telefono|móvil|movil|llamar|llame|cellulare|chiamare|chiami|"
    r"telefoon|bellen|mobiel|telefone|celular|ligar|ligue|"
    r"komórka|zadzwoń|ring till|mobilnummer|tlf|puhelin"
)
#: Weaker words: they make a number a phone only where no code word (order, invoice, ...) is nearer.
NUMBER_WORDS = words_pattern(r"number|my no\.|contact|reach|nummer|numéro|número|numero|numer")
_NOT_PHONE_WORDS = words_pattern(
    r"order|invoice|inv|ref|reference|tracking|serial|ticket|code|case|account|item|sku|isbn|issn|id|uid|"
    r"pid|port|build|version|checksum|hash|seed|zip|postcode|postal code|batch|lot|part|model|request|"
    r"transaction|txn|session|user id|customer id|employee id|student id|page|line|step|epoch|row|cas|doi|"
    r"pmid|patent|n|span|parent|duration|sort"
)
#: At least seven digits with phone punctuation between them: where libphonenumber is asked to look.
_DIGIT_RUN = re.compile(r"[+(]?\d[\d \-().\/]{5,24}\d(?: ?(?:x|ext\.?|extension) ?\d{1,6}\b)?")
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_YEARS = re.compile(r"(?:(?:19|20)\d\d[\s,/–-]+)+(?:19|20)\d\d")
#: How far before a number a phone word may stand (a long name fits between "Reach" and the number).
_WORD_REACH = 48
_DECIMAL = re.compile(r"[+-]?\d+[.,]\d+")
#: A position in ISO 6709 (latitude and longitude as signed degrees and minutes): +4953-09709.
_ISO6709 = re.compile(r"[+-](?:[0-8]\d|90)[0-5]\d(?:[0-5]\d[+-](?:0\d\d|1[0-7]\d|180)[0-5]\d[0-5]\d"
                      r"|[+-](?:0\d\d|1[0-7]\d|180)[0-5]\d)")
_NANP_SPACED = re.compile(r"1? ?\d{3} \d{3} \d{4}")


@lru_cache(maxsize=1)
def _library() -> Any:
    import phonenumbers

    return phonenumbers


def _matches(window: str, regions: tuple[str, ...], leniency: Any) -> Iterator[tuple[int, int, str]]:
    pn = _library()
    seen: set[tuple[int, int]] = set()
    for region in regions:
        for m in pn.PhoneNumberMatcher(window, region, leniency=leniency):
            if (m.start, m.end) not in seen:
                seen.add((m.start, m.end))
                yield m.start, m.end, m.raw_string
        if seen and window.lstrip("( ").startswith("+"):
            return  # an international number reads the same in every region


def _words_before(text: str, start: int, end: int) -> tuple[bool, bool]:
    """Whether a phone word, and whether a number word, comes just before `start:end`."""
    return (word_near(text, start, end, PHONE_WORDS, before=_WORD_REACH, after=0),
            word_near(text, start, end, NUMBER_WORDS, before=_WORD_REACH, after=0))


def _shape_ok(text: str, start: int, end: int, raw: str, words: tuple[bool, bool] | None = None) -> bool:
    """Whether `raw` (at `start:end` of `text`) can be a phone number at all, before and after libphonenumber;
    `words` is `_words_before` of the same span when the caller has it."""
    digits = sum(ch.isdigit() for ch in raw)
    if (digits < 7 or _DATE.fullmatch(raw.strip("()")) or _YEARS.fullmatch(raw) or _DECIMAL.fullmatch(raw)
            or _ISO6709.fullmatch(raw)):
        return False
    if not_personal(text, start, end):
        return False
    phone_word, number_word = words or _words_before(text, start, end)
    if not phone_word and word_near(text, start, end, _NOT_PHONE_WORDS, before=24, after=0):
        return False
    if phone_word or number_word:
        return True
    if raw.startswith(("+", "00", "(+")):
        return True
    number = re.split(r"\s*(?:x|ext\.?|extension)\s*\d+$", raw)[0]
    groups = re.split(r"[ ()\-./]+", number.strip("()"))
    if [len(g) for g in groups] == [5, 4]:
        return False  # a US ZIP+4 code, 02110-1301
    if len(groups) == 2 and len(groups[0]) == 1:
        return False  # a range, 0-999999
    if len(groups) < 2 or "  " in number or len(groups[-1]) < 2:
        return False  # a bare run of digits, a column of figures, or a code such as 72814-31-8
    if "--" in number or ".." in number or ("/" in number and not number.startswith("0")):
        return False  # a sum or a fraction (030/1234567 is a phone: a trunk prefix before the slash)
    if raw.count(".") >= 2 and not re.search(r"[ ()\-]", raw):
        return False  # 12.34.56.78: more likely a version or a measurement
    if re.fullmatch(r"[\d ]+", number):  # space-separated figures: a list unless shaped like a phone
        if any(len(g) == 1 for g in groups):
            return False
        return number.startswith("0") or bool(_NANP_SPACED.fullmatch(number))
    return True


def find_phones(text: str, regions: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """(start, end, value) of every phone number in `text`."""
    if sum(ch.isdigit() for ch in text) < 7:
        return []
    pn = _library()
    found: list[tuple[int, int, str]] = []
    for run in _DIGIT_RUN.finditer(text):
        words = _words_before(text, run.start(), run.end())
        if not _shape_ok(text, run.start(), run.end(), run.group(0), words):
            continue
        lo, hi = max(0, run.start() - 2), min(len(text), run.end() + 2)
        near_word = any(words)
        # VALID first; beside a phone word POSSIBLE too, and the longest reading wins, so "+49(0) 380141269"
        # is replaced whole rather than leaving its country code behind.
        spans: list[tuple[int, int, str]] = []
        for leniency in (pn.Leniency.VALID, pn.Leniency.POSSIBLE) if near_word else (pn.Leniency.VALID,):
            spans += [(s + lo, e + lo, raw) for s, e, raw in _matches(text[lo:hi], regions, leniency)]
        for start, end, raw in sorted(spans, key=lambda span: span[0] - span[1]):
            if _shape_ok(text, start, end, raw) and all(e <= start or end <= s for s, e, _ in found):
                found.append((start, end, raw))
    return found
