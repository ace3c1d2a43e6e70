"""engine.pii: each type is found and scrubbed, near-misses survive, placeholders are consistent in a row."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pii import PiiSettings, ScrubChanges, find_pii, iban_ok, luhn_ok, mask, scrub_row, scrub_text


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("write to anna.b+x@mail.example.co.uk today", "EMAIL", "anna.b+x@mail.example.co.uk"),
    ("call me on +44 (0)20 7946 0958 please", "PHONE", "+44 (0)20 7946 0958"),
    ("my number is 06 27 63 17 06.", "PHONE", "06 27 63 17 06"),
    ("ring 555-123-4567 after five", "PHONE", "555-123-4567"),
    ("I paid with 4111 1111 1111 1111 yesterday", "CARD", "4111 1111 1111 1111"),
    ("refund to DE89 3704 0044 0532 0130 00 please", "IBAN", "DE89 3704 0044 0532 0130 00"),
    ("requests from 81.2.69.142 were blocked", "IP", "81.2.69.142"),
    ("and from 2a00:1450:4001:82b::200e too", "IP", "2a00:1450:4001:82b::200e"),
    ("call me: 866-788-9373x4670", "PHONE", "866-788-9373x4670"),
    ("Telefon 030/1234567 bitte", "PHONE", "030/1234567"),
    ("Reach Leonard Ryan on +44(0)289018256 or at", "PHONE", "+44(0)289018256"),
    ("my card is 4111111111111111", "CARD", "4111111111111111"),
    ("send it to 221 Baker Street, London", "ADDRESS", "221 Baker Street"),
    ("Lieferung an Hauptstraße 5 bitte", "ADDRESS", "Hauptstraße 5"),
    ("livraison au 7, rue de Briand", "ADDRESS", "7, rue de Briand"),
    ("Regards, Joshua Diaz", "NAME", "Joshua Diaz"),
    ("I talked to Mrs. Okonkwo yesterday", "NAME", "Okonkwo"),
])
def test_finds_each_type(text: str, kind: str, value: str) -> None:
    found = [(f.kind, f.value) for f in find_pii(text)]
    assert (kind, value) in found


@pytest.mark.parametrize("text", [
    "Please update to version 2.14.3 before reporting the bug.",
    "Build 4.2.1.7 fixes the crash.",
    "It was delivered on 15.03.2024, not on 03/15/2024 or 2024-03-15.",
    "Order #88213945 has been shipped; invoice INV-2024-00123 is unpaid.",
    "The total was $1,299.99, or 1.299,00 € in the shop.",
    "Serial number 4111111111111112 is printed on the box.",
    "The code DE88 3704 0044 0532 0130 00 does not work.",
    "May I ask why my Account was locked on Friday? Will the Pro Plan help?",
    "Can I use the product outdoors in the rain?",
])
def test_near_misses_survive(text: str) -> None:
    assert find_pii(text) == []
    assert scrub_text(text) == (text, {})


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB83 WEST 1234 5698 7654 32")


def test_placeholders_are_consistent_within_a_row() -> None:
    row, counts = scrub_row({
        "input": "Hi, I am Joshua Diaz (joshua@example.org). Joshua Diaz again: joshua@example.org",
        "output": "Dear Joshua Diaz, we wrote to bob@example.org.",
    })
    assert row["input"] == "Hi, I am <NAME_1> (<EMAIL_1>). <NAME_1> again: <EMAIL_1>"
    assert row["output"] == "Dear <NAME_1>, we wrote to <EMAIL_2>."
    assert counts == {"NAME": 3, "EMAIL": 3}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_scrubbing_never_raises_and_is_idempotent(text: str) -> None:
    once, _ = scrub_text(text)
    assert scrub_text(once)[0] == once


@pytest.mark.parametrize("text", [
    # decimals and arithmetic (the numeric dataset)
    "Round 3.14159265 to 4 dps.", "What is 4155552671 + 20?", "12345678 * 98765432 = 1219326221002896",
    "371.44964705 - -4147.360281 = 6784021775862318", "Compute 97245/81106.", "Calculate 47^12.",
    "What is -405675 divided by 689.26310820?", "The answer is 4111111111111111.",
    "Work out 415555267 times 202555017.", "x = 4155552671 - y",
    # numbers with units, money, years, versions, timestamps
    "It weighs 4155552671 kg.", "Capacity 83200000 tokens", "Budget 4,155,552,671 € (+3.1% on last year)",
    "Revenue rose to 4155552671 dollars.", "Total: $4,155,552,671.00 for 12 units.",
    "2019 2020 2021 2022", "Between 1990 and 2020 the output doubled.", "Windows 10.0.19045.3803",
    "Firmware v12.4.113.7", "2024-03-15 10:30:00", "15.03.2024 10:30", "10:30–11:45",
    "1700000000123 DEBUG span=8812731 duration_ns=4155552671",
    # codes, hashes, identifiers of things, coordinates, formulas, scores, lists
    "id=550e8400-e29b-41d4-a716-446655440000", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "ISBN 9780306406157", "ISBN-13: 978-0-306-40615-7", "CAS 72814-31-8", "-73.057778, -70.775545",
    "Final score 3-2 after extra time.", "Set scores 6-4 3-6 7-6(5)", "Sort: 25561 87288 76334 38579 80492 87572",
    "0 76 73 3 45", " 551   19  358   22", "Order #4155552671 has shipped.", "Part no. 4155552671",
    "[17/Jul/2025:11:43:31 +0000] \"POST /orders HTTP/1.1\" 200 3675342",
    # seen in real text: a ZIP+4 code, section numbers, IPv6-looking symbols
    "Boston, MA  02110-1301  USA", "CA\t+4953-09709\tAmerica/Winnipeg", "microsecond (0-999999)",
    "'1.0.0.127.in-addr.arpa'", "the HTML5 specs sections \"8.2.4.44 Bogus", "symbols('::a')",
    # addresses nobody has: documentation, private and loopback networks
    "GET from 203.0.113.42 and 192.0.2.7, proxied by 10.20.30.40 and 127.0.0.1; v6 2001:db8::1",
    # weakly checked identifiers with no word naming them
    "Batch 111222333 passed QA.", "Reference 36574261809 on the statement.", "Lot 51706749N", "87425473429 rows",
])
def test_numbers_that_are_not_personal_survive(text: str) -> None:
    assert find_pii(text) == [], text


@pytest.mark.parametrize(("text", "value"), [
    ("My SSN is 536-90-4399.", "536-90-4399"),
    ("SSN 536904399 on file", "536904399"),
    ("National Insurance number AB 12 34 56 C", "AB 12 34 56 C"),
    ("BSN: 111222333", "111222333"),
    ("Mijn burgerservicenummer is 1112.22.333", "1112.22.333"),
    ("NIR 2 95 10 99 126 111 93", "2 95 10 99 126 111 93"),
    ("Numéro de sécurité sociale 295109912611193.", "295109912611193"),
    ("Steuer-ID 36 574 261 809", "36 574 261 809"),
    ("DNI 51706749N", "51706749N"),
    ("NIE Y7056020W", "Y7056020W"),
    ("Il mio codice fiscale è RCCMNL83S18D969H.", "RCCMNL83S18D969H"),
    ("CPF 874.254.734-29", "874.254.734-29"),
    ("meu CPF: 87425473429", "87425473429"),
])
def test_finds_each_national_identifier(text: str, value: str) -> None:
    assert [(f.kind, f.value) for f in find_pii(text)] == [("NATIONAL_ID", value)]


@pytest.mark.parametrize("text", [
    "SSN 000-12-3456", "NINO QQ123456C", "BSN: 111222334", "Steuer-ID 36 574 261 808", "DNI 51706749A",
    "CPF 874.254.734-28", "codice fiscale RCCMNL83S18D969A",
])
def test_identifiers_failing_their_check_are_left(text: str) -> None:
    assert [f for f in find_pii(text) if f.kind == "NATIONAL_ID"] == []


def test_settings_choose_types_and_phone_regions() -> None:
    text = "Zentrale: 030 1234567 or mail ana@example.org"
    assert {f.kind for f in find_pii(text)} == {"PHONE", "EMAIL"}
    assert {f.kind for f in find_pii(text, PiiSettings.of(["email"]))} == {"EMAIL"}
    assert {f.kind for f in find_pii(text, PiiSettings.of(phone_regions=["US"]))} == {"EMAIL"}
    assert {f.kind for f in find_pii("Tel. +49 30 1234567", PiiSettings.of(phone_regions=["US"]))} == {"PHONE"}


def test_masked_values_hide_most_characters() -> None:
    assert mask("+44 20 7946 0958") == "+44 •• •••• ••58"
    assert mask("Ana") == "A••"
    assert mask("3.14159265") == "3.1•••••65"


def test_changes_warn_when_more_than_one_percent_of_responses_change() -> None:
    changes = ScrubChanges()
    for i in range(200):
        changes.add(changed=i < 3, has_response=True, response_changed=i < 3,
                    replaced=[("PHONE", "020 7946 0958")] if i < 3 else [])
    settings = PiiSettings()
    report = changes.as_dict(settings)
    assert report["rows_changed"] == 3 and report["responses_changed_share"] == 0.015
    assert report["top_replaced"] == {"PHONE": [{"value": "02• •••• ••58", "count": 3}]}
    assert "3 of 200 rows (1.5%)" in report["warning"] and "most were PHONE" in report["warning"]
    assert '"EMAIL", "ADDRESS"' in report["warning"] and '"PHONE"' not in report["warning"].split("[")[1]
    quiet = ScrubChanges()
    quiet.add(changed=True, has_response=True, response_changed=True, replaced=[("EMAIL", "a@b.org")])
    for _ in range(199):
        quiet.add(changed=False, has_response=True, response_changed=False, replaced=[])
    assert quiet.warning(settings) == ""


def test_the_precision_corpus_is_left_untouched() -> None:
    from bench.pii_corpus import KINDS, build

    corpus = build(per_kind=40, seed=0)
    assert {kind for kind, _ in corpus} == set(KINDS) and len(KINDS) >= 18
    damaged = [(kind, text, find_pii(text)) for kind, text in corpus if find_pii(text)]
    assert damaged == []
