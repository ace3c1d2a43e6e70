"""The console in a browser: textual-serve runs `python -m slmtui` per browser tab and relays it over a websocket.

Guarded in front of textual-serve's aiohttp app (`guard`): a websocket must come from a page of this server (a
web page elsewhere could otherwise open one to 127.0.0.1 and type into the console); bound to loopback, only
requests naming a loopback host are served (no DNS rebinding); bound to any other address, every request needs
the start's one-time token, given once in the URL's `?token=` and then kept in a cookie for the page's own
requests (scripts, the websocket).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import shlex
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from textual_serve.server import Server

from engine.runlock import process_alive

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: Seconds the server waits, on Ctrl+C, for the consoles it runs to quit before it stops anyway.
SHUTDOWN_GRACE_S = 3.0


def is_loopback(host: str) -> bool:
    """Whether `host` (a bind address or a URL's host) can only be reached from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """Who may open the console: anyone reaching a loopback bind, or the holders of `token`."""

    host: str
    port: int
    token: str | None

    @classmethod
    def for_bind(cls, host: str, port: int) -> Access:
        """A loopback bind needs no token; any other bind gets a new one (one per start)."""
        return cls(host, port, None if is_loopback(host) else secrets.token_urlsafe(24))

    @property
    def cookie(self) -> str:
        """Cookies are not kept apart by port, so two servers on one machine each name their own."""
        return f"slmtui_token_{self.port}"

    def url(self) -> str:
        """The URL to open (with the token when one is needed); a wildcard bind shows this machine's name."""
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def refusal(self, request: web.Request) -> str | None:
        """Why `request` is refused (one sentence), or None when it may go on."""
        if request.headers.get("Upgrade", "").lower() == "websocket" and not _same_origin(request):
            return "A websocket to the console must come from the console's own page."
        if self.token is None:
            if not is_loopback(request.url.host or ""):
                return "This console is bound to this machine only: open it as localhost or 127.0.0.1."
            return None
        given = request.query.get("token") or request.cookies.get(self.cookie) or ""
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            return "This console needs its token: open the full URL `slmtui serve` printed when it started."
        return None


def _same_origin(request: web.Request) -> bool:
    origin = urlsplit(request.headers.get("Origin", ""))
    return bool(origin.netloc) and origin.netloc.lower() == request.host.lower()


def guard(access: Access) -> Middleware:
    """aiohttp middleware: 403 with the reason for a refused request; the token of an accepted URL is kept in
    a cookie (HttpOnly, this site only) so the page's scripts and websocket pass too."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        reason = access.refusal(request)
        if reason is not None:
            raise web.HTTPForbidden(text=reason + "\n")
        response = await handler(request)
        if access.token and request.query.get("token") and not response.prepared:
            response.set_cookie(access.cookie, access.token, httponly=True, samesite="Strict")
        return response

    return middleware


def console_command() -> str:
    """The shell command textual-serve runs for each browser tab: this Python's `slmtui` console."""
    return shlex.join([sys.executable, "-m", "slmtui"])


class ConsoleServer(Server):
    """textual-serve's server with `guard` in front, its page's URLs taken from the request (so a tunnel to any
    local port works), no per-request log (URLs hold the token), and a Ctrl+C that stops within seconds."""

    def __init__(self, access: Access, announce: Callable[[str], None]) -> None:
        super().__init__(console_command(), host=access.host, port=access.port, title="slmtui")
        self.access = access
        self.announce = announce
        self.sessions: set[asyncio.Task[Any]] = set()

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(guard(self.access))
        return app

    async def on_startup(self, app: web.Application) -> None:
        """No banner here: the port is not listening yet (`serve` announces the URL once it is)."""

    async def on_shutdown(self, app: web.Application) -> None:
        # A cancelled session tells its console to quit and closes the tab's websocket (textual-serve's own
        # way out); without this aiohttp drops the open websockets at its timeout and their consoles run on.
        for task in self.sessions:
            task.cancel()
        if self.sessions:
            await asyncio.wait(self.sessions, timeout=SHUTDOWN_GRACE_S)
        await asyncio.to_thread(end_consoles)  # any that did not quit in time (a loaded machine) end now


    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self.sessions.discard(task)

    async def handle_index(self, request: web.Request) -> web.Response:
        """textual-serve's page, with the address the browser used (`ssh -L 9000:localhost:8000` works too);
        the template escapes what it is given."""
        scheme = "wss" if request.secure else "ws"
        context: dict[str, Any] = {
            "font_size": 16,
            "app_websocket_url": f"{scheme}://{request.host}/ws",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    def serve(self, debug: bool = False) -> None:
        """Serve until Ctrl+C (SIGINT) or SIGTERM."""
        self.debug = debug
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        web.run_app(self._make_app(), host=self.host, port=self.port, access_log=None,
                    print=lambda _listening: self.announce(f"Serving the slmtui console on {self.access.url()} "
                                                           "(Ctrl+C stops it)."),
                    shutdown_timeout=SHUTDOWN_GRACE_S)


def end_consoles(grace_s: float = 2.0) -> None:
    """Terminate the server's own child processes (the tabs' consoles and their shells) that are still running,
    then kill those that outlive `grace_s`: stopping the server never leaves a console behind. Training engines a
    tab started run in a session of their own (detached) and are left alone."""
    import psutil

    end_processes([c for c in psutil.Process().children(recursive=True) if _same_session(c.pid)], grace_s)


def end_processes(processes: list[Any], grace_s: float) -> None:
    """Terminate `processes` (psutil), wait up to `grace_s` for them to end, and kill the rest. None is reaped
    here: a direct child's exit status belongs to the event loop's child watcher that started it (reaped here,
    the watcher would find it gone and log "Unknown child process pid ...")."""
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    deadline = time.monotonic() + grace_s
    while (alive := [p for p in processes if process_alive(p.pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


def _same_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == os.getsid(0)
    except OSError:  # gone already
        return False
