"""`slmtui serve` in a real headless browser: the console draws, a key switches its tab, the screenshot shows it;
what the guard refuses (a foreign page's websocket, a name other than localhost, a missing token); SIGINT and
Ctrl+C stop the server and its consoles."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_driver import CHROMIUM, BrowserConsole, ServedConsole
from PIL import Image
from playwright.sync_api import Playwright, sync_playwright

from tests.ports import unused_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the browser tests: .ci/run installs Debian's chromium", pytrace=False)
    pytest.skip("needs Debian's chromium (apt-get install -y chromium); CI installs it", allow_module_level=True)

CONSOLE_DRAWN = "1 Checklist  2 Shortlist  3 Data  4 GPUs  5 Monitor  6 Journal"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


def http_status(url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    """The status, body and headers of a GET (errors included: a 403 is an answer here)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def websocket_headers(origin: str) -> dict[str, str]:
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": origin}


def light_and_dark_share(png: Path) -> tuple[float, float]:
    """The shares of the screenshot's pixels that are dark (background) and light (text)."""
    histogram = Image.open(png).convert("L").histogram()
    total = sum(histogram)
    return sum(histogram[:64]) / total, sum(histogram[160:]) / total


def test_the_console_draws_in_a_browser_and_a_key_switches_its_tab(
        home: Path, tmp_path: Path, playwright: Playwright) -> None:
    served = ServedConsole(home, unused_port())
    page: BrowserConsole | None = None
    try:
        assert served.url.startswith("http://127.0.0.1:") and "token" not in served.url
        page = BrowserConsole(playwright, served.url)
        screen = page.wait_until(lambda s: CONSOLE_DRAWN in s and "What drives fine-tuning?" in s,
                                 what="the console's Checklist")
        assert f"HOME {home}" in screen or "HOME ~" in screen
        page.press("6")
        screen = page.wait_until(lambda s: "0 entries" in s and "a Add" in s, what="the Journal tab")
        assert "What drives fine-tuning?" not in screen
        shot = tmp_path / "journal-in-browser.png"
        page.page.screenshot(path=str(shot))
        dark, light = light_and_dark_share(shot)
        assert dark > 0.5, f"the page is not dark: {dark:.0%} of it is"
        assert light > 0.005, f"no text drawn: {light:.2%} of the page is light"

        # a name other than localhost (DNS rebinding) and another site's websocket are refused
        status, body, _ = http_status(served.url, Host=f"rebound.example:{urlsplit(served.url).port}")
        assert (status, body.strip()) == (403, "This console is bound to this machine only: open it as localhost "
                                                "or 127.0.0.1.")
        status, body, _ = http_status(served.url + "ws", **websocket_headers("http://elsewhere.example"))
        assert status == 403 and "own page" in body

        # SIGINT to the server alone (`kill -INT`): it must stop the console of the open tab itself
        consoles = served.consoles()
        assert any("slmtui" in " ".join(c.cmdline()) for c in consoles)
        served.interrupt(group=False)
        code, output = served.wait_exit(timeout=15)
        assert (code, output) == (0, "")
        assert not [c for c in consoles if c.is_running() and c.status() != "zombie"]
    finally:
        if page is not None:
            page.close()
        served.close()


def test_a_bind_beyond_this_machine_needs_the_token_of_its_url_and_ctrl_c_stops_it(home: Path, playwright: Playwright) -> None:
    port = unused_port()
    served = ServedConsole(home, port, host="0.0.0.0")
    page: BrowserConsole | None = None
    try:
        printed = urlsplit(served.url)
        assert printed.hostname == socket.gethostname().lower()
        token = parse_qs(printed.query)["token"][0]
        assert len(token) >= 32
        local = f"http://127.0.0.1:{port}/"
        status, body, _ = http_status(local)
        assert status == 403 and "token" in body
        wrong = token[:-1] + ("y" if token.endswith("x") else "x")  # one character off (never the token itself)
        assert http_status(f"{local}?token={wrong}")[0] == 403
        assert http_status(f"{local}static/js/textual.js")[0] == 403
        status, _, headers = http_status(f"{local}?token={token}")
        assert status == 200
        cookie = headers["Set-Cookie"].split(";")[0]
        assert cookie == f"slmtui_token_{port}={token}" and "HttpOnly" in headers["Set-Cookie"]
        assert http_status(f"{local}static/js/textual.js", Cookie=cookie)[0] == 200

        # in a browser the page's script and websocket pass on the cookie: the console draws
        page = BrowserConsole(playwright, f"{local}?token={token}")
        assert page.response is not None and page.response.status == 200
        page.wait_until(lambda s: CONSOLE_DRAWN in s, what="the console through the token's cookie")

        # Ctrl+C in the server's terminal (SIGINT to its process group, the tab's console too)
        consoles = served.consoles()
        served.interrupt(group=True)
        assert served.wait_exit(timeout=15) == (0, "")
        assert not [c for c in consoles if c.is_running() and c.status() != "zombie"]
    finally:
        if page is not None:
            page.close()
        served.close()
