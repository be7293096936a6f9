"""Loopback networking for the test services: free ports, waiting for a port to open."""

from __future__ import annotations

import socket
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def log_tail(path: Path | None, n: int = 3000) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return path.read_text(errors="replace")[-n:]


def wait_for_port(
    port: int,
    timeout: float,
    *,
    host: str = LOOPBACK,
    log: Path | None = None,
    what: str = "server",
) -> None:
    """Block until ``host:port`` accepts connections; on timeout raise with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        time.sleep(0.1)
    raise TimeoutError(
        f"{what}: nothing listens on {host}:{port} after {timeout:g} s; log {log}:\n{log_tail(log)}"
    )
