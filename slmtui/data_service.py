"""One data-check request for every caller (the Data screen, New run, `slmtui data check`): `python -m engine
data-check` in a subprocess, with one argument builder, one timeout and one error, and the report's key numbers.

Headless (no textual): run it from a worker thread. A dataset or tokenizer problem the user can fix, or a check
that ran out of time, raises `DataCheckFailed` with one sentence.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.spec import DATA_MAP_FIELDS
from slmtui.engine_proc import EngineError, run_engine_json
from slmtui.scrub_report import change_summary, scrub_warning

#: The check reads the whole dataset and tokenises it (a hub dataset may need a download first); a check still
#: running after this long is stopped.
DATA_CHECK_TIMEOUT_S = 600.0

ColumnMap = tuple[tuple[str, str], ...]
"""(field, column) pairs: `(("prompt", "question"),)` maps the dataset's `question` column to `prompt`."""


class DataCheckFailed(Exception):
    """The check could not read the dataset or its settings are wrong; one sentence saying what to change."""


def parse_map_text(text: str) -> ColumnMap:
    """`"prompt=question, response=answer"` -> `(("prompt", "question"), ("response", "answer"))`; raises
    `DataCheckFailed` naming the part it cannot read."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, eq, column = (s.strip() for s in part.partition("="))
        if not eq or not name or not column:
            raise DataCheckFailed(f"Write the mapping as FIELD=COLUMN pairs separated by commas, not {part!r}.")
        if name not in DATA_MAP_FIELDS:
            raise DataCheckFailed(f"{name!r} is not a field to map; use one of {', '.join(DATA_MAP_FIELDS)}.")
        mapping[name] = column
    return tuple(mapping.items())


def map_text(mapping: ColumnMap) -> str:
    """The inverse of `parse_map_text`."""
    return ",".join(f"{field}={column}" for field, column in mapping)


@dataclass(frozen=True)
class DataRequest:
    """What to check: the dataset, the tokenizer that counts tokens (empty: the demo's), and the spec's data
    options; the defaults are the engine's."""

    path: str
    tokenizer: str = ""
    max_length: int = 1024
    overlength: str = "truncate"
    map: ColumnMap = ()
    shape: str = "auto"
    format: str = "auto"
    split: str = "train"
    scrub: str = "auto"
    scrub_types: tuple[str, ...] = ()
    phone_regions: tuple[str, ...] = ()
    label_column: str = ""
    template: str = "auto"
    preview: int | None = None
    """Rows to show formatted (None: the engine's default)."""

    def argv(self) -> list[str]:
        """The engine's `data-check` arguments."""
        args = [self.path, "--max-length", str(self.max_length), "--policy", self.overlength, "--shape", self.shape,
                "--format", self.format, "--split", self.split, "--scrub", self.scrub, "--template", self.template]
        optional = (("--tokenizer", self.tokenizer), ("--map", map_text(self.map)),
                    ("--scrub-types", ",".join(self.scrub_types)), ("--phone-regions", ",".join(self.phone_regions)),
                    ("--label-column", self.label_column),
                    ("--preview", "" if self.preview is None else str(self.preview)))
        for flag, value in optional:
            if value:
                args += [flag, value]
        return args


def run_data_check(request: DataRequest, home: Path | None = None, timeout: float | None = DATA_CHECK_TIMEOUT_S,
                   cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run the engine's data check (a subprocess: the ML stack never loads here) and return its report; raises
    `DataCheckFailed`. `cancelled` (polled) kills it and raises `slmtui.engine_proc.EngineCancelled`; `timeout`
    None waits as long as the check takes (the CLI, where ctrl+c stops it)."""
    try:
        report = run_engine_json("data-check", *request.argv(), home=home, timeout=timeout, cancelled=cancelled)
    except EngineError as exc:
        raise DataCheckFailed(str(exc)) from None
    except subprocess.TimeoutExpired:
        raise DataCheckFailed(f"The data check took over {timeout or 0:.0f} s and was stopped; try a smaller "
                              "dataset, or a local copy of a hub dataset.") from None
    if not isinstance(report, dict):
        raise DataCheckFailed("The data check printed something other than a report.")
    return report


@dataclass(frozen=True)
class DataSummary:
    """The data report's key numbers."""

    rows: int
    valid_rows: int
    kept_rows: int
    invalid_rows: int
    duplicates: int
    p50: int
    p99: int
    longest: int
    max_length: int
    over_max_length: int
    overlength_action: str
    pii: dict[str, int]
    pii_rows: int
    scrub: str
    shape: str
    tokenizer_note: str = ""
    scrub_changed: str = ""
    scrub_warning: str = ""

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> DataSummary:
        """Pick the key numbers out of a `data-check` report (missing ones read as zero)."""
        lengths = report.get("token_lengths") or {}
        duplicates = report.get("duplicates")
        dup_count = duplicates.get("count", 0) if isinstance(duplicates, dict) else int(duplicates or 0)
        tokenizer = report.get("tokenizer") or {}
        return cls(
            rows=int(report.get("rows", 0)), valid_rows=int(report.get("valid_rows", 0)),
            kept_rows=int(report.get("kept_rows", 0)), invalid_rows=int(report.get("invalid_rows_total", 0)),
            duplicates=int(dup_count), p50=int(lengths.get("p50", 0)), p99=int(lengths.get("p99", 0)),
            longest=int(lengths.get("max", 0)), max_length=int(report.get("max_length", 0)),
            over_max_length=int(report.get("over_max_length", 0)),
            overlength_action=str(report.get("overlength_action", "")),
            pii={str(k): int(v) for k, v in (report.get("pii") or {}).items()},
            pii_rows=int(report.get("pii_rows", 0)), scrub=str(report.get("scrub", "")),
            shape=str(report.get("shape", "")), tokenizer_note=str(tokenizer.get("note", "")),
            scrub_changed=change_summary(report), scrub_warning=scrub_warning(report),
        )

    def lines(self) -> list[str]:
        """The numbers as short lines for a panel."""
        found = ", ".join(f"{kind} {n}" for kind, n in self.pii.items() if n) or "none"
        return [
            f"{self.rows} rows ({self.shape}): {self.valid_rows} valid, {self.invalid_rows} invalid, "
            f"{self.duplicates} duplicates",
            f"tokens p50 {self.p50}, p99 {self.p99}, longest {self.longest}",
            f"{self.over_max_length} over max length {self.max_length}",
            f"personal data in {self.pii_rows} rows: {found} (scrub {self.scrub})",
            *([f"scrubbing: {self.scrub_changed}"] if self.scrub_changed else []),
            *([f"warning: {self.scrub_warning}"] if self.scrub_warning else []),
        ]


def check_data(request: DataRequest, home: Path | None = None,
               cancelled: Callable[[], bool] | None = None) -> DataSummary:
    """The key numbers of `run_data_check`'s report."""
    return DataSummary.from_report(run_data_check(request, home=home, cancelled=cancelled))
