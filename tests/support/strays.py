"""Processes a test started that escaped their parent's process group (`setsid`), found by a
unique argument and stopped by their own id."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path


def pids_with_argument(argument: str) -> list[int]:
    """Ids of the processes whose command line holds `argument` exactly."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument.encode() in argv:
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def stopped_afterwards(argument: str) -> Iterator[str]:
    """Yield `argument`; on the way out, stop every process still running with it."""
    try:
        yield argument
    finally:
        for pid in pids_with_argument(argument):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
