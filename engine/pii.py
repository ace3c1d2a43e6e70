"""Finding and scrubbing personal data, offline and model-free (stdlib only: the console may import it).

Types: EMAIL, PHONE (national and international formats), ADDRESS (street addresses), CARD (Luhn-checked),
IBAN (mod-97-checked), IP (v4 and v6) and NAME (titles, greetings, signatures, a shipped list of first names,
capitalisation). Each value becomes a typed placeholder, the same one for the same value within a row
(`<NAME_1>`, `<EMAIL_1>`, ...). Versions, dates, prices, order and invoice numbers are left alone.

What it cannot catch: names written in lower case or in non-Latin scripts, surnames on their own without a
title, first names that are not in the list and stand alone, addresses without a street word (a bare
"Setor de Albuquerque"), phone numbers written as words, and anything the patterns never saw (national IDs,
licence plates, dates of birth).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PII_TYPES = ("EMAIL", "PHONE", "ADDRESS", "CARD", "IBAN", "IP", "NAME")
_PRIORITY = {"EMAIL": 0, "IBAN": 1, "CARD": 2, "IP": 3, "PHONE": 4, "ADDRESS": 5, "NAME": 6}
_NAMES_FILE = Path(__file__).resolve().parent / "data_files" / "names.txt"


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: its type, character span in the text, and the value itself."""

    kind: str
    start: int
    end: int
    value: str


# ------------------------------------------------------------------ checksums


def luhn_ok(digits: str) -> bool:
    """True when the string of digits passes the Luhn checksum (payment cards)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """True when `iban` (spaces removed) passes the ISO 13616 mod-97 check."""
    iban = iban.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    if not rearranged.isalnum() or not rearranged.isascii():
        return False
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# ------------------------------------------------------------------ patterns

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(
    r"(?<![\w.,/-])(?:[1-6]\d{11,18}|[2-6]\d{3}([ -])\d{4}\1\d{4}\1\d{1,7}|3\d{3}([ -])\d{6}\2\d{4,5})(?![\d.,/-]?\d)"
)
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f:]{2,39}(?![\w:])")
_VERSION_CONTEXT = re.compile(r"(?:version|build|release|firmware|v)\s*$", re.I)
_PHONE = re.compile(
    r"(?<![\w+#/.,$€£-])(?:\+|\(\+?)?\d[\d ().\-/]{5,22}\d(?: ?(?:x|ext\.?|extension) ?\d{1,5})?(?![\w%€$£]|[.,]\d)"
)
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_NOT_PHONE_CONTEXT = re.compile(
    r"\b(?:order|invoice|inv|ref|reference|tracking|serial|ticket|code|case|account|item|sku|no\.?|#|"
    r"version|build|id)\b\W{0,3}(?:\w+\W{1,3}){0,2}$", re.I)
_PHONE_CONTEXT = re.compile(r"\b(?:phone|call|tel|telephone|mobile|cell|fax|whatsapp|sms|text|ring|number|reach"
                            r"|contact|on|at)\W{0,4}$", re.I)

_UPPER = "A-ZÀ-ÖØ-ÞĀ-ſ"  # Latin capitals (the Latin Extended-A block holds both cases; checked again below)
_CAP = rf"[{_UPPER}][\w'’]*(?:-[{_UPPER}][\w'’]*)*"
_HOUSE = r"\d{1,5}[A-Za-z]?(?:[/-]\d{1,4}[A-Za-z]?)?"
_UNIT = r"(?:(?:Apt|Apartment|Suite|Ste|Unit|Flat|Studio|Room|Floor|Level)\.? ?\w{1,5})"
_STREET_SUFFIX = (
    "Street|St|Road|Rd|Avenue|Ave|Av|Lane|Ln|Drive|Dr|Court|Ct|Way|Boulevard|Blvd|Place|Pl|Square|Sq|Terrace|"
    "Close|Crescent|Cres|Highway|Hwy|Parkway|Pkwy|Circle|Cir|Trail|Trl|Row|Walk|Grove|Gardens|Hill|Hills|Park|"
    "Mews|Path|Pike|Plaza|Alley|Crossing|Point|Ridge|Loop|Run|Expressway|Freeway|Motorway|Turnpike|Causeway|"
    "Bypass|Junction|Heights|Green|Gate|Gateway|Hollow|Landing|Manor|Meadow|Meadows|Mill|Mills|Orchard|Oval|"
    "Pass|Passage|Port|Route|Shore|Shores|Spring|Springs|Station|Summit|Track|Trace|Valley|View|Views|Village|"
    "Vista|Wharf|Wynd|Estate|Estates|Fields|Field|Parade|Quay|Rise|Brae|Vale|Bridge|Brook|Burg|Camp|Cape|"
    "Center|Centre|Club|Common|Corner|Corners|Cove|Creek|Dale|Dam|Divide|Extension|Falls|Ferry|Flat|Flats|Ford|"
    "Forest|Forge|Fork|Forks|Fort|Glen|Harbor|Harbour|Haven|Island|Isle|Key|Knoll|Lake|Lakes|Light|Lock|Lodge|"
    "Mission|Mount|Mountain|Neck|Pine|Pines|Plain|Plains|Prairie|Radial|Ramp|Ranch|Rapid|Rapids|Rest|River|"
    "Shoal|Skyway|Spur|Stravenue|Stream|Throughway|Trafficway|Tunnel|Underpass|Union|Via|Viaduct|Ville|Well|"
    "Wells|Amble|Approach|Arcade|Boardwalk|Chase|Concourse|Cul-de-sac|Esplanade|Glade|Promenade|Retreat|Strip|"
    "Villa|Villas|Copse|Courtyard|Tower|Towers|Meander|Anchorage|Rue|Yard|Mall|Circus|Embankment|Broadway|Fairway|"
    "Heath|Lawn|Lawns|Line|Nook|Outlook|Pathway|Pocket|Reserve|Ring|Serviceway|Slope|Steps|Terrace|Vue|Waters|"
    "Roadside|Range|Edge|Circlet|Distributor|Crossway|Ramble|Tollway|Trunkway|Busway|Cutting|Driveway|Elbow|End|"
    "Entrance|Frontage|Gap|Grange|Highroad|Interchange|Link|Lookout|Parklands|Pde|Plateau|Pursuit|Quadrant|"
    "Ridgeway|Rotary|Round|Subway|Thoroughfare|Tor|Walkway|Waterway|Boulevarde|Crest|Concord|Deviation"
)
_US_ADDRESS = re.compile(
    rf"(?:\b{_UNIT},? (?:{_HOUSE},? )?|\b{_HOUSE},? )(?:{_CAP} ){{1,3}}(?:{_STREET_SUFFIX})s?\b\.?(?:,? {_UNIT}\b)?"
)
_COMPOUND_SUFFIX = (
    "straße|strasse|str\\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|markt|"
    "straat|laan|boulevard|plein|gracht|hof|singel|kade|dreef|pad|steeg|baan|"
    "gatan|vägen|väg|gränd|stigen|torget|backen|gata|vei|veien|gaten|"
    "vej|gade|stræde|allé|plads|katu|tie|kuja|polku|bulevardi|utca|ulice|cesta"
)
_COMPOUND_ADDRESS = re.compile(
    rf"\b(?:{_CAP}[ -])?(?=[{_UPPER}])(?:[\w'’-]*)(?i:{_COMPOUND_SUFFIX}) ?,? {_HOUSE}\b"
)
_STRONG_PREFIX = (
    "rue|calle|c/|avenida|avda\\.|rua|travessa|viale|piazza|piazzale|vicolo|corso|strada|contrada|chemin|impasse|"
    "allée|quai|ul\\.|ulica|al\\.|aleja|pl\\.|plac|os\\.|osiedle|paseo|camino|carrera|ronda|travesía|glorieta|"
    "pasaje|callejón|rambla|alameda|praça|estrada|rodovia|ladeira"
)
_WEAK_PREFIX = (
    "avenue|boulevard|bd|place|route|cours|via|largo|plaza|cuesta|vía|c\\.|borgo|canale|rotonda|incrocio|stretto|"
    "setor|quadra|vila|favela|conjunto|lagoa|vale|trecho|núcleo|residencial|parque|morro|sítio|fazenda|"
    "condomínio|chácara|passeio|urbanización|camiño|distrito|viela|jardim|recanto|área|trevo|cañada|sector|acceso|pasadizo|pátio|esplanada|colônia|lago|vereda"
)
_PARTICLE = r"(?:de|del|de la|de las|de los|do|da|dos|das|des|du|di|della|degli|dei|le|la|les|el|y|e|d'|dell')"
_NAMED = rf"(?:(?:{_PARTICLE} )?{_CAP}|\d{{1,2}} de {_CAP})"
_PREFIX_ADDRESS_STRONG = re.compile(
    rf"(?:\b{_HOUSE},? )?\b(?:{_STRONG_PREFIX}) (?:{_NAMED} ?){{1,4}}(?:,? (?:n[º°o]\.? ?)?{_HOUSE}\b)?", re.I
)
_PREFIX_ADDRESS_WEAK = re.compile(
    rf"(?:\b{_HOUSE},? \b(?:{_WEAK_PREFIX}) (?:{_NAMED} ?){{1,4}}|\b(?:{_WEAK_PREFIX}) (?:{_NAMED} ?){{1,4}},? "
    rf"(?:n[º°o]\.? ?)?{_HOUSE}\b)", re.I
)
_FRENCH_ADDRESS = re.compile(rf"\b(?:avenue|boulevard|place|route|cours|allée|impasse|quai) (?:{_NAMED} ?){{1,4}}")

_TITLE = (
    r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Dame|Lady|Lord|Herr|Frau|Hr|Fr|M|Mme|Mlle|Sr|Sra|Srta|Sig|Sig\.ra|"
    r"Dott|Dott\.ssa|Pan|Pani|Dhr|Mevr|Ing|Mag|Dipl\.-Ing|Dr\.-Ing|Univ\.Prof"
)
_NAME_TOKEN = rf"(?:{_CAP}|(?:van|von|de|da|di|del|della|der|den|ten|ter|du|le|la|dos|das|zu|y|af|bin|al)(?= [{_UPPER}]))"
_NAME_SUFFIX = r"(?:,? (?:Jr|Sr|MD|PhD|DDS|DVM|II|III|IV|V|Esq|MBA)\.?)"
_TITLED = re.compile(rf"\b(?:{_TITLE})\.? ((?:{_NAME_TOKEN} ?){{1,4}}){_NAME_SUFFIX}?")
_GREETING = re.compile(
    r"\b(?:Dear|Hi|Hello|Hey|Hallo|Liebe|Lieber|Bonjour|Cher|Chère|Hola|Estimado|Estimada|Ciao|Caro|Cara|"
    rf"Gentile|Beste|Hej|Olá|Prezado|Prezada|Witaj|Szanowny|Szanowna|Kære|Hei) ((?:{_NAME_TOKEN} ?){{1,4}})"
)
_SIGNOFF = re.compile(
    r"(?:Regards|Best regards|Kind regards|Warm regards|Thanks|Thank you|Best|Cheers|Sincerely|Yours|Best wishes|"
    r"Yours sincerely|Yours truly|Mit freundlichen Grüßen|Viele Grüße|Grüße|Cordialement|Bien à vous|Saludos|"
    r"Atentamente|Un saluto|Cordiali saluti|Saluti|Met vriendelijke groet|Groeten|Pozdrawiam|Hälsningar|"
    r"Med vänliga hälsningar|Med venlig hilsen|Hilsen|Atenciosamente|Abraços|Cumprimentos)[,!.]?\s+"
    rf"((?:{_NAME_TOKEN} ?){{1,4}}){_NAME_SUFFIX}?"
)
_CAP_WORD = re.compile(rf"(?<![\w'’-]){_CAP}")
_NAME_TAIL = re.compile(rf"(?: {_NAME_TOKEN}){{1,3}}")

def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Capitalised words that follow a greeting or sign-off but are not names, and list names that are also words.
_NOT_NAMES = _wordset("""
team support customer customers service services all everyone there sir madam friends folks guys you again
in advance for so much a lot the your our my we i it this that please help desk department billing sales
hello hi dear thanks thank regards best cheers sincerely yours kind warm good morning afternoon evening
mr mrs ms dr prof dipl ing univ mag dott sig herr frau
""")
AMBIGUOUS_NAMES = _wordset("""
Will May June April August Grace Hope Mark Bill Art Rose Summer Dean Chase Max Sunny Paris Faith Joy Honey
Penny Ray Rich Sky Star Else Sandy Lane Page Cash Frank Gay Guy Jack Miles Norman Pat Price Reed Royal Sage
Victory Young Ivy Iris Holly Jade Ruby Pearl Amber Crystal Autumn Dawn Daisy Lily Olive Brook River Storm
Wolf Blue Don Gene Carol Harmony Destiny Precious Angel Cherry Major Marshall Mason Hunter Taylor Cook Baker
Carter Parker Porter Rod Sterling Justice Liberty Trinity Unity Diamond Princess King Prince Duke Earl Baron
Bishop Noble West North Long Small Green Brown White Black Gray Grey Golden Marine Hall Bank Bay Best Case
Cole Ever Fine Ford Hero Lake Love Lucky Nice Ocean Rain Rock Santa Silver Snow Wade Ward Way Wood Pro Basic
Plus Premium Help Desk Customer Support Team Monday Tuesday Wednesday Thursday Friday Saturday Sunday
Thanks Hello Dear Regards Order Invoice Version Total Account Card Phone Street Road Park Court Place Via
Jan Urban Vita Roma Mercedes Dolores Carmen Luz Sol Paz Pilar Cruz Chance Christian Clement Constance
Delta Easter Echo Fortune Forest Glory Happy Heaven Jewel Jolly Journey Legend Lux Magic Melody Mercy Misty
Patience Pepper Poppy Prosper Rebel Rio Saint Serenity Shadow Spring Sugar Tempest True Valentine Winter
Apple Berry Bunny Candy Cookie Ginger Hazel Heather Jasmine Laurel Myrtle Willow Violet Sterling Colt Tex Can Per Ole Van Son Sun Did Any Nor Tor Bo
""")


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """The shipped first-name list (`engine/data_files/names.txt`)."""
    text = _NAMES_FILE.read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


# ------------------------------------------------------------------ detection


def _phone_ok(text: str, m: re.Match[str]) -> bool:
    value = m.group(0)
    digits = sum(ch.isdigit() for ch in value.split("x")[0].split("ext")[0])
    if not 7 <= digits <= 15 or _DATE.fullmatch(value.strip("()")):
        return False
    if value.count(".") >= 2 and not re.search(r"[ ()\-]", value) and digits < 10:
        return False
    before = text[max(0, m.start() - 30):m.start()]
    if _NOT_PHONE_CONTEXT.search(before) and not re.search(r"(?:phone|call|tel|mobile|cell|fax)\W*\w*\W*$",
                                                           before, re.I):
        return False
    if value[0] in "+(" or value.startswith("00"):
        return True
    separated = bool(re.search(r"[ ()\-./]", value))
    if separated:
        return digits >= 8 or bool(_PHONE_CONTEXT.search(before))
    # A bare run of digits: a national number (leading 0) or a NANP-length one, else only beside a phone word.
    if value[0] == "0" and 9 <= digits <= 12:
        return True
    return (digits in (10, 11) and value[0] != "0") or bool(_PHONE_CONTEXT.search(before))


def _name_tokens_ok(tokens: str) -> bool:
    words = tokens.split()
    return bool(words) and words[0].lower() not in _NOT_NAMES and not words[0].isupper() \
        and words[0][0].isupper()


def _trim_name(tokens: str) -> str:
    """Drop trailing words that are not name-like (a greeting running into "Thanks", say)."""
    words = tokens.rstrip().split(" ")
    while words and (words[-1].lower() in _NOT_NAMES or words[-1].lower() in {"van", "von", "de", "da", "di"}):
        words.pop()
    return " ".join(words)


def _names(text: str) -> list[Finding]:
    found: list[Finding] = []
    for pattern in (_TITLED, _GREETING, _SIGNOFF):
        for m in pattern.finditer(text):
            tokens = _trim_name(m.group(1))
            if _name_tokens_ok(tokens):
                start = m.start(1)
                found.append(Finding("NAME", start, start + len(tokens), tokens))
    names = first_names()
    for m in _CAP_WORD.finditer(text):
        first = m.group(0)
        if first not in names and first.split("-")[0] not in names:
            continue
        tail = _NAME_TAIL.match(text, m.end())
        rest_words = tail.group(0).split() if tail else []
        surname = bool(rest_words) and len(rest_words[0]) > 1 and rest_words[0][0].isupper() \
            and rest_words[0] not in AMBIGUOUS_NAMES
        if first in AMBIGUOUS_NAMES and not surname:
            continue
        value = _trim_name(first + (tail.group(0) if tail else ""))
        found.append(Finding("NAME", m.start(), m.start() + len(value), value))
    return found


def _alternatives(pattern: str) -> frozenset[str]:
    return frozenset(re.sub(r"[^\w]", "", alt).lower() for alt in pattern.split("|"))


_STRONG_WORDS = _alternatives(_STRONG_PREFIX)
_WEAK_WORDS = _alternatives(_WEAK_PREFIX)
_FRENCH_WORDS = frozenset(("avenue", "boulevard", "place", "route", "cours", "allée", "impasse", "quai"))
_SUFFIX_ENDINGS = tuple(_alternatives(_COMPOUND_SUFFIX))


def _addresses(text: str, has_digit: bool) -> list[Finding]:
    # The patterns are costly; a cheap look at the words decides which of them can match at all.
    words = set(re.findall(r"\w+", text.lower()))
    patterns = []
    if has_digit:
        patterns.append(_US_ADDRESS)
        if any(w.endswith(_SUFFIX_ENDINGS) for w in words):
            patterns.append(_COMPOUND_ADDRESS)
    if words & _STRONG_WORDS:
        patterns.append(_PREFIX_ADDRESS_STRONG)
    if has_digit and words & _WEAK_WORDS:
        patterns.append(_PREFIX_ADDRESS_WEAK)
    if words & _FRENCH_WORDS:
        patterns.append(_FRENCH_ADDRESS)
    found = []
    for pattern in patterns:
        for m in pattern.finditer(text):
            value = m.group(0).rstrip(" ,")
            if pattern is _PREFIX_ADDRESS_STRONG and not any(ch.isupper() for ch in value[1:]):
                continue
            found.append(Finding("ADDRESS", m.start(), m.start() + len(value), value))
    return found


def _candidates(text: str) -> list[Finding]:
    out: list[Finding] = []
    if "@" in text:
        out += [Finding("EMAIL", m.start(), m.end(), m.group(0)) for m in _EMAIL.finditer(text)]
    has_digit = any(ch.isdigit() for ch in text)
    if has_digit:
        for m in _IBAN.finditer(text):
            value = m.group(0)
            # A spaced IBAN may run into a following word: shorten it group by group, never char by char.
            while len(value.replace(" ", "")) >= 15:
                if iban_ok(value):
                    out.append(Finding("IBAN", m.start(), m.start() + len(value), value))
                    break
                if " " not in value:
                    break
                value = value.rsplit(" ", 1)[0]
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if 12 <= len(digits) <= 19 and luhn_ok(digits):
                out.append(Finding("CARD", m.start(), m.end(), m.group(0)))
        for m in _IPV4.finditer(text):
            if not _VERSION_CONTEXT.search(text[max(0, m.start() - 12):m.start()]):
                out.append(Finding("IP", m.start(), m.end(), m.group(0)))
        out += [Finding("PHONE", m.start(), m.end(), m.group(0)) for m in _PHONE.finditer(text)
                if _phone_ok(text, m)]
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group(0))
            except ValueError:
                continue
            out.append(Finding("IP", m.start(), m.end(), m.group(0)))
    out += _addresses(text, has_digit)
    out += _names(text)
    return out


def find_pii(text: str) -> list[Finding]:
    """Every piece of personal data in `text`, non-overlapping, in order of position."""
    return list(_find_cached(text)) if len(text) < 4096 else list(_find(text))


@lru_cache(maxsize=16384)
def _find_cached(text: str) -> tuple[Finding, ...]:
    # Datasets repeat their instructions and templated replies: a small cache saves most of the work.
    return _find(text)


def _find(text: str) -> tuple[Finding, ...]:
    accepted: list[Finding] = []
    for f in sorted(_candidates(text), key=lambda f: (_PRIORITY[f.kind], f.start, -(f.end - f.start))):
        if f.end > f.start and all(f.end <= a.start or a.end <= f.start for a in accepted):
            accepted.append(f)
    return tuple(sorted(accepted, key=lambda f: f.start))


# ------------------------------------------------------------------ scrubbing


@dataclass
class Scrubber:
    """Replaces personal data with typed placeholders, the same value getting the same one.

    Use one per row so that `<NAME_1>` in the prompt and in the response mean the same person.
    """

    placeholders: dict[tuple[str, str], str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def scrub(self, text: str) -> str:
        """`text` with every finding replaced; `counts` gains one per finding."""
        findings = find_pii(text)
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
        parts.append(text[pos:])
        return "".join(parts)


def scrub_text(text: str) -> tuple[str, dict[str, int]]:
    """Scrub one text on its own; returns the scrubbed text and the count of findings per type."""
    scrubber = Scrubber()
    return scrubber.scrub(text), dict(scrubber.counts)


def scrub_row(fields: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    """Scrub every string field of a row with one set of placeholders; returns the row and counts per type."""
    scrubber = Scrubber()
    return {k: scrubber.scrub(v) for k, v in fields.items()}, dict(scrubber.counts)
