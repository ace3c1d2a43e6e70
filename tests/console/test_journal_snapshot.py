"""How the journal looks at 100 × 30 (SVG snapshot; update with `pytest --snapshot-update`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import fixed_home, wait_for
from textual.pilot import Pilot

from screens.journal import JournalScreen
from slmtui.app import SlmtuiApp
from slmtui.store import Store

ENTRIES = [
    ("hyperparams", "LoRA r=16, alpha=32, lr 2e-4, cosine, 1 epoch on 3,200 tickets", "20261126-071500-triage", None),
    ("challenge", "Loss flat at 2.3 after step 40.\nSuspect the learning rate is too low for r=16.",
     "20261126-071500-triage", 40),
    ("aha", "Warmup of 20 steps removes the spike at the start", "20261126-073000-triage", 20),
    ("data", "Scrubbed 212 emails and 96 phone numbers before the split", None, None),
    ("oom", "OOM at micro-batch 16 and 1,024 tokens; halved the batch, doubled grad_accum",
     "20261126-074500-triage", 118),
    ("breakthrough", "Validation loss 1.21, beats the prompt-engineering baseline by 9 points",
     "20261126-074500-triage", 600),
    ("note", "Try DoRA next; keep the same split seed", None, None),
]


@pytest.fixture
def snapshot_home() -> Iterator[Path]:
    """A HOME at a fixed path (the header shows it) and UTC, so the picture is the same on every machine."""
    with fixed_home("slmtui-journal-snapshot", utc=True) as path:
        Store(path).add_entries(
            [{"kind": kind, "text": text, "run": run, "step": step, "created": 1_795_677_300 + i * 420,
              "source": f"snapshot:{i}"} for i, (kind, text, run, step) in enumerate(ENTRIES)]
        )
        yield path


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_journal_snapshot(snap_compare: Any, snapshot_home: Path, size: tuple[int, int]) -> None:
    async def loaded(pilot: Pilot[None]) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: isinstance(app.screen, JournalScreen)
                       and len(app.screen.index.entries) == len(ENTRIES), what="the entries")
        await pilot.press("down")
        await pilot.pause()

    assert snap_compare(SlmtuiApp(home=snapshot_home, start_screen="Journal"), terminal_size=size, run_before=loaded)
