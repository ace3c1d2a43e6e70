"""Payment cards, IBANs and IP addresses: a pattern finds the candidates, a validator decides.

Cards pass `python-stdnum`'s Luhn check and an issuer's number range and length (Visa, Mastercard, American
Express, Discover, Diners, JCB, UnionPay, Maestro); a card written as one unbroken run of digits also needs a
card word nearby, since one random long number in ten passes Luhn. IBANs pass `python-stdnum`'s country
format and mod-97 check. IPs are global addresses only: private, loopback, link-local, reserved and the
documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are not anyone's.
"""

from __future__ import annotations

import ipaddress
import re

from stdnum import iban as std_iban
from stdnum import luhn as std_luhn

from engine.pii.context import in_arithmetic, not_personal, version_like, word_near, words_pattern

#: (lowest prefix, highest prefix, allowed lengths) of each issuer's range; prefixes compare as strings.
_ISSUERS: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset((13, 16, 19))),                          # Visa
    ("51", "55", frozenset((16,))), ("2221", "2720", frozenset((16,))),  # Mastercard
    ("34", "34", frozenset((15,))), ("37", "37", frozenset((15,))),  # American Express
    ("6011", "6011", frozenset(range(16, 20))), ("644", "649", frozenset(range(16, 20))),
    ("65", "65", frozenset(range(16, 20))),                       # Discover
    ("300", "305", frozenset(range(14, 20))), ("36", "36", frozenset(range(14, 20))),
    ("38", "39", frozenset(range(14, 20))),                       # Diners Club
    ("35", "35", frozenset(range(16, 20))), ("1800", "1800", frozenset((15,))),
    ("2131", "2131", frozenset((15,))),                           # JCB
    ("62", "62", frozenset(range(16, 20))),                       # UnionPay
    ("50", "50", frozenset(range(12, 20))), ("56", "69", frozenset(range(12, 20))),
    ("0604", "0604", frozenset(range(12, 20))),                   # Maestro
)
CARD_WORDS = words_pattern(
    r"card|cards|credit|debit|visa|mastercard|amex|american express|discover|maestro|jcb|diners|cc|"
    r"paid|pay|payment|charged|karte|kreditkarte|carte|tarjeta|carta|kaart|creditcard|cartão|karta|kort|"
    r"kortti|kortnummer"
)
_CARD = re.compile(
    r"(?<![\w.,/-])(?:0604\d{8,15}|[1-6]\d{11,18}|[2-6]\d{3}([ -])\d{4}\1\d{4}\1\d{1,7}|3\d{3}([ -])\d{6}\2\d{4,5})(?![\d.,/-]?\d)"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\w)")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f:]{2,39}(?![\w:])")


def luhn_ok(digits: str) -> bool:
    """True when the string of digits passes the Luhn checksum (payment cards)."""
    return digits.isdigit() and std_luhn.is_valid(digits)


def issuer_ok(digits: str) -> bool:
    """True when the number lies in a card issuer's range with one of its lengths."""
    return any(low <= digits[: len(low)] <= high and len(digits) in lengths for low, high, lengths in _ISSUERS)


def iban_ok(iban: str) -> bool:
    """True when `iban` (spaces allowed) has its country's format and passes the ISO 13616 mod-97 check."""
    return std_iban.is_valid(iban.replace(" ", ""))


def find_cards(text: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of every payment card number."""
    out = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if not (luhn_ok(digits) and issuer_ok(digits)) or not_personal(text, m.start(), m.end()):
            continue
        if digits == m.group(0) and not word_near(text, m.start(), m.end(), CARD_WORDS, before=40, after=16):
            continue
        out.append((m.start(), m.end(), m.group(0)))
    return out


def find_ibans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of every IBAN, written solid or in groups of four."""
    out = []
    for m in _IBAN.finditer(text):
        value = m.group(0)
        # A spaced IBAN may run into a following word: shorten it group by group, never char by char.
        while len(value.replace(" ", "")) >= 15:
            if iban_ok(value):
                out.append((m.start(), m.start() + len(value), value))
                break
            if " " not in value:
                break
            value = value.rsplit(" ", 1)[0]
    return out


def _global(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast


def find_ips(text: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of every global IPv4 or IPv6 address."""
    out = []
    for m in _IPV4.finditer(text):
        if _global(m.group(0)) and not in_arithmetic(text, m.start(), m.end()) \
                and not version_like(text, m.start()):
            out.append((m.start(), m.end(), m.group(0)))
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            if _global(m.group(0)) and len(re.findall(r"[0-9A-Fa-f]+", m.group(0))) >= 3:
                out.append((m.start(), m.end(), m.group(0)))
    return out
