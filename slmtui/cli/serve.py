"""`slmtui serve`: the console in a browser tab (textual-serve), on this machine only unless told otherwise."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys

from slmtui.cli._common import UserError, say

DEFAULT_PORT = 8000


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve", help="serve the console to a web browser (localhost only unless --host says otherwise)",
        description="Serve the console over HTTP: each browser tab runs its own console on this HOME. Bound to "
        "127.0.0.1 by default (reach it from a laptop with `ssh -L 8000:localhost:8000 HOST`); bound to "
        "any other address it needs the one-time token of the URL it prints.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; another one, e.g. 0.0.0.0, needs the token)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from slmtui.home import HOME_ENV, slmtui_home
    from slmtui.web_console import Access, ConsoleServer

    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port; give a number from 1 to 65535, e.g. {DEFAULT_PORT}.")
    check_port_free(args.host, args.port)
    # Each tab's console is a child process: it gets this HOME, resolved (and checked) once here.
    os.environ[HOME_ENV] = str(slmtui_home())
    ConsoleServer(Access.for_bind(args.host, args.port), announce=_say_now).serve()
    return 0


def _say_now(text: str) -> None:
    say(text)
    sys.stdout.flush()  # the URL is wanted at once, also through a pipe (`| tee`)


def check_port_free(host: str, port: int) -> None:
    """Raise a UserError naming another port to try when `port` is taken on `host`, or when `host` is not an
    address of this machine."""
    try:
        _bind_and_release(host, port)
    except socket.gaierror:
        raise UserError(f"--host {host} is not an address this machine knows; use 127.0.0.1 (this machine only) "
                        "or 0.0.0.0 (every address, with a token).") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"Port {port} on {host} is in use (another `slmtui serve`?); try "
                            f"--port {free_port_after(host, port)}.") from None
        if exc.errno == errno.EACCES:
            raise UserError(f"Port {port} needs administrator rights; try --port {DEFAULT_PORT}.") from None
        raise UserError(f"Cannot listen on {host} port {port} ({exc.strerror}); use 127.0.0.1 or an address "
                        "of this machine.") from None


def free_port_after(host: str, port: int) -> int:
    """The first free port above `port` (within 100), else any free port the system picks."""
    for candidate in range(port + 1, min(port + 100, 65535) + 1):
        try:
            _bind_and_release(host, candidate)
        except OSError:
            continue
        return candidate
    return _bind_and_release(host, 0)


def _bind_and_release(host: str, port: int) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    info = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0]
    with socket.socket(info[0], socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does: a TIME_WAIT port is free
        probe.bind(info[4])
        return int(probe.getsockname()[1])
