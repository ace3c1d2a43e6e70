"""Person names: titles, greetings and sign-offs, and a shipped list of first names followed by a surname.

Written for Latin scripts and capitalised names; see the package docstring for what it cannot catch.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_NAMES_FILE = Path(__file__).resolve().parent.parent / "data_files" / "names.txt"

UPPER = "A-ZÀ-ÖØ-ÞĀ-ſ"  # Latin capitals (the Latin Extended-A block holds both cases; checked again below)
CAP = rf"[{UPPER}][\w'’]*(?:-[{UPPER}][\w'’]*)*"

_TITLE = (
    r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Dame|Lady|Lord|Herr|Frau|Hr|Fr|M|Mme|Mlle|Sr|Sra|Srta|Sig|Sig\.ra|"
    r"Dott|Dott\.ssa|Pan|Pani|Dhr|Mevr|Ing|Mag|Dipl\.-Ing|Dr\.-Ing|Univ\.Prof"
)
_NAME_TOKEN = rf"(?:{CAP}|(?:van|von|de|da|di|del|della|der|den|ten|ter|du|le|la|dos|das|zu|y|af|bin|al)(?= [{UPPER}]))"
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
_CAP_WORD = re.compile(rf"(?<![\w'’-]){CAP}")
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
Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec
Apple Berry Bunny Candy Cookie Ginger Hazel Heather Jasmine Laurel Myrtle Willow Violet Sterling Colt Tex Can Per Ole Van Son Sun Did Any Nor Tor Bo
""")


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """The shipped first-name list (`engine/data_files/names.txt`)."""
    text = _NAMES_FILE.read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))



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


def find_names(text: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of every person name found."""
    found: list[tuple[int, int, str]] = []
    for pattern in (_TITLED, _GREETING, _SIGNOFF):
        for m in pattern.finditer(text):
            tokens = _trim_name(m.group(1))
            if _name_tokens_ok(tokens):
                start = m.start(1)
                found.append((start, start + len(tokens), tokens))
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
        found.append((m.start(), m.start() + len(value), value))
    return found

