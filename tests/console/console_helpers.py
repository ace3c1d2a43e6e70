"""Helpers for the console's pilot tests: waiting on conditions instead of sleeping."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual.message import Message
from textual.pilot import Pilot

M = TypeVar("M", bound=Message)


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Let the app run until `condition()` is true; fail after `timeout` seconds (generous: a loaded machine is
    slow, and a condition that holds ends the wait at once)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)


async def run_from_palette(pilot: Pilot[Any], words: str) -> None:
    """Open the command palette, type `words`, wait for a hit and run the first one."""
    from textual.command import CommandList, CommandPalette

    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
    await pilot.press(*words)
    palette = app.screen
    await wait_for(pilot, lambda: palette.query_one(CommandList).option_count >= 1, what=f"a hit for {words!r}")
    await pilot.press("enter")


def of_type(messages: list[Message], kind: type[M]) -> list[M]:
    """The messages of one class, in the order they were posted (a bubbling message is hooked at each hop:
    counted once)."""
    seen: set[int] = set()
    found: list[M] = []
    for message in messages:
        if isinstance(message, kind) and id(message) not in seen:
            seen.add(id(message))
            found.append(message)
    return found


@contextlib.contextmanager
def held(path: Path) -> Iterator[Path]:
    """A fixed path under /tmp, empty, for this test alone: a lock file beside it makes two test sessions on one
    machine (a developer's and a check's) take turns at it instead of emptying it under each other; removed
    after."""
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(path, ignore_errors=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def fixed_home(name: str, utc: bool = False) -> Iterator[Path]:
    """A HOME at a fixed path (the header shows it), `held`, so a snapshot is the same on every machine (and,
    `utc`, the times it shows)."""
    path = Path(tempfile.gettempdir()) / name
    with held(path):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLMTUI_HOME", str(path))
            if utc:
                patch.setenv("TZ", "UTC")
            time.tzset()
            yield path
        time.tzset()
