"""`slmtui runs` and `slmtui journal list` in an 80-column terminal: every field whole, long entries short."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli
from tests.run_fixtures import make_run

LONG_RUN = "20261126-070000-demo-lora-support-tickets"


def test_runs_keeps_status_step_and_losses_whole_at_80_columns(cli: Cli, home: Path) -> None:
    make_run(home / "runs", LONG_RUN, losses=[5.1234 + i / 100 for i in range(600)][::-1], status="completed")
    make_run(home / "runs", "20261126-080000-demo", losses=[2.0, 1.5], status="stopped")
    out = cli("runs", COLUMNS="80", check=True).stdout
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    assert "…" not in out
    long_row = next(line for line in lines if line.startswith("20261126-070000"))
    assert {"completed", "600/600", "5.1234", "5.1734"} <= set(long_row.split()), out
    short_row = next(line for line in lines if line.startswith("20261126-080000-demo "))
    assert {"stopped", "2/2", "1.5000", "1.5500"} <= set(short_row.split()), out
    assert "".join(line.split()[0] for line in lines[lines.index(long_row):][:2]) == LONG_RUN  # folded, whole


def test_journal_list_shows_a_long_entry_on_a_few_lines_and_whole_with_full(cli: Cli, home: Path) -> None:
    make_run(home / "runs", LONG_RUN)
    text = "\n".join(f"line {i}: the loader read 600 rows from data/tickets.jsonl" for i in range(1, 41))
    cli("journal", "add", text, "--kind", "data", "--run", LONG_RUN, "--step", "12", check=True)
    cli("journal", "add", "short note", check=True)
    out = cli("journal", "list", COLUMNS="80", check=True).stdout
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    start = next(i for i, line in enumerate(lines) if "step 12" in line)
    block = lines[start:next(i for i, line in enumerate(lines) if i > start and line.startswith("#"))]
    assert len(block) == 5, out  # the heading's end, three lines, "… 37 more lines"
    assert any(f"run {LONG_RUN}" in line for line in lines) and any("step 12" in line for line in lines), out
    assert "line 3: the loader read 600 rows from data/tickets.jsonl" in out and "line 4:" not in out
    assert "… 37 more lines (--full prints them)" in out and "short note" in out
    full = cli("journal", "list", "--full", COLUMNS="80", check=True).stdout
    assert all(f"line {i}: the loader" in full for i in range(1, 41)) and "more lines" not in full
    assert all(len(line) <= 80 for line in full.splitlines()), full


def test_journal_list_wraps_a_long_line_and_counts_the_wrapped_lines(cli: Cli) -> None:
    cli("journal", "add", " ".join(["word"] * 200), check=True)
    out = cli("journal", "list", COLUMNS="80", check=True).stdout
    lines = out.splitlines()
    assert len(lines) == 5 and all(len(line) <= 80 for line in lines), out
    assert lines[-1].strip().startswith("…") and "more lines" in lines[-1]
