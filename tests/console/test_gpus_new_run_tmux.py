"""The real console in tmux: the GPUs screen by its key, then New run by its key, read off the terminal."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tmux_driver import TmuxConsole

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


@pytest.fixture
def console(home: Path) -> Iterator[TmuxConsole]:
    term = TmuxConsole(home, width=100, height=40)
    try:
        yield term
    finally:
        term.close()


def test_gpus_then_new_run_by_keys(console: TmuxConsole) -> None:
    console.wait_until(lambda s: "4 GPUs" in s, what="the console on screen")
    console.keys("4")
    # the footer is laid out to fit once the screen has its size: wait for it too, not only for the table
    screen = console.wait_until(lambda s: "What fits:" in s and "qwen2.5-0.5b" in s and "Target GPU" in s,
                                timeout=20, what="the GPUs screen with its what-fits table and its footer")
    assert "No GPU to show." in screen or "GPU 0" in screen
    assert "New run" in screen and "GPUs" in screen  # the footer names the keys
    console.keys("g")
    console.wait_until(lambda s: "2 GPUs" in s and "Over 2 GPUs (per GPU)" in s, what="the table over two GPUs")
    console.keys("n")
    screen = console.wait_until(lambda s: "model.name is missing" in s and "Launch" in s, what="the New run screen")
    assert "Problems" in screen and "Memory" in screen and "Micro-batch" in screen
    # type a catalog model into the (empty, focused) model field: the first letter, seen in the field, shows the
    # field has the keys before the rest is sent, so no key can reach the screen ahead of the field's focus
    console.keys("q", literal=True)
    console.wait_until(lambda s: re.search(r"Model +q\b", s) is not None, what="the first letter in the field")
    console.keys("wen2.5-0.5b", literal=True)
    screen = console.wait_until(lambda s: "GiB of 24.0" in s or "GiB free" in s, what="the estimate")
    assert "model.name is missing" not in screen
    console.keys("Escape")
    console.wait_until(lambda s: "What fits:" in s and "Problems" not in s, what="back on the GPUs screen")
    console.keys("C-q")
    console.wait_exit()
