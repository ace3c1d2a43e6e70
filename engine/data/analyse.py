"""The heavy pass over a dataset: read, map, check, scrub, render, tokenise, measure; and the report it makes.

The report is JSON-able and holds no original text: previews are rendered from scrubbed rows, whatever the
scrub setting, and invalid rows carry only line numbers and reasons.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.data.format import Formatter, Rendered, segments
from engine.data.load import Invalid, load_source
from engine.data.options import DataError, DataOptions
from engine.data.shape import Row, columns_of, detect_label_column, detect_shape, to_rows
from engine.pii import PII_TYPES, PiiSettings, Scrubber, ScrubChanges

MAX_INVALID_LISTED = 1000
_BATCH = 1000


@dataclass
class Kept:
    """A row that made it through: where it came from, its duplicate key, label and tokens."""

    line: int
    key: str
    label: str | None
    input_ids: list[int]
    labels: list[int]
    prompt: str
    response: str


@dataclass
class Analysis:
    """The rows kept, the report, what was done (sentences) and the source's content digest."""

    kept: list[Kept]
    report: dict[str, Any]
    description: list[str]
    content_hash: str


def _row_key(row: Row) -> str:
    return hashlib.blake2b(json.dumps(row.fields, sort_keys=True, ensure_ascii=False).encode(),
                           digest_size=12).hexdigest()


#: Canonical fields whose text is trained (the loss covers them) unless train_on_prompt trains everything.
_TRAINED_FIELDS = ("output", "completion", "text")


def _trained_text(row: Row, train_on_prompt: bool) -> list[str]:
    if train_on_prompt:
        return [m["content"] for m in row.fields.get("messages", [])] + [
            v for k, v in row.fields.items() if k != "messages"]
    trained = [m["content"] for m in row.fields.get("messages", []) if m["role"] == "assistant"]
    return trained + [row.fields[k] for k in _TRAINED_FIELDS if k in row.fields]


def _scrub(row: Row, settings: PiiSettings, changes: ScrubChanges, train_on_prompt: bool) -> tuple[Row, Counter[str]]:
    scrubber = Scrubber(settings)
    fields: dict[str, Any] = {}
    for name, value in row.fields.items():
        if name == "messages":
            fields[name] = [{"role": m["role"], "content": scrubber.scrub(m["content"])} for m in value]
        else:
            fields[name] = scrubber.scrub(value)
    clean = Row(row.line, fields, row.label)
    before, after = _trained_text(row, train_on_prompt), _trained_text(clean, train_on_prompt)
    changes.add(changed=bool(scrubber.replaced), has_response=any(before), response_changed=before != after,
                replaced=scrubber.replaced)
    return clean, scrubber.counts


def _fail_on_invalid(invalid: list[Invalid], opts: DataOptions) -> None:
    if invalid and opts.invalid == "error":
        first = min(invalid, key=lambda i: i.line)
        raise DataError(f"line {first.line} of the data is invalid ({first.reason}); fix it or set "
                        f"data.invalid = \"skip\" ({len(invalid)} invalid rows in all).")


def percentiles(values: list[int]) -> dict[str, int]:
    """p50, p90, p99 and max of `values` (nearest-rank), zeros when empty."""
    if not values:
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0}
    ordered = sorted(values)

    def rank(q: float) -> int:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": ordered[-1]}


def histogram(values: list[int], bins: int = 16) -> list[dict[str, int]]:
    """Counts of `values` in `bins` equal-width bins of a round width, from 0 to the maximum."""
    if not values:
        return []
    top = max(values)
    raw = max(1, math.ceil((top + 1) / bins))
    magnitude = 10 ** max(0, len(str(raw)) - 1)
    width = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    counts = Counter(v // width for v in values)
    return [{"from": b * width, "to": (b + 1) * width, "count": counts.get(b, 0)} for b in range(top // width + 1)]


def analyse(opts: DataOptions, tokenizer: Any, *, strict: bool, log: Callable[[str], None] | None = None,
            preview: int = 5) -> Analysis:
    """Read and prepare every row of `opts.path`; `strict` makes the overlength "error" policy raise."""
    say = log or (lambda _msg: None)
    loaded = load_source(opts.path, opts.format, opts.split_name)
    invalid = list(loaded.invalid)
    _fail_on_invalid(invalid, opts)
    columns = columns_of(loaded.rows)
    if not loaded.rows:
        raise DataError(f"no readable rows in {opts.path} ({len(invalid)} invalid, {loaded.empty} empty); "
                        "check the file's format.")
    shape, canon = detect_shape(columns, opts.shape, opts.map)
    label_column = detect_label_column(columns, opts.label_column, set(canon.values()))
    rows, bad = to_rows(loaded.rows, shape, canon, label_column)
    invalid += bad
    _fail_on_invalid(invalid, opts)

    keys = [_row_key(r) for r in rows]
    duplicates = len(keys) - len(set(keys))
    pii: Counter[str] = Counter()
    pii_rows = 0
    scrubbed: list[Row] = []
    settings = PiiSettings.of(opts.scrub_types, opts.phone_regions)
    changes = ScrubChanges()
    for row in rows:
        clean, counts = _scrub(row, settings, changes, opts.train_on_prompt)
        pii.update(counts)
        pii_rows += bool(counts)
        scrubbed.append(clean)
    scrub_on = opts.scrub != "off"
    used = scrubbed if scrub_on else rows

    fmt = Formatter(tokenizer, opts.template, opts.train_on_prompt)
    rendered: list[tuple[int, Rendered]] = []
    for i, row in enumerate(used):
        try:
            rendered.append((i, fmt.render(row, shape, opts.system_prompt)))
        except ValueError as exc:
            invalid.append(Invalid(row.line, str(exc)))
    _fail_on_invalid(invalid, opts)
    tokens: list[tuple[list[int], list[int]]] = []
    for start in range(0, len(rendered), _BATCH):
        tokens += fmt.tokenize([r for _, r in rendered[start:start + _BATCH]])

    lengths = [len(ids) for ids, _ in tokens]
    over = [(rendered[j][0], n) for j, n in enumerate(lengths) if n > opts.max_length]
    if over and opts.overlength == "error" and strict:
        i, n = over[0]
        raise DataError(f"the row at line {rows[i].line} is {n} tokens, over max_length {opts.max_length} "
                        f"({len(over)} rows in all); raise max_length or set overlength to truncate or drop.")
    kept: list[Kept] = []
    masked_out = 0
    for (i, rend), (ids, labels) in zip(rendered, tokens, strict=True):
        if len(ids) > opts.max_length:
            if opts.overlength == "drop":
                continue
            ids, labels = ids[: opts.max_length], labels[: opts.max_length]
            if all(lab == -100 for lab in labels):
                masked_out += 1
                continue
        kept.append(Kept(rows[i].line, keys[i], rows[i].label, ids, labels, rend.prompt, rend.response))

    token_lengths = percentiles(lengths)
    scrub_changes = changes.as_dict(settings) if scrub_on else None
    overlength_action = _overlength_action(len(over), opts, masked_out)
    report: dict[str, Any] = {
        "source": {"path": opts.path, "format": loaded.format, "bytes": loaded.size_bytes},
        "columns": columns,
        "shape": shape,
        "shape_detected": opts.shape == "auto",
        "mapping": canon,
        "label_column": label_column,
        "template": fmt.template_name,
        "rows": len(loaded.rows) + len(loaded.invalid),
        "valid_rows": len(rendered),
        "kept_rows": len(kept),
        "empty_rows": loaded.empty,
        "invalid_rows": [x.as_dict() for x in sorted(invalid, key=lambda x: x.line)[:MAX_INVALID_LISTED]],
        "invalid_rows_total": len(invalid),
        "invalid_policy": opts.invalid,
        "duplicates": duplicates,
        "token_lengths": token_lengths,
        "length_histogram": histogram(lengths),
        "max_length": opts.max_length,
        "over_max_length": len(over),
        "overlength_policy": opts.overlength,
        "overlength_action": overlength_action,
        "label_balance": dict(Counter(r.label for r in rows if r.label is not None).most_common())
        if label_column else {},
        "pii": {t: pii.get(t, 0) for t in PII_TYPES if t in settings.types},
        "pii_rows": pii_rows,
        "scrub": "on" if scrub_on else "off",
        "scrub_changes": scrub_changes,
        "preview": _preview(rows, scrubbed, shape, fmt, opts, preview),
    }
    description = [
        f"Read {report['rows']} rows from {opts.path} ({loaded.format}); shape {shape}"
        + (" (detected)" if opts.shape == "auto" else "") + f", columns mapped {canon}.",
        f"{len(invalid)} invalid rows skipped, {loaded.empty} empty lines, {duplicates} exact duplicates.",
        (f"Scrubbed personal data in {pii_rows} rows ({pii_rows / max(1, len(rows)):.1%}), "
         f"{changes.responses_changed} of them in trained responses "
         f"({', '.join(f'{t} {n}' for t, n in pii.items())})."
         if scrub_on and pii_rows else "No personal data found." if not pii_rows
         else f"Personal data found in {pii_rows} rows but scrubbing is off."),
        *([scrub_changes["warning"]] if scrub_changes and scrub_changes["warning"] else []),
        f"Formatted with {fmt.template_name}; loss on "
        + ("every token." if opts.train_on_prompt else "responses only, EOS included."),
        f"Token lengths p50 {token_lengths['p50']}, max {token_lengths['max']}; {overlength_action}",
    ]
    for line in description:
        say(line)
    return Analysis(kept, report, description, loaded.content_hash)


def _overlength_action(over: int, opts: DataOptions, masked_out: int) -> str:
    if not over:
        return f"no row is over max_length {opts.max_length}."
    verb = {"truncate": f"truncated to {opts.max_length} tokens", "drop": "dropped",
            "error": "reported as an error (the run would stop)"}[opts.overlength]
    extra = f", {masked_out} of them dropped as nothing trainable was left" if masked_out else ""
    return f"{over} rows over max_length {opts.max_length} will be {verb}{extra}."


def _preview(rows: list[Row], scrubbed: list[Row], shape: str, fmt: Formatter, opts: DataOptions,
             count: int) -> list[dict[str, Any]]:
    """A few rows, formatted from their scrubbed text, cut into trained and untrained segments."""
    if count <= 0:
        return []
    picks = list(range(min(3, len(rows))))
    picks += [i for i, (a, b) in enumerate(zip(rows, scrubbed, strict=True)) if a.fields != b.fields
              and i not in picks][: count - len(picks)]
    out = []
    for i in sorted(picks)[:count]:
        try:
            rend = fmt.render(scrubbed[i], shape, opts.system_prompt)
        except ValueError:
            continue
        segs = segments(rend) if not opts.train_on_prompt else [{"text": rend.text[:2000], "trained": True}]
        out.append({"line": scrubbed[i].line, "label": scrubbed[i].label, "segments": segs})
    return out
