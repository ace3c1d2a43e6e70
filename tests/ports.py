"""A port for a server a test starts in another process."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def unused_port() -> int:
    """A free port below the kernel's ephemeral range.

    A port the kernel hands out (bind to 0, then close) can be handed out again as the local port of any socket
    that connects somewhere (a gloo pair, a client retrying, another test session) before the test's server
    listens on it; the server then fails to bind, or a client finds something else there. Ports below the
    ephemeral range are never handed out that way.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.SystemRandom().sample(range(20000, min(low, 32768)), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")
