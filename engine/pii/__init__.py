"""Finding and scrubbing personal data, offline and model-free (light: the console may import it).

Types: EMAIL, PHONE (Google's libphonenumber through `phonenumbers`, in the regions of `data.phone_regions`),
ADDRESS (street addresses), CARD (Luhn and issuer ranges), IBAN (country format and mod 97), NATIONAL_ID (US
SSN, UK NINO, NL BSN, FR NIR, DE tax id, ES DNI/NIE, IT codice fiscale, BR CPF, by `python-stdnum`'s
validators), IP (global v4 and v6 addresses) and NAME (titles, greetings, signatures, a shipped list of first
names, capitalisation). `data.scrub_types` chooses among them. Each value becomes a typed placeholder, the
same one for the same value within a row (`<NAME_1>`, `<EMAIL_1>`, ...).

Numbers that are not personal stay: decimals, arithmetic, quantities with units, money, years, dates and
timestamps, versions, hashes, UUIDs and codes, and bare digit runs with no phone or card word nearby.

What it cannot catch: names written in lower case or in non-Latin scripts, surnames on their own without a
title, first names that are not in the list and stand alone, addresses without a street word, phone numbers
written as words or in a region outside the setting without `+`, a card or weakly-checked identifier (SSN
written without dashes, BSN, DE tax id, DNI, CPF without its dots) with no word naming it nearby, identifiers
of other countries, licence plates and dates of birth.
"""

from engine.pii.detect import DEFAULT_SETTINGS, PII_TYPES, Finding, PiiSettings, find_pii
from engine.pii.numbers import iban_ok, luhn_ok
from engine.pii.phones import DEFAULT_PHONE_REGIONS
from engine.pii.scrub import Scrubber, ScrubChanges, mask, scrub_row, scrub_text

__all__ = ["DEFAULT_PHONE_REGIONS", "DEFAULT_SETTINGS", "PII_TYPES", "Finding", "PiiSettings", "ScrubChanges",
           "Scrubber", "find_pii", "iban_ok", "luhn_ok", "mask", "scrub_row", "scrub_text"]
