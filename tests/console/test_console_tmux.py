"""The real console in a real terminal (tmux): add a journal entry by keys, quit, find it with the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tmux_driver import TmuxConsole

from tests.conftest import Cli

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


@pytest.fixture
def console(home: Path) -> Iterator[TmuxConsole]:
    term = TmuxConsole(home)
    try:
        yield term
    finally:
        term.close()


def test_add_an_entry_by_keys_then_list_it_with_the_cli(console: TmuxConsole, cli: Cli) -> None:
    console.wait_until(lambda s: "6 Journal" in s, what="the console on screen")
    console.keys("6")
    console.wait_until(lambda s: "0 entries" in s, what="the journal on screen")
    console.keys("a")
    console.wait_until(lambda s: "New journal entry" in s, what="the editor")
    # No waiting between the keys: a fast typist (or a paste) followed by ctrl+s must lose nothing.
    console.keys("typed in a real terminal", literal=True)
    console.keys("Enter")
    console.keys("second line", literal=True)
    console.keys("C-s")
    screen = console.wait_until(lambda s: "1 entry" in s and "New journal entry" not in s, what="the entry saved")
    assert "typed in a real terminal" in screen
    console.keys("C-q")
    console.wait_exit()
    entries = cli.json("journal", "list", "--json")["entries"]
    assert [(e["kind"], e["text"]) for e in entries] == [("note", "typed in a real terminal\nsecond line")]
