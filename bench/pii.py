"""Precision and recall of `engine.pii` per type, on a labelled corpus made with Faker over 12 locales.

The corpus is built first and independently of the patterns: each sentence is a template filled with Faker
values whose character spans are recorded, plus near-miss sentences (versions, dates, order and invoice
numbers, prices, Luhn-failing card-like numbers, mod-97-failing IBAN-like strings) that must survive untouched.
A detection counts as a true positive when it overlaps a gold span of the same type.

    python bench/pii.py [--per-locale 200] [--seed 0] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from faker import Faker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOCALES = ["en_US", "en_GB", "en_AU", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "pl_PL",
           "sv_SE", "da_DK"]
TYPES = ["EMAIL", "PHONE", "ADDRESS", "CARD", "IBAN", "NATIONAL_ID", "IP", "NAME"]

#: Templates: {TYPE} slots are filled with Faker values and labelled; other text is filler.
TEMPLATES = [
    "Hello, my name is {NAME} and my order has not arrived.",
    "Please contact {NAME} at {EMAIL} about the refund.",
    "You can call me on {PHONE} any time after 5pm.",
    "My number is {PHONE}, the ticket is about the login problem.",
    "Send the replacement to {ADDRESS}, please.",
    "I moved to {ADDRESS} last month so update my details.",
    "The card ending in the number {CARD} was charged twice.",
    "I paid with card {CARD} yesterday.",
    "Please wire the money back to {IBAN} by Friday.",
    "My bank account is {IBAN}.",
    "The login attempts came from {IP} according to the logs.",
    "Our server at {IP} cannot reach your API.",
    "Regards, {NAME}",
    "Thanks for the help!\nBest wishes,\n{NAME}",
    "Dear {NAME}, I am writing about invoice 4471.",
    "{NAME} ({EMAIL}) reported that the app crashes.",
    "Reach {NAME} on {PHONE} or at {EMAIL}.",
    "Ship it to {NAME}, {ADDRESS}.",
    "Write to me: {EMAIL}",
    "Hi {FIRST}, thanks for the quick answer!",
    "For the form: {ID_SENTENCE}",
    "{ID_SENTENCE} Please update my file.",
    "I spoke with {FIRST} yesterday and she said it was fixed.",
]

NEAR_MISSES = [
    "Please update to version {version} before reporting the bug.",
    "Build {version4} fixes the crash on start-up.",
    "The meeting is on {date} at 10:30.",
    "It was delivered on {date_eu}, not on {date_us}.",
    "Order #{order} has been shipped.",
    "My order number is {order} and it is late.",
    "Invoice INV-{year}-{inv} is still unpaid.",
    "Reference {year}/{inv} was closed by mistake.",
    "The total was {price} including tax.",
    "It costs {price_eu} in the shop but {price} online.",
    "The tracking number {tracking} shows no movement.",
    "Serial number {luhn_fail} is printed on the box.",
    "The code {iban_fail} from the letter does not work.",
    "Error code E{inv} appears after {count} seconds.",
    "We had {big} visitors in {year}, up 12.5% on the year before.",
    "Call the Help Desk about the Pro Plan on Monday.",
    "The Basic Plan costs less than the Premium Plan.",
    "Will the new Version work with the older Charger?",
    "May I ask why my Account was locked on Friday?",
    "Thanks, Customer Support Team",
]


@dataclass
class Sample:
    """One labelled sentence: its text and the gold (type, start, end) spans."""

    text: str
    spans: list[tuple[str, int, int]] = field(default_factory=list)
    near_miss: bool = False


def _luhn_fail(rng: random.Random) -> str:
    from engine.pii import luhn_ok

    while True:
        digits = "".join(str(rng.randint(0, 9)) for _ in range(16))
        if not luhn_ok(digits):
            return digits


def _idnr(rng: random.Random) -> str:
    from stdnum.de import idnr
    from stdnum.iso7064 import mod_11_10

    while True:
        body = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(9))
        number = body + mod_11_10.calc_check_digit(body)
        if idnr.is_valid(number):
            return number


def _nino(rng: random.Random) -> str:
    from engine.pii.ids import nino_ok

    while True:
        letters = "ABCEGHJKLMNPRSTWXYZ"
        value = rng.choice(letters) + rng.choice(letters) + f"{rng.randint(0, 999999):06d}" + rng.choice("ABCD")
        if nino_ok(value):
            return value


#: (sentence before the identifier, how to make one): the word that names it, as people write it.
ID_SENTENCES = [
    ("My SSN is", lambda fake, rng: Faker("en_US").ssn()),
    ("BSN:", lambda fake, rng: Faker("nl_NL").ssn()),
    ("Numéro de sécurité sociale", lambda fake, rng: Faker("fr_FR").ssn()),
    ("Steuer-ID", lambda fake, rng: _idnr(rng)),
    ("DNI", lambda fake, rng: Faker("es_ES").nif()),
    ("NIE", lambda fake, rng: Faker("es_ES").nie()),
    ("Codice fiscale", lambda fake, rng: Faker("it_IT").ssn()),
    ("CPF", lambda fake, rng: Faker("pt_BR").cpf()),
    ("National Insurance number", lambda fake, rng: _nino(rng)),
]


def _value(fake: Faker, kind: str, rng: random.Random) -> str:
    if kind == "NAME":
        return fake.name()
    if kind == "FIRST":
        return fake.first_name()
    if kind == "EMAIL":
        return fake.email()
    if kind == "PHONE":
        return fake.phone_number()
    if kind == "ADDRESS":
        return fake.street_address().replace("\n", ", ")
    if kind == "CARD":
        number = fake.credit_card_number()
        if rng.random() < 0.4 and len(number) == 16:
            sep = rng.choice([" ", "-"])
            number = sep.join(number[i:i + 4] for i in range(0, 16, 4))
        return number
    if kind == "IBAN":
        iban = fake.iban()
        if rng.random() < 0.4:
            iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        return iban
    if kind == "IP":
        return fake.ipv4_public() if rng.random() < 0.8 else fake.ipv6()
    raise ValueError(kind)


def _fill(template: str, fake: Faker, rng: random.Random) -> Sample:
    if "{ID_SENTENCE}" in template:
        words, make = rng.choice(ID_SENTENCES)
        Faker.seed(rng.randint(0, 2**31))
        template = template.replace("{ID_SENTENCE}", words + " {NATIONAL_ID}.")
        fixed = make(fake, rng)
        return _fill_with(template, fake, rng, {"NATIONAL_ID": fixed})
    return _fill_with(template, fake, rng, {})


def _fill_with(template: str, fake: Faker, rng: random.Random, fixed: dict[str, str]) -> Sample:
    text, pos = "", 0
    spans: list[tuple[str, int, int]] = []
    while True:
        start = template.find("{", pos)
        if start < 0:
            return Sample(text + template[pos:], spans)
        end = template.index("}", start)
        kind = template[start + 1:end]
        text += template[pos:start]
        value = fixed[kind] if kind in fixed else _value(fake, kind, rng)
        spans.append(("NAME" if kind == "FIRST" else kind, len(text), len(text) + len(value)))
        text += value
        pos = end + 1


def _near_miss(template: str, fake: Faker, rng: random.Random) -> Sample:
    d = fake.date_between("-3y", "today")
    iban_fail = fake.iban()
    iban_fail = iban_fail[:2] + f"{(int(iban_fail[2:4]) + 1 + rng.randint(0, 90)) % 100:02d}" + iban_fail[4:]
    text = template.format(
        version=f"{rng.randint(1, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
        version4=f"{rng.randint(1, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(100, 9999)}",
        date=d.isoformat(), date_eu=d.strftime("%d.%m.%Y"), date_us=d.strftime("%m/%d/%Y"),
        order=rng.randint(10_000, 99_999_999), year=d.year, inv=f"{rng.randint(1, 99999):05d}",
        price=f"${rng.randint(1, 9999):,}.{rng.randint(0, 99):02d}",
        price_eu=f"{rng.randint(1, 9999):,}".replace(",", ".") + f",{rng.randint(0, 99):02d} €",
        tracking=f"1Z{rng.randint(10**9, 10**10 - 1)}", luhn_fail=_luhn_fail(rng), iban_fail=iban_fail,
        count=rng.randint(2, 120), big=f"{rng.randint(1000, 999999):,}",
    )
    return Sample(text, [], near_miss=True)


def build_corpus(per_locale: int = 200, seed: int = 0, ids: bool = True) -> list[Sample]:
    """`per_locale` labelled sentences for each locale, a quarter of them near-misses; `ids=False` leaves out
    the national-identifier sentences (the corpus as it was before they were added)."""
    rng = random.Random(seed)
    templates = TEMPLATES if ids else [t for t in TEMPLATES if "{ID_SENTENCE}" not in t]
    samples: list[Sample] = []
    for i, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed + i)
        for _ in range(per_locale):
            if rng.random() < 0.25:
                samples.append(_near_miss(rng.choice(NEAR_MISSES), fake, rng))
            else:
                samples.append(_fill(rng.choice(templates), fake, rng))
    return samples


def evaluate(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Per-type true positives, false positives, false negatives, precision and recall."""
    from engine.pii import find_pii

    stats = {t: {"tp": 0, "fp": 0, "fn": 0} for t in TYPES}
    survived = 0
    near = 0
    for sample in samples:
        found = find_pii(sample.text)
        near += sample.near_miss
        survived += sample.near_miss and not found
        for kind, start, end in sample.spans:
            hit = any(f.kind == kind and f.start < end and start < f.end for f in found)
            stats[kind]["tp" if hit else "fn"] += 1
        for f in found:
            if not any(kind == f.kind and f.start < end and start < f.end for kind, start, end in sample.spans):
                stats[f.kind]["fp"] += 1
    table: dict[str, dict[str, float]] = {}
    for kind, s in stats.items():
        precision = s["tp"] / (s["tp"] + s["fp"]) if s["tp"] + s["fp"] else 1.0
        recall = s["tp"] / (s["tp"] + s["fn"]) if s["tp"] + s["fn"] else 1.0
        table[kind] = {**s, "precision": precision, "recall": recall}
    table["_near_misses"] = {"total": near, "survived": survived}
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    """A Markdown table of the figures."""
    goals = {"NAME": 0.80, "ADDRESS": 0.80}
    lines = ["| type | gold | found | precision | recall | recall goal |", "| --- | --- | --- | --- | --- | --- |"]
    for kind in TYPES:
        s = table[kind]
        lines.append(f"| {kind} | {int(s['tp'] + s['fn'])} | {int(s['tp'] + s['fp'])} | {s['precision']:.3f} | "
                     f"{s['recall']:.3f} | {goals.get(kind, 0.95):.2f} |")
    nm = table["_near_misses"]
    lines.append(f"\nNear-miss sentences left untouched: {int(nm['survived'])} / {int(nm['total'])}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-locale", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    parser.add_argument("--no-ids", action="store_true", help="leave out the national-identifier sentences")
    parser.add_argument("--show-errors", type=int, default=0, help="print this many misses and false alarms")
    args = parser.parse_args()
    samples = build_corpus(args.per_locale, args.seed, ids=not args.no_ids)
    t0 = time.perf_counter()
    table = evaluate(samples)
    elapsed = time.perf_counter() - t0
    text = format_table(table)
    print(text)
    print(f"\n{len(samples)} sentences, {len(LOCALES)} locales, detection took {elapsed:.2f} s")
    if args.show_errors:
        _show_errors(samples, args.show_errors)
    if args.record:
        with open(ROOT / "docs" / "benchmarks.md", "a", encoding="utf-8") as fh:
            fh.write(
                f"\n### bench/pii.py: {dt.date.today().isoformat()}\n\n"
                f"Machine: {platform.machine()}, {platform.processor() or platform.system()}, Python "
                f"{platform.python_version()}. Command: `python bench/pii.py --per-locale {args.per_locale} "
                f"--seed {args.seed}{' --no-ids' if args.no_ids else ''} --record`. Corpus: {len(samples)} sentences over {len(LOCALES)} Faker locales "
                f"({', '.join(LOCALES)}); detection took {elapsed:.2f} s.\n\n{text}\n"
            )


def _show_errors(samples: list[Sample], limit: int) -> None:
    from engine.pii import find_pii

    shown = 0
    for sample in samples:
        found = find_pii(sample.text)
        misses = [(k, sample.text[s:e]) for k, s, e in sample.spans
                  if not any(f.kind == k and f.start < e and s < f.end for f in found)]
        alarms = [(f.kind, f.value) for f in found
                  if not any(k == f.kind and f.start < e and s < f.end for k, s, e in sample.spans)]
        if misses or alarms:
            print(f"{sample.text!r}\n   missed: {misses}\n   false: {alarms}")
            shown += 1
            if shown >= limit:
                return


if __name__ == "__main__":
    main()
