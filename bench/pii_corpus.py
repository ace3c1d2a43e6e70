"""A corpus of text with no personal data, of many kinds, to measure how much of it scrubbing leaves alone.

Every line is generated from a fixed seed: arithmetic and algebra (sympy), numeric questions and answers,
Python and JavaScript source, log lines (timestamps, request ids, IPs of the documentation ranges), CSV rows of
measurements, prices and quantities, versions, dates and times, UUIDs and hashes, ISBNs, coordinates, chemical
formulas, sports scores, product and order codes, statistics, lists and tables of numbers. `bench/pii_precision.py`
runs the scrubber over it; the tests use a small sample of the same lines.

    python bench/pii_corpus.py [--per-kind 1000] [--seed 0] [--out FILE.jsonl]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import uuid
from collections.abc import Callable

Maker = Callable[[random.Random], str]


def _num(r: random.Random) -> str:
    kind = r.random()
    if kind < 0.3:
        return str(r.randint(-10**6, 10**6))
    if kind < 0.55:
        return f"{r.uniform(-1e4, 1e4):.{r.randint(1, 8)}f}"
    if kind < 0.8:
        return str(r.randint(10**6, 10**16))
    return f"{r.randint(1, 999)}.{r.randint(0, 10**8):08d}"


def arithmetic(r: random.Random) -> str:
    a, b = _num(r), _num(r)
    op = r.choice(["+", "-", "*", "/", "×", "÷"])
    forms = [f"What is {a} {op} {b}?", f"{a} {op} {b} = ?", f"Compute {a}{op}{b}.",
             f"Round {_num(r)} to {r.randint(1, 6)} dps.", f"{a} {op} {b} = {_num(r)}",
             f"The answer is {_num(r)}.", f"Calculate {r.randint(2, 99)}^{r.randint(2, 12)}.",
             f"Subtract {a} from {b}.", f"Add together {a} and {b}.", f"What is {a} divided by {b}?",
             f"Work out {r.randint(10**5, 10**9)} times {r.randint(10**5, 10**9)}.", f"{_num(r)}"]
    return r.choice(forms)


def algebra(r: random.Random) -> str:
    import sympy

    x, y = sympy.symbols("x y")
    a, b, c = (r.randint(-99, 99) or 1 for _ in range(3))
    expr = r.choice([(x + a) * (x + b), (a * x + b) ** 2, (x - a) * (y + b) * c, x**3 + a * x + b])
    forms = [f"Expand {expr}.", f"{expr} = {sympy.expand(expr)}", f"Factor {sympy.expand(expr)}.",
             f"Solve {a}*x + {b} = {c} for x: x = {sympy.Rational(c - b, a)}",
             f"Let f(x) = {sympy.expand(expr)}. Find f({r.randint(-20, 20)}).",
             f"d/dx {sympy.expand(expr)} = {sympy.diff(sympy.expand(expr), x)}"]
    return r.choice(forms)


def python_source(r: random.Random) -> str:
    n = r.randint(0, 10**9)
    return r.choice([
        f"for i in range({r.randint(1, 10**6)}):", f"    total += values[{r.randint(0, 999)}] * {_num(r)}",
        f"SEED = {n}", f"assert checksum(data) == 0x{r.getrandbits(32):08x}", f"timeout_ms = {r.randint(100, 10**7)}",
        f"df = df[df['amount'] > {_num(r)}]", f"port = int(os.environ.get('PORT', {r.randint(1024, 65535)}))",
        f"x = np.linspace({_num(r)}, {_num(r)}, {r.randint(2, 10**5)})", f"MAX_BYTES = {r.randint(10**6, 10**10)}",
        f"return {{'id': {n}, 'score': {r.random():.6f}}}", f"time.sleep({r.uniform(0, 5):.3f})",
        f"print(f'{{step:>6}} {{loss:.4f}}')  # step {r.randint(1, 10**6)}", f"    if n % {r.randint(2, 97)} == 0:"])


def javascript_source(r: random.Random) -> str:
    return r.choice([
        f"const timeout = {r.randint(100, 10**7)};", f"setTimeout(() => retry(), {r.randint(10, 60000)});",
        f"let total = price * {r.randint(1, 500)} + {_num(r)};", f"if (Date.now() - start > {r.randint(10**3, 10**9)}) {{",
        f"const id = '{uuid.UUID(int=r.getrandbits(128))}';", f"array.slice({r.randint(0, 99)}, {r.randint(100, 9999)});",
        f"ctx.fillRect({r.randint(0, 2000)}, {r.randint(0, 2000)}, {r.randint(1, 500)}, {r.randint(1, 500)});",
        f"export const VERSION = '{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 200)}';",
        f"const color = 0x{r.getrandbits(24):06x};", f"return Math.round(value * {10 ** r.randint(1, 8)}) / {10 ** r.randint(1, 8)};"])


#: Documentation ranges (RFC 5737), private and loopback networks: addresses that are nobody's.
_NOBODYS_NETWORKS = ("192.0.2.", "198.51.100.", "203.0.113.", "10.20.30.", "192.168.1.", "127.0.0.")


def _time(r: random.Random) -> dt.datetime:
    return dt.datetime(2020, 1, 1) + dt.timedelta(seconds=r.randint(0, 6 * 365 * 86400),
                                                  microseconds=r.randint(0, 999999))


def log_line(r: random.Random) -> str:
    t = _time(r)
    ip = r.choice(_NOBODYS_NETWORKS) + str(r.randint(1, 254))
    rid = r.getrandbits(64)
    return r.choice([
        f"{t.isoformat()}Z INFO request_id={rid:016x} ip={ip} GET /api/v2/items/{r.randint(1, 10**9)} 200 {r.randint(1, 9999)}ms",
        f"[{t:%d/%b/%Y:%H:%M:%S} +0000] \"POST /orders HTTP/1.1\" {r.choice([200, 201, 404, 500])} {r.randint(100, 10**7)}",
        f"{t:%Y-%m-%d %H:%M:%S,%f} WARN pid={r.randint(100, 4 * 10**6)} worker {r.randint(1, 64)} took {r.uniform(0, 99):.3f}s",
        f"{int(t.timestamp() * 1000)} DEBUG span={rid} parent={r.getrandbits(63)} duration_ns={r.randint(10**3, 10**10)}",
        f"{t:%b %d %H:%M:%S} host sshd[{r.randint(100, 99999)}]: Connection from {ip} port {r.randint(1024, 65535)}",
        f"step {r.randint(1, 10**6)} loss {r.uniform(0, 9):.4f} lr {r.uniform(1e-6, 1e-3):.2e} tokens {r.randint(10**6, 10**11)}"])


def csv_row(r: random.Random) -> str:
    t = _time(r)
    return ",".join([t.strftime("%Y-%m-%d %H:%M"), f"{r.uniform(-40, 45):.2f}", f"{r.uniform(0, 100):.1f}",
                     f"{r.uniform(950, 1050):.1f}", str(r.randint(0, 10**9)), f"{r.uniform(0, 10**7):.3f}"])


def prices(r: random.Random) -> str:
    amount = r.uniform(1, 10**7)
    return r.choice([f"Total: ${amount:,.2f} for {r.randint(1, 999)} units.", f"Price {amount:.2f} EUR",
                     f"{amount:,.0f} USD was paid in {r.randint(2, 48)} instalments of {amount / 12:,.2f}.",
                     f"Qty {r.randint(1, 10**5)} × £{r.uniform(0.1, 999):.2f} = £{amount:,.2f}",
                     f"Budget {r.randint(10**6, 10**10):,} € ({r.uniform(-50, 50):+.1f}% on last year)",
                     f"Revenue rose to {r.randint(10**6, 10**11)} dollars."])


def versions(r: random.Random) -> str:
    v = f"{r.randint(0, 30)}.{r.randint(0, 99)}.{r.randint(0, 999)}"
    return r.choice([f"Upgrade to version {v} now.", f"numpy=={v}", f"Build {v}.{r.randint(0, 99999)} passed.",
                     f"Firmware v{v}.{r.randint(0, 9)}", f"Released {v} ({_time(r):%Y-%m-%d}).",
                     f"Windows 10.0.{r.randint(10000, 22631)}.{r.randint(1, 4000)}", f"pkg@{v}-rc.{r.randint(1, 9)}"])


def dates(r: random.Random) -> str:
    t = _time(r)
    return r.choice([t.strftime("%Y-%m-%d %H:%M:%S"), t.strftime("%d.%m.%Y %H:%M"), t.strftime("%m/%d/%Y"),
                     f"From {t:%Y-%m-%d} to {t + dt.timedelta(days=r.randint(1, 900)):%Y-%m-%d}.",
                     f"{t:%H:%M}–{t + dt.timedelta(minutes=r.randint(5, 300)):%H:%M}", t.isoformat(),
                     f"Between {r.randint(1900, 2030)} and {r.randint(1900, 2030)} the output doubled.",
                     f"{r.randint(1900, 2030)} {r.randint(1900, 2030)} {r.randint(1900, 2030)} {r.randint(1900, 2030)}"])


def ids_and_hashes(r: random.Random) -> str:
    data = r.getrandbits(64).to_bytes(8, "big")
    return r.choice([str(uuid.UUID(int=r.getrandbits(128))), hashlib.sha256(data).hexdigest(),
                     f"commit {hashlib.sha1(data).hexdigest()[:r.choice([7, 12, 40])]}", hashlib.md5(data).hexdigest(),
                     f"sha256:{hashlib.sha256(data).hexdigest()}", f"object id {r.getrandbits(96):024x}"])


def isbn(r: random.Random) -> str:
    body = "978" + "".join(str(r.randint(0, 9)) for _ in range(9))
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    plain = body + str(check)
    return r.choice([f"ISBN {plain}", f"ISBN-13: {plain[:3]}-{plain[3]}-{plain[4:8]}-{plain[8:12]}-{plain[12]}",
                     f"See {plain} in the catalogue."])


def coordinates(r: random.Random) -> str:
    lat, lon = r.uniform(-90, 90), r.uniform(-180, 180)
    return r.choice([f"{lat:.6f}, {lon:.6f}", f"lat={lat:.5f} lon={lon:.5f}", f"({lat:.4f}, {lon:.4f})",
                     f"{abs(lat):.4f}°{'N' if lat > 0 else 'S'} {abs(lon):.4f}°{'E' if lon > 0 else 'W'}"])


def chemistry(r: random.Random) -> str:
    return r.choice([f"C{r.randint(1, 30)}H{r.randint(2, 62)}O{r.randint(1, 12)}", "H2SO4 + 2NaOH → Na2SO4 + 2H2O",
                     f"Molar mass {r.uniform(1, 900):.3f} g/mol", f"pH {r.uniform(0, 14):.2f} at {r.randint(0, 99)} °C",
                     f"CAS {r.randint(50, 99999)}-{r.randint(10, 99)}-{r.randint(0, 9)}",
                     f"{r.uniform(0.001, 10):.4f} mol/L of NaCl in {r.randint(1, 5000)} mL"])


def sports(r: random.Random) -> str:
    return r.choice([f"Final score {r.randint(0, 9)}-{r.randint(0, 9)} after extra time.",
                     f"{r.randint(60, 140)}-{r.randint(60, 140)} in the fourth quarter",
                     f"Set scores 6-{r.randint(0, 7)} {r.randint(0, 7)}-6 7-6({r.randint(0, 9)})",
                     f"He ran {r.uniform(9.5, 12):.2f} s over 100 m and {r.randint(1, 3)}:{r.randint(40, 59)}.{r.randint(10, 99)} over 800 m.",
                     f"Attendance: {r.randint(1000, 99999):,}; season total {r.randint(10**5, 10**7)}"])


def codes(r: random.Random) -> str:
    return r.choice([f"Order #{r.randint(10**5, 10**10)} has shipped.", f"SKU-{r.randint(10**4, 10**8)}-{r.randint(10, 99)}",
                     f"Invoice INV-{r.randint(2015, 2030)}-{r.randint(1, 99999):05d}", f"Part no. {r.randint(10**6, 10**10)}",
                     f"Tracking 1Z{r.randint(10**9, 10**10 - 1)}", f"Model AX{r.randint(100, 9999)}-{r.randint(10, 999)}",
                     f"Ticket {r.randint(10**5, 10**9)} was closed.", f"Batch {r.randint(10**6, 10**9)}/{r.randint(1, 99)}",
                     f"Serial {r.randint(10**11, 10**16)}", f"Reference {r.randint(10**7, 10**12)} on the statement."])


def statistics(r: random.Random) -> str:
    return r.choice([f"The population was {r.randint(10**5, 2 * 10**9)} in {r.randint(1900, 2025)}.",
                     f"Mean {r.uniform(0, 1000):.4f}, sd {r.uniform(0, 100):.4f}, n = {r.randint(10, 10**7)}",
                     f"p < 0.{r.randint(1, 999):03d}; r = {r.uniform(-1, 1):.3f}; {r.randint(2, 500)} degrees of freedom",
                     f"GDP grew {r.uniform(-5, 10):.1f}% to {r.randint(10**9, 10**13)}.",
                     f"{r.randint(10**6, 10**9)} people live within {r.randint(1, 999)} km."])


def number_lists(r: random.Random) -> str:
    n = r.randint(4, 9)
    return r.choice([" ".join(str(r.randint(0, 99)) for _ in range(n)), ", ".join(str(r.randint(0, 10**6)) for _ in range(n)),
                     "[" + ", ".join(f"{r.uniform(-1, 1):.4f}" for _ in range(n)) + "]",
                     " ".join(f"{r.randint(0, 999):>4}" for _ in range(n)), f"Sort: {' '.join(str(r.randint(1, 99999)) for _ in range(n))}"])


def measurements(r: random.Random) -> str:
    unit = r.choice(["km", "kg", "ms", "MB", "GiB", "kWh", "mAh", "Hz", "rpm", "mm", "tokens", "steps", "rows"])
    return r.choice([f"It weighs {r.randint(10**5, 10**9)} {unit}.", f"{r.uniform(0, 10**6):.2f} {unit} measured",
                     f"Capacity {r.randint(10**6, 10**10)}{unit}", f"Peak {r.randint(10**5, 10**8)} {unit} at step {r.randint(1, 10**6)}"])


KINDS: dict[str, Maker] = {
    "arithmetic": arithmetic, "algebra": algebra, "python": python_source, "javascript": javascript_source,
    "logs": log_line, "csv": csv_row, "prices": prices, "versions": versions, "dates": dates,
    "uuids_hashes": ids_and_hashes, "isbn": isbn, "coordinates": coordinates, "chemistry": chemistry,
    "sports": sports, "codes": codes, "statistics": statistics, "number_lists": number_lists,
    "measurements": measurements,
}


def build(per_kind: int = 1200, seed: int = 0) -> list[tuple[str, str]]:
    """(kind, line) pairs: `per_kind` lines of every kind, the same for the same seed."""
    out = []
    for i, (kind, make) in enumerate(KINDS.items()):
        r = random.Random(seed * 1000 + i)
        out += [(kind, make(r)) for _ in range(per_kind)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-kind", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the corpus as JSONL ({kind, text} per line)")
    args = parser.parse_args()
    corpus = build(args.per_kind, args.seed)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            for kind, text in corpus:
                fh.write(json.dumps({"kind": kind, "text": text}, ensure_ascii=False) + "\n")
    print(f"{len(corpus)} lines of {len(KINDS)} kinds")


if __name__ == "__main__":
    main()
