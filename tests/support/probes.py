"""Watching a running CLI from a test: wait for a condition, read its HTTP endpoints."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest


def wait_for(cond: Callable[[], object], timeout: float = 20, what: str = "condition") -> None:
    """Poll until `cond()` is true; fail the test, naming `what`, when it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def get(port: int, path: str, timeout: float = 2, host: str = "127.0.0.1") -> tuple[int, str]:
    """Status and body of GET http://host:port/path (host an IPv4 address, or IPv6 as `[::1]`);
    (0, "") while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def metric(port: int, name: str) -> float:
    """One sample from /metrics (`name` may carry labels); NaN when it is not there."""
    _, text = get(port, "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def ipv6_loopback() -> bool:
    """Whether this machine can bind ::1 (some CI sandboxes have no IPv6 at all)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
