"""The Data screen in a real terminal (tmux): key 3, check the dataset, read the report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_data_screen import write_dataset
from tmux_driver import TmuxConsole

from slmtui.data_report import SETTINGS_KEY
from slmtui.store import Store

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


def test_check_a_dataset_from_the_data_screen(home: Path, tiny_model_dir: Path) -> None:
    data = write_dataset(home / "mine.jsonl")
    Store(home).set_setting(SETTINGS_KEY, {"path": str(data), "tokenizer": str(tiny_model_dir), "max_length": 64})
    console = TmuxConsole(home, width=110, height=34)
    try:
        console.wait_until(lambda s: "3 Data" in s, what="the console on screen")
        console.keys("3")
        console.wait_until(lambda s: "Press ctrl+r (or enter" in s, what="the Data screen with the settings")
        console.keys("C-r")
        screen = console.wait_until(lambda s: "Checked 20 rows" in s and "EMAIL" in s, timeout=120, what="the report")
        assert "2 invalid" in screen and "Label balance" in screen and "billing" in screen
        console.keys("C-n", "C-n")  # overview -> lengths -> invalid rows
        screen = console.wait_until(lambda s: "2 invalid rows" in s, what="the invalid rows")
        assert " 5 " in screen and " 10 " in screen
        console.keys("C-q")
        console.wait_exit()
    finally:
        console.close()
