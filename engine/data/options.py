"""The data settings `engine.data` works from: the `[data]` table of a run spec, normalised and checked."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from engine.spec import DataSpec, scrub_setting_problems

FORMATS = ("auto", "jsonl", "json", "csv", "parquet", "disk", "hub")
SHAPES = ("auto", "instruction", "chat", "prompt_completion", "text")
TEMPLATES = ("auto", "default")
OVERLENGTH = ("truncate", "drop", "error")
SCRUB = ("auto", "on", "off")
INVALID = ("skip", "error")


class DataError(Exception):
    """A problem with the dataset or its settings that the user can fix; the text is one sentence."""


DataOptions = DataSpec
"""The `[data]` table of a run spec: `engine.data` works from the spec's own dataclass."""


def check(opts: DataOptions) -> DataOptions:
    """Raise `DataError` on a value outside its choices; returns `opts`."""
    for name, choices in (("format", FORMATS), ("shape", SHAPES), ("template", TEMPLATES),
                          ("overlength", OVERLENGTH), ("scrub", SCRUB), ("invalid", INVALID)):
        value = getattr(opts, name)
        if value not in choices:
            raise DataError(f"data.{name} is {value!r}; use one of {', '.join(choices)}.")
    if not opts.path:
        raise DataError("data.path is empty; give a file, a save_to_disk folder or a hub id.")
    problems = scrub_setting_problems(opts)
    if problems:
        raise DataError(problems[0].message)
    if opts.max_length < 8:
        raise DataError(f"data.max_length is {opts.max_length}; use at least 8 tokens.")
    if not (0 <= opts.val_fraction < 1 and 0 <= opts.test_fraction < 1
            and opts.val_fraction + opts.test_fraction < 1):
        raise DataError("data.val_fraction and data.test_fraction must each be in [0, 1) and sum below 1.")
    return opts


def coerce(spec: Any) -> DataOptions:
    """A `DataOptions` from a `DataSpec`, a `DataOptions`, or a mapping of the `[data]` table."""
    names = [f.name for f in fields(DataOptions)]
    if isinstance(spec, DataOptions):
        values = {n: getattr(spec, n) for n in names}
    elif isinstance(spec, dict):
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise DataError(f"unknown data setting {unknown[0]!r}; the settings are {', '.join(names)}.")
        values = dict(spec)
    else:
        values = {n: getattr(spec, n) for n in names if hasattr(spec, n)}
    values["map"] = dict(values.get("map") or {})
    values["scrub_types"] = list(values.get("scrub_types") or [])
    values["phone_regions"] = list(values.get("phone_regions") or [])
    return check(DataOptions(**values))


def parse_list(text: str | None) -> list[str]:
    """`EMAIL,PHONE` -> ["EMAIL", "PHONE"] (blank parts dropped)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def parse_map(text: str) -> dict[str, str]:
    """`prompt=question,response=answer` -> {"prompt": "question", "response": "answer"}."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise DataError(f"--map part {part!r} is not FIELD=COLUMN; write it like prompt=question,response=answer.")
        mapping[key.strip()] = value.strip()
    return mapping
