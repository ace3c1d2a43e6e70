"""Generate the demo dataset: support-ticket triage, shipped as `engine/demo_data/tickets.jsonl`.

Each row is instruction-shaped (instruction / input = the ticket / output = "Category: ...\\nReply: ...") with a
`category` label column. Some tickets carry synthetic personal data (Faker) so that scrubbing has work to do,
and a few rows are exact duplicates so that the data check has something to find. Replies follow one template
per category, so a tiny model learns them in about a minute on a CPU. Seeded: the output is reproducible.

    python scripts/make_demo_dataset.py [--rows 3000] [--out engine/demo_data/tickets.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from faker import Faker

INSTRUCTION = "Triage this support ticket: give its category and a short reply to the customer."

#: category -> (ticket openings, the reply template)
CATEGORIES: dict[str, tuple[list[str], str]] = {
    "billing": (
        [
            "I was charged twice for invoice INV-{num}.",
            "My last bill of ${price} looks wrong, I expected a lower amount.",
            "Why did my subscription price go up to ${price} this month?",
            "There is a charge on my statement I do not recognise (invoice INV-{num}).",
        ],
        "Thanks for flagging this. We are reviewing the charge and will correct your bill within two business days.",
    ),
    "shipping": (
        [
            "My order #{num} has not arrived yet and it was due on {date}.",
            "The tracking for order #{num} has not moved in a week.",
            "Where is my package? Order #{num} was supposed to ship on {date}.",
            "The courier says order #{num} was delivered but I never got it.",
        ],
        "Sorry about the delay. We have contacted the carrier about your order and will send you an update within 24 hours.",
    ),
    "refund": (
        [
            "I returned order #{num} on {date} and I am still waiting for my refund.",
            "Please refund the ${price} I paid, the item arrived broken.",
            "I want my money back for order #{num}, it is not what I ordered.",
            "How long does a refund take? I sent the item back on {date}.",
        ],
        "We have received your refund request. Once approved, the money reaches your account within 5 to 7 business days.",
    ),
    "account_access": (
        [
            "I cannot log in to my account, the password reset email never comes.",
            "My account is locked after too many login attempts.",
            "The two-factor code is not accepted when I try to sign in.",
            "I forgot the email address I used to register, how do I get into my account?",
        ],
        "We have reset the sign-in for your account. Please follow the link we just sent you to choose a new password.",
    ),
    "technical_issue": (
        [
            "The app crashes every time I open the settings page (version {version}).",
            "After updating to version {version} the sync stopped working.",
            "I get error code E{num} when I try to upload a file.",
            "The website shows a blank page after I log in since {date}.",
        ],
        "Thanks for the details. Please update to the latest version and restart the app; if it still fails, our engineers will look into it.",
    ),
    "product_question": (
        [
            "Does the Pro plan include priority support?",
            "Is the model {sku} compatible with the older charger?",
            "Can I use the product outdoors in the rain?",
            "What is the difference between the Basic and the Pro plan?",
        ],
        "Good question. You will find the full details on our product page, and we are happy to help if anything is unclear.",
    ),
    "cancellation": (
        [
            "Please cancel my subscription from next month.",
            "I want to close my account and stop all payments.",
            "How do I cancel order #{num} before it ships?",
            "Cancel my plan, I no longer need it after {date}.",
        ],
        "We are sorry to see you go. Your cancellation is confirmed and you will not be charged again.",
    ),
    "feedback": (
        [
            "Just wanted to say your support team was great last week.",
            "The new dashboard is much easier to use, thank you.",
            "I love the product but the delivery box was too big.",
            "Your checkout page is confusing, I almost ordered the wrong size.",
        ],
        "Thank you for your feedback. We have shared it with the team, it helps us improve.",
    ),
}

EXTRAS = [
    "Thanks in advance.",
    "This is urgent.",
    "I have been a customer for years.",
    "Please help.",
    "Can someone get back to me today?",
    "",
    "",
]


def _personal_bits(fake: Faker, rng: random.Random) -> list[str]:
    """Zero or more sentences holding synthetic personal data."""
    bits: list[str] = []
    if rng.random() < 0.25:
        bits.append(f"You can reach me at {fake.email()}.")
    if rng.random() < 0.15:
        bits.append(f"My phone number is {fake.phone_number()}.")
    if rng.random() < 0.10:
        bits.append(f"I live at {fake.street_address().replace(chr(10), ', ')}, {fake.city()}.")
    if rng.random() < 0.05:
        bits.append(f"The card I used is {fake.credit_card_number()}.")
    if rng.random() < 0.04:
        bits.append(f"Please send it to my account {fake.iban()}.")
    if rng.random() < 0.04:
        bits.append(f"My IP address is {fake.ipv4_public()}.")
    return bits


def make_ticket(fake: Faker, rng: random.Random, category: str) -> str:
    """One ticket of `category`: greeting, the problem, maybe personal data, maybe a signature."""
    openings, _ = CATEGORIES[category]
    body = rng.choice(openings).format(
        num=rng.randint(10000, 99999),
        price=f"{rng.randint(5, 400)}.{rng.randint(0, 99):02d}",
        date=fake.date_between("-60d", "today").isoformat(),
        version=f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        sku=f"X{rng.randint(100, 999)}",
    )
    parts = [rng.choice(["Hello,", "Hi,", "Hi team,", "Dear support,", ""]), body, rng.choice(EXTRAS)]
    parts += _personal_bits(fake, rng)
    if rng.random() < 0.35:
        parts.append(f"{rng.choice(['Regards,', 'Thanks,', 'Best,', 'Cheers,'])} {fake.name()}")
    return " ".join(p for p in parts if p)


def make_rows(n_rows: int, seed: int = 7, duplicates: int = 24) -> list[dict[str, str]]:
    """`n_rows` rows, `duplicates` of them exact copies of earlier rows, in a seeded order."""
    rng = random.Random(seed)
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
    fake.seed_instance(seed)
    names = list(CATEGORIES)
    rows: list[dict[str, str]] = []
    for _ in range(n_rows - duplicates):
        category = rng.choice(names)
        rows.append({
            "instruction": INSTRUCTION,
            "input": make_ticket(fake, rng, category),
            "output": f"Category: {category}\nReply: {CATEGORIES[category][1]}",
            "category": category,
        })
    for _ in range(duplicates):
        rows.insert(rng.randrange(len(rows)), dict(rng.choice(rows)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent.parent / "engine" / "demo_data" / "tickets.jsonl")
    args = parser.parse_args()
    rows = make_rows(args.rows, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
