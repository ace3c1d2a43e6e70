"""What surrounds a number: the words and characters that say it is a measurement, a sum or a code, not personal.

A detector that validates a number (a phone, a card, an identifier) still asks here whether the number is
part of arithmetic, a decimal, a quantity with a unit, an amount of money, a timestamp, a version or a longer
token (a hash, a UUID, a product code), and whether a word that names its type stands close before it.
"""

from __future__ import annotations

import re

_OPERATORS = "=*/^×÷<>≤≥≈%"
_CURRENCY_SYMBOLS = "$€£¥₹₽₩¢₺₴₦"
_CURRENCY_WORDS = frozenset(["usd", "eur", "gbp", "jpy", "chf", "cny", "inr", "brl", "aud", "cad", "sek", "dkk", "nok", "pln", "czk", "huf", "mxn", "zar", "krw", "rub", "try", "dollar", "dollars", "euro", "euros", "pound", "pounds", "yen", "cents", "rupees", "reais", "real", "kr", "zł", "zl"])
#: Words after a number that make it a quantity (lower-cased, compared without a trailing period).
UNITS = frozenset(["km", "m", "cm", "mm", "µm", "um", "nm", "mi", "ft", "in", "yd", "kg", "g", "mg", "µg", "ug", "t", "lb", "lbs", "oz", "st", "l", "ml", "dl", "cl", "gal", "s", "sec", "secs", "ms", "µs", "us", "ns", "min", "mins", "h", "hr", "hrs", "d", "yr", "yrs", "hz", "khz", "mhz", "ghz", "b", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib", "bit", "bits", "bps", "kbps", "mbps", "gbps", "w", "kw", "mw", "gw", "kwh", "wh", "mah", "v", "mv", "kv", "a", "ma", "ohm", "ohms", "k", "°c", "°f", "°k", "c", "f", "pa", "kpa", "mpa", "hpa", "bar", "psi", "atm", "mol", "mmol", "j", "kj", "cal", "kcal", "n", "nm", "dpi", "px", "pt", "em", "rpm", "fps", "ppm", "ppb", "db", "x", "times", "bytes", "tokens", "steps", "rows", "items", "units", "pcs", "people", "visitors", "users", "views", "points", "pts", "votes", "words", "pages", "seconds", "minutes", "hours", "days", "weeks", "months", "years", "km/h", "mph", "m/s", "km²", "m²", "m³", "ha", "acres", "tonnes", "tons", "calories", "samples", "epochs", "parameters", "params", "records", "lines", "files", "downloads", "stars", "likes", "km2", "m2", "m3", "ml/min"])
_WORD_AFTER = re.compile(r"\s?([^\s,;:!?()\[\]{}\"']{1,12})")
_WORD_BEFORE = re.compile(r"([A-Za-z§]{1,12})\s*[:#\"'(\[]?\s*$")
_VERSION_WORDS = frozenset(("v", "ver", "version", "build", "release", "firmware", "revision", "rev", "patch",
                            "section", "sections", "chapter", "clause", "figure", "fig", "table", "§", "rfc"))
_OPERAND = re.compile(r"[\w)\]]")


def _prev_char(text: str, start: int) -> tuple[str, int]:
    """The nearest non-space character before `start` and its index ("" and -1 at the start)."""
    i = start - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return (text[i], i) if i >= 0 else ("", -1)


def _next_char(text: str, end: int) -> tuple[str, int]:
    i = end
    while i < len(text) and text[i] in " \t":
        i += 1
    return (text[i], i) if i < len(text) else ("", len(text))


def in_arithmetic(text: str, start: int, end: int) -> bool:
    """Beside `=`, `*`, `/`, `^` (and kin), or with `+`/`-` between it and another operand."""
    before, i = _prev_char(text, start)
    after, j = _next_char(text, end)
    if (before and before in _OPERATORS) or (after and after in _OPERATORS):
        return True
    if before and before in "+-−":
        operand, _ = _prev_char(text, i)
        if operand and _OPERAND.match(operand):
            return True
    if after and after in "+-−":
        operand, _ = _next_char(text, j + 1)
        rest = text[j + 1:].lstrip(" \t")
        single_letter = bool(re.match(r"[A-Za-z](?![A-Za-z])", rest))
        if operand and (operand.isdigit() or operand == "(" or single_letter):
            return True
    return text[start] in "+-" and _prev_char(text, start)[0] in "0123456789)"


def glued(text: str, start: int, end: int) -> bool:
    """Part of a longer token: a decimal, a timestamp, a hash, a UUID, a path, a code such as `AB-1234567`."""
    if start > 0:
        ch = text[start - 1]
        if ch.isalnum() or ch in "_#@/\\=&?~":
            return True
        if ch in ".,:" and start > 1 and text[start - 2].isdigit():
            return True
        if ch == "-" and start > 1 and (text[start - 2].isalnum() or text[start - 2] == "_"):
            return True
    if end < len(text):
        ch = text[end]
        if ch.isalnum() or ch in "_@/\\":
            return True
        if ch in ".,:" and end + 1 < len(text) and text[end + 1].isdigit():
            return True
        if ch == "-" and end + 1 < len(text) and text[end + 1].isalnum():
            return True
    return False


def quantity(text: str, start: int, end: int) -> bool:
    """An amount of money or a number with a unit after it."""
    before, _ = _prev_char(text, start)
    if before and before in _CURRENCY_SYMBOLS:
        return True
    word_before = _WORD_BEFORE.search(text, max(0, start - 16), start)
    if word_before and word_before.group(1).lower() in _CURRENCY_WORDS:
        return True
    after = _WORD_AFTER.match(text, end)
    if after:
        word = after.group(1).lower().rstrip(".")
        if word and (word in UNITS or word in _CURRENCY_WORDS or word[0] in _CURRENCY_SYMBOLS or word == "%"):
            return True
    return False


def version_like(text: str, start: int) -> bool:
    """Preceded by a version word (`v`, `version`, `build`, ...)."""
    m = _WORD_BEFORE.search(text, max(0, start - 16), start)
    return bool(m and m.group(1).lower() in _VERSION_WORDS)


def not_personal(text: str, start: int, end: int) -> bool:
    """A number that is arithmetic, glued into a longer token, a quantity or a version."""
    return (in_arithmetic(text, start, end) or glued(text, start, end) or quantity(text, start, end)
            or version_like(text, start))


def word_near(text: str, start: int, end: int, words: re.Pattern[str], before: int = 40, after: int = 24) -> bool:
    """Whether `words` matches within `before` characters before the span or `after` characters after it."""
    return bool(words.search(text, max(0, start - before), start) or words.search(text, end, end + after))


def words_pattern(words: str) -> re.Pattern[str]:
    """A case-insensitive pattern for whole words from a `|`-separated list (spaces allowed inside words)."""
    return re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.I)
