"""Driving `slmtui serve` for real: the server as a subprocess, the console in headless Debian chromium (Playwright
with the system browser, nothing downloaded), its screen read from xterm.js's own buffer."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from playwright.sync_api import Page, Playwright, Route

from tests.conftest import REPO, cli_env

CHROMIUM = shutil.which("chromium")
ANNOUNCEMENT = "Serving the slmtui console on "
# textual-serve's page keeps its xterm.js terminal to itself; the test's copy of the script hands it to the page
# (the only change) so the test reads the cells drawn, as a user sees them, instead of pixels.
CREATE_TERMINAL = "const t=new w(e,{ping:r});"
EXPOSE_TERMINAL = CREATE_TERMINAL + "window.slmtuiTerminal=t.terminal;"
SCREEN_TEXT = """() => {
    const term = window.slmtuiTerminal;
    if (!term) return "";
    const lines = [];
    for (let row = 0; row < term.rows; row++) lines.push(term.buffer.active.getLine(row).translateToString(true));
    return lines.join("\\n");
}"""


class ServedConsole:
    """`python -m slmtui serve` in its own session, so that a SIGINT to its process group is what Ctrl+C in its
    terminal sends."""

    def __init__(self, home: Path, port: int, host: str = "127.0.0.1") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "slmtui", "serve", "--host", host, "--port", str(port)],
            env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            start_new_session=True)
        self.url = self._announced_url()

    def _announced_url(self, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = self.proc.stdout.readline() if ready else ""
            if ready and not line:
                break  # it exited
            seen.append(line)
            if line.startswith(ANNOUNCEMENT):
                return line[len(ANNOUNCEMENT):].split()[0]
        raise AssertionError(f"`slmtui serve` printed no URL; it said: {''.join(seen)!r}")

    def consoles(self) -> list[psutil.Process]:
        """The console processes it runs (one per open tab, under the shell textual-serve starts)."""
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self, group: bool) -> None:
        """SIGINT to the server alone (`kill -INT PID`), or to its process group (Ctrl+C in its terminal)."""
        if group:
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            self.proc.send_signal(signal.SIGINT)

    def wait_exit(self, timeout: float) -> tuple[int, str]:
        """The exit code and what it printed after its URL."""
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out

    def close(self) -> None:
        """Stop it by pid if it still runs, and any console it left."""
        if self.proc.poll() is None:
            leftovers = self.consoles()
            self.proc.terminate()
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
            for child in leftovers:
                if child.is_running():
                    child.kill()
        elif self.proc.stdout is not None:
            self.proc.stdout.close()


class BrowserConsole:
    """One chromium page on the served console; every request off the server is refused (no font CDN)."""

    def __init__(self, playwright: Playwright, url: str, width: int = 1000, height: int = 700) -> None:
        assert CHROMIUM is not None
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM)
        self.page: Page = self.browser.new_page(viewport={"width": width, "height": height})
        origin = url.split("/")[2]
        self.page.route(lambda u: u.split("/")[2] != origin, lambda route: route.abort())
        self.page.route("**/static/js/textual.js", self._expose_terminal)
        self.response = self.page.goto(url)

    @staticmethod
    def _expose_terminal(route: Route) -> None:
        served = route.fetch()
        script = served.text()
        assert CREATE_TERMINAL in script, "textual-serve's script changed: update CREATE_TERMINAL"
        route.fulfill(response=served, body=script.replace(CREATE_TERMINAL, EXPOSE_TERMINAL))

    def screen(self) -> str:
        """The terminal's rows as text ("" before the console has drawn)."""
        return str(self.page.evaluate(SCREEN_TEXT))

    def wait_until(self, condition: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
        """Poll the screen until `condition(screen)` holds; returns that screen, fails after `timeout`."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            self.page.wait_for_timeout(50)  # the poll period, not a wait for the console
        raise AssertionError(f"timed out waiting for {what}; the browser's terminal showed:\n{screen}")

    def press(self, key: str) -> None:
        """A key typed into the terminal, as a user with the page focused types it."""
        self.page.focus(".xterm-helper-textarea")
        self.page.keyboard.press(key)

    def close(self) -> None:
        self.browser.close()
