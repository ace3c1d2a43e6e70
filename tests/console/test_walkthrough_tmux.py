"""A newcomer's walk through the real console at 80×24 (tmux): every screen and every dialog that needs no GPU
and no network, each screen read as the terminal shows it.

On every captured screen: the footer (the last row) is whole `KEY Description` items, each a description of a
real binding, with the key-help key and the palette key; the screen's known labels appear whole (a cut label
is missing its tail); no row is wider than the window. Escape closes each dialog, and the walk waits for the
screen underneath before the next visit.

The HOME holds a finished run, a run that reads as running (its pid file names this test's process: the stop
dialog is only opened and cancelled) and three journal entries.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from monitor_runs import write_run
from rich.cells import cell_len
from textual.binding import Binding
from textual.dom import DOMNode
from tmux_driver import TmuxConsole

from slmtui.store import Store
from slmtui.ui.registry import default_registry
from tests.run_fixtures import make_run

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]

WIDTH, HEIGHT = 80, 24
DONE = "20261126-070000-base"
LIVE = "20261126-080000-live"
TABS = [f"{entry.key} {entry.name}" for entry in default_registry()]
#: The modules whose classes declare the console's bindings.
BINDING_MODULES = ["slmtui.app", "screens.checklist", "screens.shortlist", "screens.data", "screens.gpus",
                   "screens.monitor", "screens.journal", "screens.new_run", "screens.playground", "screens.key_help",
                   "screens.widgets.dialogs", "screens.widgets.entry_editor", "screens.widgets.pin_dialog",
                   "screens.widgets.run_dialogs"]
#: A footer's end: the palette key behind its border (before it, `KEY Description` items two spaces apart).
PALETTE = re.compile(r"\s*▏\^p palette\s*$")


def _binding_descriptions() -> set[str]:
    """The description of every binding the console declares (screens, dialogs, widgets, the app)."""
    for module in BINDING_MODULES:
        importlib.import_module(module)
    found: set[str] = set()
    pending: list[type] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for binding in vars(cls).get("BINDINGS", []):
            if isinstance(binding, Binding) and binding.description:
                found.add(binding.description)
    return found


DESCRIPTIONS = _binding_descriptions()


def footer_problems(screen: str) -> list[str]:
    """What is wrong with the footer row of `screen`, in words (nothing: a whole footer)."""
    rows = screen.rstrip("\n").split("\n")
    footer = rows[-1] if rows else ""
    if not PALETTE.search(footer):
        return [f"the footer does not end in the palette key: {footer!r}"]
    problems = []
    items = [item for item in re.split(r" {2,}", PALETTE.sub("", footer).strip()) if item]
    for item in items:
        _key, _, description = item.partition(" ")
        if description not in DESCRIPTIONS:
            problems.append(f"footer item {item!r} is not a whole key and description")
    if "f1 Keys" not in items:
        problems.append(f"the key-help key is missing: {footer!r}")
    return problems


def whole(screen: str, label: str) -> bool:
    """`label` appears on one row, not followed by more of a word (a cut label lacks its end)."""
    return re.search(rf"(?<!\w){re.escape(label)}(?!\w)", screen) is not None


def screen_problems(screen: str, labels: list[str]) -> list[str]:
    """Cut labels, a cut footer, rows past the window's edge."""
    rows = screen.rstrip("\n").split("\n")
    problems = [f"row {i} is {cell_len(row)} cells wide: {row!r}" for i, row in enumerate(rows)
                if cell_len(row) > WIDTH]
    if len(rows) > HEIGHT:
        problems.append(f"{len(rows)} rows on a {HEIGHT}-row window")
    problems += [f"{label!r} is not whole on screen" for label in labels if not whole(screen, label)]
    return problems + footer_problems(screen)


class Walk:
    """The console under test, visited screen by screen."""

    def __init__(self, console: TmuxConsole) -> None:
        self.console = console

    def see(self, place: str, labels: list[str], ready: Callable[[str], bool] | None = None,
            timeout: float = 30.0) -> str:
        """Wait until the screen shows its first label (and `ready`), then check it; returns the screen."""
        def shown(screen: str) -> bool:
            return labels[0] in screen and (ready is None or ready(screen))

        screen = self.console.wait_until(shown, timeout=timeout, what=place)
        # The footer follows the screen a frame later (Textual recomposes it after the next refresh): poll on
        # for a whole screen, then report what is still wrong with the last one.
        try:
            screen = self.console.wait_until(lambda s: shown(s) and not screen_problems(s, labels), timeout=15,
                                             what=f"{place}, whole")
        except AssertionError:
            screen = self.console.screen()
        problems = screen_problems(screen, labels)
        assert not problems, f"{place}: {problems}\n{screen}"
        if os.environ.get("WALK_SHOW"):  # WALK_SHOW=1 pytest -s prints every screen the walk checks
            print(f"=== {place}\n{screen}")
        return screen

    def dialog(self, key: str, place: str, labels: list[str], back: list[str]) -> str:
        """Open a dialog by `key`, check it, close it with escape, and wait for `back` with the dialog gone."""
        self.console.keys(key)
        screen = self.see(place, labels)
        self.console.keys("Escape")
        self.see(f"back from {place}", back, ready=lambda s: labels[0] not in s)
        return screen


@pytest.fixture
def walk(home: Path) -> Iterator[Walk]:
    make_run(home / "runs", DONE)
    write_run(home, LIVE, 120, alive=True, total=600)
    store = Store(home)
    store.add_entry("warmup of 20 steps removed the loss spike", kind="aha", run=DONE, step=5)
    store.add_entry("the model answers in the wrong format", kind="challenge", run=DONE)
    store.add_entry("try rank 64 next", kind="note")
    console = TmuxConsole(home, width=WIDTH, height=HEIGHT)
    try:
        yield Walk(console)
    finally:
        console.close()


def test_every_screen_and_dialog_whole_at_80x24(walk: Walk) -> None:
    checklist = ["What drives fine-tuning?", "Verdict", *TABS]
    walk.see("Checklist", checklist)
    walk.dialog("f1", "Checklist's key help", ["Keys: Checklist", "Esc closes."], checklist)

    walk.console.keys("2")
    shortlist = ["No models yet: a adds one, e.g. qwen2.5-0.5b", "the target GPU)", "model", "params", "context", "licence", "gated", "fit", "loss", "acc", "tok/s", "peak GiB",
                 "dataset to evaluate on", *TABS]
    walk.see("Shortlist", shortlist)
    walk.dialog("f1", "Shortlist's key help", ["Keys: Shortlist", "Esc closes."], shortlist)

    walk.console.keys("3")
    data = ["Dataset", "Tokenizer", "the demo's", "Max len", "Map", "prompt=question,response=answer", "Overview", "Lengths", "Invalid rows", "Preview", *TABS]
    walk.see("Data", [*data, "Press ctrl+r to check the dataset."])
    walk.console.keys("C-r")  # the demo dataset with the demo's tokenizer, on the CPU
    walk.see("Data's report", [*data, "Personal data found", "(scrubbed)", "invalid rows", "empty rows", "NAME"],
             ready=lambda s: re.search(r"Checked [\d,]+ rows", s) is not None, timeout=90)
    walk.dialog("f1", "Data's key help", ["Keys: Data", "Esc closes."], data)

    walk.console.keys("4")
    gpus = ["Processes on the GPUs", "What fits:", "model", "full", "lora", "qlora", "smollm2-135m", *TABS]
    walk.see("GPUs", gpus)
    walk.dialog("f1", "GPUs' key help", ["Keys: GPUs", "Esc closes."], gpus)

    walk.console.keys("5")
    monitor = ["loss · steps 1–120", "⠿ train", "● val", "┊ note", LIVE, "running 120/600", DONE,
               "completed 10/10", "step 120/600", *TABS]
    walk.see("Monitor", monitor)
    walk.dialog("p", "the pin dialog", ["Pin an aha note to step 120", "what did you notice?"], monitor)
    walk.dialog("s", "the stop confirmation", ["Stop the run", "a checkpoint first.", "Cancel (n)", "Stop (y)"],
                monitor)
    walk.dialog("f1", "Monitor's key help", ["Keys: Monitor", "Esc closes."], monitor)

    walk.console.keys("6")
    journal = ["every kind", "filter by text", "Time", "Kind", "Run", "Step", "Text", "try rank 64 next", *TABS]
    walk.see("Journal", journal, ready=lambda s: re.search(r"\b5 entries\b", s) is not None)
    walk.dialog("a", "the entry editor", ["New journal entry", LIVE, "step", "Cancel (esc)", "Save (ctrl+s)"],
                journal)
    walk.dialog("d", "the delete confirmation", ["Delete entry", "Delete this note entry for good?",
                                                 "Cancel (n)", "Delete (y)"], journal)
    walk.dialog("x", "the export dialog", ["Export the journal to Markdown", "Writes the 5 entries shown",
                                           "journal.md", "Cancel (esc)", "Write (enter)"], journal)
    walk.dialog("f1", "Journal's key help", ["Keys: Journal", "key", "does", "id", "Esc closes."], journal)
    walk.dialog("C-p", "the command palette", ["Search for commands", "Journal: Add"], journal)
    walk.dialog("n", "New run", ["New run — edit, check, launch", "Problems", "Model and data", "Remote code",
                                 "Max length", "Memory"], journal)
    assert whole(walk.console.screen(), "5 entries")  # escape on the delete dialog deleted nothing

    walk.console.keys("r")
    runs = ["2 runs.", "space marks two runs: c diff, o overlay.", "Run", "Status", "Method", "Final", "Best val",
            "Env", LIVE, DONE, "completed", *TABS]  # the columns an 80-column table keeps (the rest are below it)
    walk.see("the runs view", runs)
    walk.dialog("f1", "the runs view's key help", ["Keys: Journal", "Mark", "Esc closes."], runs)
    walk.console.keys("r")
    walk.see("the journal again", journal)

    walk.console.keys("C-q")
    walk.console.wait_exit()


@pytest.mark.parametrize(("footer", "problem"), [
    (" a Add  e Edit  ^t Th▏^p palette", "'^t Th' is not a whole key"),
    (" a Add  e Edit  d Delete  f1 Ke", "does not end in the palette key"),
    (" a Add  e Edit             ▏^p palette", "the key-help key is missing"),
])
def test_a_cut_footer_is_found(footer: str, problem: str) -> None:
    assert any(problem in found for found in footer_problems(f"body\n{footer}\n")), footer_problems(footer)


def test_a_cut_label_or_a_wide_row_is_found() -> None:
    footer = " a Add  f1 Keys ▏^p palette"
    assert screen_problems(f"Personal data found (scrubb…\n{footer}\n", ["(scrubbed)"]) == [
        "'(scrubbed)' is not whole on screen"]
    assert screen_problems(f"● validation…\n{footer}\n", ["● val"]) == ["'● val' is not whole on screen"]
    assert screen_problems(f"{'x' * 81}\n{footer}\n", [])[0].startswith("row 0 is 81 cells wide")
    assert screen_problems(f"● val · ┊ note\n{footer}\n", ["● val"]) == []
