"""`slmtui serve` without a browser: who the guard lets in, the URL it prints, and its one-sentence errors (the
browser itself: tests/console/test_serve_browser.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from slmtui.web_console import Access, is_loopback
from tests.conftest import Cli

TOKEN = "t" * 32
WEBSOCKET = {"Upgrade": "websocket", "Connection": "Upgrade"}


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("LOCALHOST", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("gpu-box", False), ("", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_token_is_made_per_start_only_for_a_bind_beyond_this_machine() -> None:
    assert Access.for_bind("127.0.0.1", 8000).token is None
    first, second = Access.for_bind("0.0.0.0", 8000).token, Access.for_bind("0.0.0.0", 8000).token
    assert first and second and first != second and len(first) >= 32


@pytest.mark.parametrize(("access", "url"), [
    (Access("127.0.0.1", 8000, None), "http://127.0.0.1:8000/"),
    (Access("::1", 8001, None), "http://[::1]:8001/"),
    (Access("10.1.2.3", 80, TOKEN), f"http://10.1.2.3:80/?token={TOKEN}"),
    (Access("0.0.0.0", 8000, TOKEN), f"http://{socket.gethostname()}:8000/?token={TOKEN}"),
])
def test_the_printed_url(access: Access, url: str) -> None:
    assert access.url() == url


LOCAL = Access("127.0.0.1", 8000, None)
TOKENED = Access("0.0.0.0", 8000, TOKEN)


@pytest.mark.parametrize(("access", "path", "headers", "refused"), [
    (LOCAL, "/", {"Host": "localhost:8000"}, None),
    (LOCAL, "/", {"Host": "localhost:9000"}, None),  # ssh -L 9000:localhost:8000
    (LOCAL, "/", {"Host": "[::1]:8000"}, None),
    (LOCAL, "/", {"Host": "rebound.example:8000"}, "bound to this machine only"),
    (LOCAL, "/ws", {"Host": "localhost:8000", "Origin": "http://localhost:8000", **WEBSOCKET}, None),
    (LOCAL, "/ws", {"Host": "localhost:8000", "Origin": "http://elsewhere.example", **WEBSOCKET}, "own page"),
    (LOCAL, "/ws", {"Host": "localhost:8000", **WEBSOCKET}, "own page"),
    (TOKENED, "/", {"Host": "gpu-box:8000"}, "needs its token"),
    (TOKENED, f"/?token={TOKEN}", {"Host": "gpu-box:8000"}, None),
    (TOKENED, f"/?token={TOKEN[:-1]}", {"Host": "gpu-box:8000"}, "needs its token"),
    (TOKENED, "/static/js/textual.js", {"Host": "gpu-box:8000", "Cookie": f"slmtui_token_8000={TOKEN}"}, None),
    (TOKENED, "/static/js/textual.js", {"Host": "gpu-box:8000", "Cookie": f"slmtui_token_8001={TOKEN}"},
     "needs its token"),
    (TOKENED, "/ws", {"Host": "gpu-box:8000", "Origin": "http://gpu-box:8000", "Cookie": f"slmtui_token_8000={TOKEN}",
                      **WEBSOCKET}, None),
    (TOKENED, "/ws", {"Host": "gpu-box:8000", "Origin": "http://elsewhere.example",
                      "Cookie": f"slmtui_token_8000={TOKEN}", **WEBSOCKET}, "own page"),
])
def test_who_the_guard_lets_in(access: Access, path: str, headers: dict[str, str], refused: str | None) -> None:
    reason = access.refusal(make_mocked_request("GET", path, headers=headers))
    assert (reason is None) if refused is None else (reason is not None and refused in reason)


def test_a_port_in_use_names_another_to_try(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cli("serve", "--port", str(port), timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"slmtui: Port {port} on 127.0.0.1 is in use (another `slmtui serve`?); try "
                                  "--port ") and proc.stderr.count("\n") == 1
    suggested = int(proc.stderr.rsplit("--port ", 1)[1].rstrip(".\n"))
    assert suggested != port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", suggested))


@pytest.mark.parametrize(("args", "sentence"), [
    (("--port", "70000"), "--port 70000 is not a port; give a number from 1 to 65535, e.g. 8000."),
    (("--host", "no-such-host.invalid"), "--host no-such-host.invalid is not an address this machine knows"),
])
def test_bad_addresses_are_one_sentence(cli: Cli, args: tuple[str, ...], sentence: str) -> None:
    proc = cli("serve", *args, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith(f"slmtui: {sentence}") and proc.stderr.count("\n") == 1


def test_stopping_ends_the_consoles_left_and_never_a_detached_engine() -> None:
    """In a process of its own (the server's role): a console still running is ended, and its exit status is left
    for the event loop that started it (a console reaped by the stop made asyncio log "Unknown child process pid
    ..., will report returncode 255" in the server's terminal); a process in a session of its own, as a training
    run started from a tab is, runs on."""
    script = """
import signal, subprocess
from slmtui.web_console import end_consoles
console = subprocess.Popen(["sh", "-c", "sleep 60"])
engine = subprocess.Popen(["sleep", "60"], start_new_session=True)
end_consoles(grace_s=2.0)
print(console.wait(timeout=5) == -signal.SIGTERM, engine.poll() is None)  # reaped by the stop: 0
engine.kill()
engine.wait()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent, check=True)
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr
    assert "Unknown child process" not in done.stderr, done.stderr
