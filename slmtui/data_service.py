"""The data report from a console process: `python -m engine data-check` in a subprocess, and its key numbers.

Headless (no textual): run it from a worker thread. A dataset or tokenizer problem the user can fix raises
`slmtui.engine_proc.EngineError` with the engine's one sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmtui.engine_proc import run_engine_json
from slmtui.scrub_report import change_summary, scrub_warning

#: The data check reads the whole file and tokenises it; a stuck one is given up on after this long.
DATA_CHECK_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DataRequest:
    """What to check: the dataset, the tokenizer that counts tokens (the model's), and the spec's data options."""

    path: str
    tokenizer: str | None = None
    max_length: int = 1024
    shape: str = "auto"
    format: str = "auto"
    split: str = "train"
    overlength: str = "truncate"
    map: tuple[tuple[str, str], ...] = ()
    scrub: str = "auto"
    scrub_types: tuple[str, ...] = ()
    phone_regions: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """The engine's `data-check` arguments."""
        args = [self.path, "--max-length", str(self.max_length), "--shape", self.shape, "--format", self.format,
                "--split", self.split, "--policy", self.overlength, "--preview", "0"]
        if self.tokenizer:
            args += ["--tokenizer", self.tokenizer]
        if self.map:
            args += ["--map", ",".join(f"{field}={column}" for field, column in self.map)]
        args += ["--scrub", self.scrub]
        if self.scrub_types:
            args += ["--scrub-types", ",".join(self.scrub_types)]
        if self.phone_regions:
            args += ["--phone-regions", ",".join(self.phone_regions)]
        return args


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


def check_data(request: DataRequest, home: Path | None = None, timeout: float = DATA_CHECK_TIMEOUT_S,
               cancelled: Callable[[], bool] | None = None) -> tuple[DataSummary, dict[str, Any]]:
    """Run the engine's data check; returns the key numbers and the whole report. `cancelled` (polled) kills it
    and raises `slmtui.engine_proc.EngineCancelled`."""
    report = run_engine_json("data-check", *request.argv(), home=home, timeout=timeout, cancelled=cancelled)
    if not isinstance(report, dict):
        report = {}
    return DataSummary.from_report(report), report
