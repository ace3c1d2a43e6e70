"""The Shortlist in a real terminal (tmux): add a catalog model and remove it, evaluate a local one, quit."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmtui import shortlist
from slmtui.store import Store
from tests.console.tmux_driver import TmuxConsole

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


@pytest.fixture
def term(home: Path, ticket_model: Path, tickets: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TmuxConsole]:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the tmux server, and the engines under it, inherit it
    store = Store(home)
    shortlist.add(store, str(ticket_model))
    store.set_setting(shortlist.DATA_KEY, str(tickets))
    store.set_setting(shortlist.SUBSET_KEY, 8)
    console = TmuxConsole(home, width=100, height=30)
    try:
        yield console
    finally:
        console.close()


def test_shortlist_by_keys(term: TmuxConsole, home: Path, ticket_model: Path) -> None:
    term.wait_until(lambda s: "2 Shortlist" in s, what="the console on screen")
    for _ in range(5):  # a key sent while the first screen is still mounting can be lost: press again
        term.keys("2")
        try:
            term.wait_until(lambda s: "1 model ·" in s and f"{ticket_model.name} (folder)" in s, timeout=4,
                            what="the shortlist")
            break
        except AssertionError:
            continue
    else:
        raise AssertionError(f"the shortlist never opened:\n{term.screen()}")
    term.keys("a")
    # Keys already queued when a binding runs go to the old focus: type once the box has it (it says so).
    term.wait_until(lambda s: "or a folder, then enter" in s, what="the add box focused")
    term.keys("qwen2.5-1.5b", literal=True)
    term.wait_until(lambda s: "qwen2.5-1.5b" in s, what="the model typed")
    term.keys("Enter")
    added = re.compile(r"qwen2\.5-1\.5b\s+1\.54B\s+32k\s+apache-2\.0\s+no\s+fits")
    term.wait_until(lambda s: "2 models ·" in s and added.search(s) is not None, what="the catalog model added")
    term.keys("Down", "d")
    term.wait_until(lambda s: "1 model ·" in s and "qwen2.5-1.5b" not in s, what="the catalog model removed")
    term.keys("e")
    scored = re.compile(rf"{re.escape(ticket_model.name)} \(folder\).*fits ×\d+\s+\d\.\d{{3}}")
    term.wait_until(lambda s: "Evaluated 1 model" in s and scored.search(s) is not None, timeout=90,
                    what="the evaluation and its loss in the row")
    term.keys("C-q")
    term.wait_exit()
    store = Store(home)
    assert shortlist.models(store) == [str(ticket_model)]
    [result] = store.eval_results()
    assert result.model == str(ticket_model) and result.examples == 8
