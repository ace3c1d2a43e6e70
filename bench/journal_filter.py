"""Journal filter speed: from a keystroke in the text filter to the repainted table, with many entries.

    python bench/journal_filter.py [--entries 10000] [--keys 20] [--json]

The console runs headless (`App.run_test`, 100 × 30) on a fresh HOME holding `--entries` journal entries;
once they are loaded, the text filter is focused and keys are typed one at a time (a few characters, then
backspaces, so the table changes on each key). Each figure is the CPU time the process spends from posting
the key until the app is idle again with the screen repainted (`pilot.press` + `pilot.pause`): the filter
over every entry, the table rebuild and the paint. (Wall time through the pilot is dominated by its own
waits, ~150 ms a key even with 100 entries, so it says nothing about the app.) The same is measured for a
key that only moves the filter's cursor, the floor of any keystroke. Goal (issue 8): ≤ 50 ms with 10,000
entries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KINDS = ("note", "aha", "challenge", "data", "hyperparams")


async def measure(home: Path, entries: int, keys: int) -> tuple[list[float], list[float]]:
    from screens.journal import JournalScreen
    from slmtui.app import SlmtuiApp

    app = SlmtuiApp(home=home, start_screen="Journal")  # the checklist is the first screen
    async with app.run_test(size=(100, 30)) as pilot:
        deadline = time.monotonic() + 60
        while not (isinstance(app.screen, JournalScreen) and len(app.screen.index.entries) == entries):
            if time.monotonic() > deadline:
                raise SystemExit("the journal did not load within 60 s")
            await pilot.pause(0.05)
        await pilot.press("slash")
        typed = (["1", "2", "3", "4", "backspace", "backspace", "backspace", "backspace"] * keys)[:keys]
        times, floor = [], []
        for key in typed:
            start = time.process_time()
            await pilot.press(key)
            await pilot.pause()
            times.append(time.process_time() - start)
            start = time.process_time()
            await pilot.press("left" if key != "backspace" else "right")
            await pilot.pause()
            floor.append(time.process_time() - start)
        return times, floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000, help="journal entries (default 10000)")
    parser.add_argument("--keys", type=int, default=24, help="keystrokes to time (default 24)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from textual.widgets import Input

    Input.cursor_blink = False  # type: ignore[assignment]  # a blinking cursor would repaint between keys
    from slmtui.store import Store

    with tempfile.TemporaryDirectory(prefix="slmtui-bench-") as tmp:
        home = Path(tmp)
        Store(home).add_entries(
            [{"kind": KINDS[i % len(KINDS)], "text": f"run {i}: loss {i % 97} at step {i * 7}", "step": i,
              "source": f"bench:{i}"} for i in range(args.entries)]
        )
        times, floor = asyncio.run(measure(home, args.entries, args.keys))
    ms = sorted(t * 1000 for t in times)
    result = {"entries": args.entries, "keys": len(ms), "cpu_median_ms": round(statistics.median(ms), 1),
              "cpu_p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1), "cpu_max_ms": round(ms[-1], 1),
              "cursor_key_cpu_median_ms": round(statistics.median(floor) * 1000, 1)}
    print(json.dumps(result, indent=2) if args.json else "  ".join(f"{k} {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
