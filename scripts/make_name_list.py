"""Generate `engine/data_files/names.txt`: common first names across locales, for the PII name detector.

Taken once from Faker's person providers (latin-script locales), deduplicated, keeping only name-shaped entries;
names that are also everyday words ("Will", "May", ...) stay in the list: `engine.pii` matches those only with a
surname, a title or a greeting.
Run it again only to refresh the list; the output is shipped in the package.

    python scripts/make_name_list.py
"""

from __future__ import annotations

import importlib
from pathlib import Path

LOCALES = [
    "en_US", "en_GB", "en_AU", "en_CA", "en_IE", "en_NZ", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CA",
    "es_ES", "es_MX", "es_AR", "it_IT", "nl_NL", "nl_BE", "pt_PT", "pt_BR", "pl_PL", "sv_SE", "da_DK",
    "no_NO", "fi_FI", "cs_CZ", "sk_SK", "hr_HR", "sl_SI", "ro_RO", "hu_HU", "tr_TR", "id_ID", "et_EE",
    "lv_LV", "lt_LT", "en_IN", "fil_PH",
]



def first_names(locale: str) -> set[str]:
    """First names of one Faker locale (male, female and neutral lists, weighted or not)."""
    try:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    except ModuleNotFoundError:
        return set()
    names: set[str] = set()
    for attr in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"):
        names.update(str(n) for n in getattr(provider, attr, ()) or ())
    return names


def main() -> None:
    names: set[str] = set()
    for locale in LOCALES:
        names |= first_names(locale)
    keep = {
        n for n in names
        if all(part[:1].isupper() and part[1:].isalpha() and part[1:].islower() for part in n.split("-"))
        and len(n) >= 3
    }
    out = Path(__file__).resolve().parent.parent / "engine" / "data_files" / "names.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# First names (from Faker's person providers); see scripts/make_name_list.py\n"
                   + "\n".join(sorted(keep)) + "\n", encoding="utf-8")
    print(f"wrote {len(keep)} names to {out}")


if __name__ == "__main__":
    main()
